"""Events: what the scanner adds to each changed OP's history, through ops.history."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

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
    # still the state when the same-state event is checked. The state is the locked row's
    # own column (the history's trigger keeps it): a row that someone moved while this
    # statement waited for its lock is read again in its new version, whereas a joined
    # event row would be the old one, and the OP would look new. Plain SQL with an array:
    # the ORM's IN list of a batch's OPs costs more to build than the statement takes, and
    # record_events reads what it checks itself.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT id, nullif(state, ''), dataset_count, newest_dataset_created_at
            FROM {ObservingProgram._meta.db_table}
            WHERE id = ANY(%s)
            ORDER BY id
            FOR UPDATE
            """,
            [changes.program_ids],
        )
        programs = cursor.fetchall()
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
