"""Events: what the scanner adds to each changed OP's history, through ops.history."""

from __future__ import annotations

from collections.abc import Sequence

from ops.history import Actor, EventRequest, record_events
from ops.models import ObservingProgram, Scan
from ops.scan.grouping import BatchChanges
from ops.states import ActorKind, State

SCANNER = Actor(ActorKind.SCANNER)


def record_scan_events(*, scan: Scan, changes: BatchChanges, then: Sequence[EventRequest] = ()) -> None:
    """``discovered`` for new OPs; one information event for each OP that changed; then the
    requests ``then`` (the verdicts of the batch's new OPs, which start from ``discovered``),
    in one call: each OP's row is locked, and pointed at its newest event, once."""
    # Lock first (in id order, as record_events does), so that the state read here is
    # still the state when the same-state event is checked. Plain values: record_events
    # reads what it checks itself, and thousands of model instances cost more than the SQL.
    programs = (
        ObservingProgram.objects.select_for_update(of=("self",))
        .filter(pk__in=changes.program_ids)
        .order_by("pk")
        .values_list("pk", "current_event__to_state", "dataset_count", "newest_dataset_created_at")
    )
    requests = []
    for program_id, state, dataset_count, newest_created_at in programs:
        if state is None:
            settles_at = ObservingProgram.settle_date(newest_created_at)
            details = {
                "scan": scan.pk,
                "dataset_count": dataset_count,
                "settles_at": settles_at.isoformat() if settles_at else None,
            }
            requests.append(EventRequest(program_id, State.DISCOVERED, details))
            continue
        change = changes.by_program[program_id]
        details = {
            "scan": scan.pk,
            "note": change.describe(),
            "dataset_count": dataset_count,
            "datasets_added": sorted(change.added),
            "datasets_changed": sorted(change.changed),
            "datasets_vanished": sorted(change.vanished),
        }
        requests.append(EventRequest(program_id, State(state), details))
    requests.extend(then)
    record_events(requests=requests, actor=SCANNER)
