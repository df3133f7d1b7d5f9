"""``manage.py scan``: one scan in the foreground, its summary, non-zero when it cannot run."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from ops import selectors
from ops.models import ObservingProgram, Scan
from ops.states import State
from tests.ops.metadata.store import Failure, dataset_record


@pytest.fixture
def store(metadata_store):
    metadata_store.add(dataset_record("AAAAA"), dataset_record("AAAAB", frameCount=-3))
    return metadata_store


def test_prints_the_summary_and_errors(db, store):
    out = StringIO()

    call_command("scan", stdout=out)

    scan = Scan.objects.get()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"scan {scan.pk} succeeded in ")
    assert lines[1:6] == ["new: 1", "changed: 0", "unchanged: 0", "vanished: 0", "errors: 1"]
    assert lines[6] == "error AAAAB: dataset AAAAB: frameCount is -3, not a count"
    assert lines[7].startswith("qualification: considered 1, not settled 0, not qualifiable 0, unchanged 0, ")
    assert scan.trigger == Scan.Trigger.COMMAND


def test_the_settled_programs_it_found_have_their_verdicts(db, store):
    call_command("scan", stdout=StringIO())

    (program,) = ObservingProgram.objects.select_related("current_event")
    assert program.current_event.to_state in {State.INVERTIBLE, State.NOT_INVERTIBLE}
    assert "report" in program.current_event.details


def test_a_failed_scan_exits_non_zero_with_its_message(db, store, settings):
    settings.LEVEL2_METADATA_RETRIES = 0
    store.fail("DatasetList", Failure(status=503))

    with pytest.raises(CommandError, match="HTTP 503"):
        call_command("scan", stdout=StringIO())


def test_says_so_when_another_scan_runs(db, store):
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [selectors.SCAN_LOCK_KEY])
        with pytest.raises(CommandError, match="Another scan is running"):
            call_command("scan", stdout=StringIO())
    finally:
        holder.close()
    assert not Scan.objects.exists()
    assert store.sent == []
