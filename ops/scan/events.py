"""Events: what the scanner adds to each changed OP's history, through ops.history."""

from __future__ import annotations

from ops.history import Actor, EventRequest, record_events
from ops.models import ObservingProgram, Scan
from ops.scan.grouping import BatchChanges
from ops.states import ActorKind, State

SCANNER = Actor(ActorKind.SCANNER)


def record_scan_events(*, scan: Scan, changes: BatchChanges) -> None:
    """``discovered`` for new OPs; one information event for each OP that changed."""
    # Lock first (in id order, as record_events does), so that the state read here is
    # still the state when the same-state event is checked.
    programs = (
        ObservingProgram.objects.select_for_update(of=("self",))
        .filter(pk__in=changes.program_ids)
        .select_related("current_event")
        .defer("current_event__details")  # only its state is needed
        .order_by("pk")
    )
    requests = []
    for program in programs:
        if program.current_event is None:
            settles_at = program.settles_at()
            details = {
                "scan": scan.pk,
                "dataset_count": program.dataset_count,
                "settles_at": settles_at.isoformat() if settles_at else None,
            }
            requests.append(EventRequest(program.pk, State.DISCOVERED, details))
            continue
        change = changes.by_program[program.pk]
        details = {
            "scan": scan.pk,
            "note": change.describe(),
            "dataset_count": program.dataset_count,
            "datasets_added": sorted(change.added),
            "datasets_changed": sorted(change.changed),
            "datasets_vanished": sorted(change.vanished),
        }
        requests.append(EventRequest(program.pk, State(program.current_event.to_state), details))
    record_events(requests=requests, actor=SCANNER)
