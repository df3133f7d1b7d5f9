"""ops.scan.events: a batch's events for an OP that someone moves while the batch waits for
the OP's lock start from the state it was moved to."""

import threading
import time

from django.db import connection, transaction

from ops.history import Actor, record_event
from ops.models import ProgramEvent
from ops.scan.events import record_scan_events
from ops.scan.grouping import BatchChanges, OpChanges
from ops.states import ActorKind, State
from tests.factories import ScanFactory, UserFactory, program_in_state


def _another_backend_waits_for_a_row_lock() -> bool:
    with connection.cursor() as cursor:
        # pg_stat_activity is read once per transaction unless its snapshot is cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE '%%FOR UPDATE%%'"
        )
        return cursor.fetchone()[0] > 0


def test_an_op_moved_while_the_batch_waits_for_its_lock_gets_the_information_event_of_its_new_state(
    committed_db,
):
    program = program_in_state(State.INVERTIBLE)
    scan = ScanFactory()
    lead = Actor(ActorKind.INVERTER, UserFactory())
    changes = BatchChanges(by_program={program.pk: OpChanges(changed=["AAAAA"])}, changed_count=1)
    outcome: dict[str, object] = {}

    def scan_batch():
        try:
            with transaction.atomic():
                record_scan_events(scan=scan, changes=changes)
            outcome["recorded"] = True
        except Exception as error:  # the assertion below shows it
            outcome["error"] = error
        finally:
            connection.close()

    batch = threading.Thread(target=scan_batch)
    with transaction.atomic():
        record_event(
            program_id=program.pk, to_state=State.QUEUED, actor=lead, expected_state=State.INVERTIBLE
        )
        batch.start()
        deadline = time.monotonic() + 30
        while not _another_backend_waits_for_a_row_lock():
            assert time.monotonic() < deadline, f"the batch never waited for the OP's lock: {outcome}"
            time.sleep(0.02)
    batch.join(timeout=30)

    assert outcome == {"recorded": True}
    newest = ProgramEvent.objects.filter(program=program).latest("id")
    assert (newest.actor_kind, newest.from_state, newest.to_state) == (
        ActorKind.SCANNER,
        State.QUEUED,
        State.QUEUED,
    )
    assert newest.details["datasets_changed"] == ["AAAAA"]
