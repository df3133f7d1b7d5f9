"""``manage.py scan``: one scan in the foreground, its summary, non-zero when it cannot run."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

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
    assert lines[1] == "listed: every dataset"
    assert lines[2:7] == ["new: 1", "changed: 0", "unchanged: 0", "vanished: 0", "errors: 1"]
    assert lines[7] == "error AAAAB: dataset AAAAB: frameCount is -3, not a count"
    assert lines[8].startswith("qualification: considered 1, not settled 0, not qualifiable 0, unchanged 0, ")
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


def test_a_rescan_requalifies_only_the_ops_whose_datasets_changed(db, metadata_store):
    other = {
        "observingProgramExecutionId": "eid_3_54_opOther_R001.2.2",
        "instrumentProgramExecutionId": "id.2.2",
    }
    metadata_store.add(dataset_record("AAAAA"), dataset_record("AAAAB"), dataset_record("BBBBB", **other))
    call_command("scan", stdout=StringIO())
    events = {
        program.pk: list(program.events.values_list("pk", flat=True))
        for program in ObservingProgram.objects.all()
    }
    metadata_store.records["BBBBB"].update(updateDate="2025-07-01T00:00:00.000000", aoLocked=10)
    out = StringIO()

    with CaptureQueriesContext(connection) as queries:
        call_command("scan", stdout=out)

    assert "qualification: considered 1, " in out.getvalue()
    dataset_reads = [query["sql"] for query in queries if "FROM ops_dataset AS dataset" in query["sql"]]
    assert len(dataset_reads) == 1 and "opOther" in dataset_reads[0] and "AAAA" not in dataset_reads[0]
    changed = ObservingProgram.objects.get(pk=other["observingProgramExecutionId"])
    assert (
        changed.state,
        changed.current_event.details["report"]["instrument_programs"][0]["failed_rules"],
    ) == (
        State.NOT_INVERTIBLE,
        ["ao"],
    )
    unchanged = ObservingProgram.objects.exclude(pk=changed.pk).get()
    assert list(unchanged.events.values_list("pk", flat=True)) == events[unchanged.pk]


def test_a_rescan_of_an_unchanged_store_qualifies_nothing(db, store):
    call_command("scan", stdout=StringIO())
    out = StringIO()

    call_command("scan", stdout=out)

    assert "qualification: considered 0, " in out.getvalue()


def test_a_rescan_lists_what_changed_and_full_lists_every_dataset(db, store):
    call_command("scan", stdout=StringIO())
    store.sent.clear()

    out = StringIO()
    call_command("scan", stdout=out)
    assert out.getvalue().splitlines()[1].startswith("listed: the datasets created or updated since ")
    assert store.operations()[0] == "DatasetCount"

    store.sent.clear()
    out = StringIO()
    call_command("scan", "--full", stdout=out)
    assert out.getvalue().splitlines()[1] == "listed: every dataset"
    # AAAAB, still not stored, is fetched again.
    assert store.operations() == ["DatasetList", "DatasetsById"]
    assert store.sent[0].variables == {"pageSize": 5000, "pageNumber": 1}
