"""The scan service against a metadata store over real HTTP and the real PostgreSQL."""

import datetime as dt

import pytest
from django.db import connection

import ops.scan.listing
import ops.scan.statistics
import ops.scan.upserting
from ops.models import Dataset, Experiment, InstrumentProgram, ObservingProgram, ProgramEvent, Proposal, Scan
from ops.scan import run_scan
from ops.states import ActorKind, State
from tests.ops.metadata.store import Failure, dataset_record

OP_A = "eid_3_54_opA_R001.1.1"
OP_B = "eid_3_54_opB_R001.2.2"
OP_C = "eid_2_7_opC_R001.3.3"


@pytest.fixture
def store(metadata_store):
    metadata_store.experiments = {"eid_3_54": "Sunspot penumbra", "eid_2_7": "Plage"}
    metadata_store.add(
        dataset_record("AAAAA", observingProgramExecutionId=OP_A, instrumentProgramExecutionId="id.1.1"),
        dataset_record(
            "AAAAB",
            observingProgramExecutionId=OP_A,
            instrumentProgramExecutionId="id.1.1",
            createDate="2025-04-03T10:00:00.000000",
        ),
        dataset_record(
            "BBBBB",
            observingProgramExecutionId=OP_B,
            instrumentProgramExecutionId="id.2.2",
            instrumentName="VBI",
            stokesParameters="I",
        ),
        dataset_record(
            "CCCCC",
            primaryProposalId="pid_2_7",
            primaryExperimentId="eid_2_7",
            observingProgramExecutionId=OP_C,
            instrumentProgramExecutionId="id.3.3",
        ),
    )
    return metadata_store


def scanner_events(program_id=None):
    events = ProgramEvent.objects.filter(actor_kind=ActorKind.SCANNER).order_by("id")
    return list(events.filter(program_id=program_id) if program_id else events)


def test_first_scan_stores_everything_and_discovers_each_program(db, store):
    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.status, scan.new_count, scan.changed_count, scan.unchanged_count) == ("succeeded", 4, 0, 0)
    assert (scan.vanished_count, scan.error_count, scan.proposals_total, scan.proposals_done) == (0, 0, 2, 2)
    assert scan.finished_at is not None
    assert set(Proposal.objects.values_list("id", "cycle", "number")) == {
        ("pid_3_54", 3, 54),
        ("pid_2_7", 2, 7),
    }
    assert Experiment.objects.get(pk="eid_3_54").description == "Sunspot penumbra"
    assert InstrumentProgram.objects.get(pk="id.2.2").instrument == "VBI"
    program = ObservingProgram.objects.get(pk=OP_A)
    assert program.dataset_count == 2
    assert program.newest_dataset_created_at == dt.datetime(2025, 4, 3, 10, tzinfo=dt.UTC)
    assert program.experiment_id == "eid_3_54" and program.proposal_id == "pid_3_54"
    dataset = Dataset.objects.get(pk="AAAAA")
    assert dataset.raw == store.records["AAAAA"]
    assert (dataset.health_good, dataset.vanished_at) == (444, None)
    assert dataset.spectral_lines == ["Fe I (630.25 nm)"]
    assert dataset.fried_parameter["med"] == 0.039 and dataset.polarimetric_accuracy is None
    assert dataset.first_seen_at is not None
    events = scanner_events()
    assert [(e.program_id, e.to_state) for e in events] == sorted(
        (op, State.DISCOVERED) for op in [OP_A, OP_B, OP_C]
    )
    assert scanner_events(OP_A)[0].details == {
        "scan": scan.pk,
        "dataset_count": 2,
        "settles_at": program.settles_at().isoformat(),
    }
    # Settled, the new OPs get their verdicts in their batch, right after `discovered`
    # (tests/ops/test_scan_qualifying.py); the qualification that follows has nothing left.
    verdicts = ProgramEvent.objects.filter(actor_kind=ActorKind.QUALIFIER, from_state=State.DISCOVERED)
    assert sorted(verdicts.values_list("program_id", flat=True)) == sorted([OP_A, OP_B, OP_C])
    assert all(e.id > scanner_events(e.program_id)[0].id for e in verdicts)
    assert scan.changed_program_ids == (OP_C, OP_A, OP_B)
    assert scan.qualified_program_ids == {OP_A, OP_B, OP_C}
    assert store.operations() == ["DatasetList", "DatasetsByProposal", "ExperimentDescriptions"]
    assert store.sent[1].variables["proposalIds"] == ["pid_2_7", "pid_3_54"]


def test_json_blocks_are_stored_as_objects_also_when_sent_as_json_text(db, store):
    store.records["AAAAA"]["lightLevel"] = '{"med": 5.0}'
    store.records["AAAAB"]["lightLevel"] = "null"
    store.records["BBBBB"]["lightLevel"] = None

    run_scan(trigger=Scan.Trigger.COMMAND)

    blocks = dict(Dataset.objects.values_list("id", "light_level"))
    assert blocks["AAAAA"] == {"med": 5.0}
    assert blocks["AAAAB"] is None and blocks["BBBBB"] is None
    assert blocks["CCCCC"] == store.records["CCCCC"]["lightLevel"] and blocks["CCCCC"]
    # SQL NULL, not a JSON null.
    assert set(Dataset.objects.filter(light_level__isnull=True).values_list("id", flat=True)) == {
        "AAAAB",
        "BBBBB",
    }


def test_a_second_scan_of_the_same_store_changes_nothing(db, store):
    run_scan(trigger=Scan.Trigger.COMMAND)
    events_before = ProgramEvent.objects.count()
    rows_before = list(Dataset.objects.order_by("id").values())
    store.sent.clear()

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.new_count, scan.changed_count, scan.unchanged_count, scan.vanished_count) == (0, 0, 4, 0)
    assert (scan.proposals_total, scan.error_count) == (0, 0)
    assert ProgramEvent.objects.count() == events_before
    assert list(Dataset.objects.order_by("id").values()) == rows_before
    # A listing of changes (tests/ops/test_scan_listing.py): nothing to fetch.
    assert store.operations() == ["DatasetCount", "DatasetList", "DatasetList"]
    assert scan.listed_since is not None
    assert scan.changed_program_ids == ()


def test_records_without_an_update_date_or_updated_at_creation_are_unchanged_on_rescan(db, store):
    store.records["AAAAA"]["updateDate"] = None
    store.records["AAAAB"]["updateDate"] = store.records["AAAAB"]["createDate"]
    run_scan(trigger=Scan.Trigger.COMMAND)
    assert Dataset.objects.get(pk="AAAAA").update_date == Dataset.objects.get(pk="AAAAA").create_date

    # Every dataset listed: these records' dates move back, which a listing of changes
    # (since the newest date stored) would not see.
    scan = run_scan(trigger=Scan.Trigger.COMMAND, list_everything=True)
    assert (scan.changed_count, scan.unchanged_count) == (0, 4)

    store.records["AAAAA"]["updateDate"] = store.records["AAAAA"]["createDate"]
    store.records["AAAAB"]["updateDate"] = None
    scan = run_scan(trigger=Scan.Trigger.COMMAND, list_everything=True)
    assert scan.changed_count == 2


def test_rescan_fetches_only_new_and_changed_datasets(db, store):
    run_scan(trigger=Scan.Trigger.COMMAND)
    first_seen_at = Dataset.objects.get(pk="AAAAA").first_seen_at
    store.sent.clear()
    store.records["AAAAA"]["updateDate"] = "2025-07-01T00:00:00.000000"
    store.records["AAAAA"]["frameCount"] = 500
    store.add(
        dataset_record("AAAAC", observingProgramExecutionId=OP_A, instrumentProgramExecutionId="id.1.1")
    )

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.new_count, scan.changed_count, scan.unchanged_count) == (1, 1, 3)
    assert store.operations() == ["DatasetCount", "DatasetList", "DatasetList", "DatasetsById"]
    assert store.sent[3].variables["datasetIds"] == ["AAAAC", "AAAAA"]
    changed = Dataset.objects.get(pk="AAAAA")
    assert (changed.frame_count, changed.first_seen_at, changed.raw) == (
        500,
        first_seen_at,
        store.records["AAAAA"],
    )
    assert Dataset.objects.get(pk="AAAAC").first_seen_at > first_seen_at
    assert ObservingProgram.objects.get(pk=OP_A).dataset_count == 3
    (information,) = scanner_events(OP_A)[1:]
    verdict = information.from_state
    assert verdict in {State.INVERTIBLE, State.NOT_INVERTIBLE} and information.to_state == verdict
    assert information.details["datasets_added"] == ["AAAAC"]
    assert information.details["datasets_changed"] == ["AAAAA"]
    assert information.details["datasets_vanished"] == []
    assert information.details["scan"] == scan.pk
    assert len(scanner_events()) == 4
    assert scan.changed_program_ids == (OP_A,)


def test_a_new_proposal_is_fetched_whole_when_every_dataset_is_listed(db, store):
    run_scan(trigger=Scan.Trigger.COMMAND)
    store.sent.clear()
    store.add(
        dataset_record(
            "DDDDD",
            primaryProposalId="pid_1_1",
            primaryExperimentId="eid_1_1",
            observingProgramExecutionId="eid_1_1_opD",
            instrumentProgramExecutionId="id.4",
        )
    )

    run_scan(trigger=Scan.Trigger.COMMAND, list_everything=True)

    # eid_1_1 is a new experiment, though the store has no description for it.
    assert store.operations() == ["DatasetList", "DatasetsByProposal", "ExperimentDescriptions"]
    assert store.sent[1].variables["proposalIds"] == ["pid_1_1"]
    assert Experiment.objects.get(pk="eid_1_1").description == ""


def test_vanished_datasets_are_marked_counted_and_come_back(db, store):
    run_scan(trigger=Scan.Trigger.COMMAND)
    vanished = store.records.pop("AAAAB")

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.vanished_count, scan.unchanged_count) == (1, 3)
    dataset = Dataset.objects.get(pk="AAAAB")
    assert dataset.vanished_at is not None
    program = ObservingProgram.objects.get(pk=OP_A)
    assert program.dataset_count == 1
    assert program.newest_dataset_created_at == dt.datetime(2025, 4, 2, 22, 24, 25, 724505, tzinfo=dt.UTC)
    assert scanner_events(OP_A)[-1].details["datasets_vanished"] == ["AAAAB"]
    assert scan.changed_program_ids == (OP_A,)

    assert run_scan(trigger=Scan.Trigger.COMMAND).vanished_count == 0

    store.add(vanished)
    scan = run_scan(trigger=Scan.Trigger.COMMAND)
    assert scan.changed_count == 1
    assert Dataset.objects.get(pk="AAAAB").vanished_at is None
    assert ObservingProgram.objects.get(pk=OP_A).dataset_count == 2
    assert scanner_events(OP_A)[-1].details["datasets_changed"] == ["AAAAB"]


def test_one_malformed_record_is_one_error_and_the_others_are_saved(db, store):
    store.records["AAAAB"]["frameCount"] = "many"

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.status, scan.new_count, scan.error_count) == ("succeeded", 3, 1)
    (error,) = scan.errors.all()
    assert error.record == "AAAAB"
    assert "frameCount" in error.message
    assert not Dataset.objects.filter(pk="AAAAB").exists()
    assert ObservingProgram.objects.get(pk=OP_A).dataset_count == 1

    # Fixed in the store: the next scan picks it up, without an updateDate change.
    store.records["AAAAB"]["frameCount"] = 444
    scan = run_scan(trigger=Scan.Trigger.COMMAND)
    assert (scan.new_count, scan.error_count) == (1, 0)


@pytest.mark.parametrize("proposal_id", ["/tmp/level2-evil", "pid_3_54/../../x", ".."])
def test_a_record_whose_proposal_id_would_leave_a_path_is_an_error_and_the_others_are_kept(
    db, store, proposal_id
):
    store.add(
        dataset_record("EVILA", primaryProposalId=proposal_id, observingProgramExecutionId="eid_9_9_op")
    )

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.status, scan.new_count, scan.error_count) == ("succeeded", 4, 1)
    (error,) = scan.errors.all()
    assert error.record == "EVILA" and "primaryProposalId" in error.message
    assert not Dataset.objects.filter(pk="EVILA").exists()
    assert not Proposal.objects.filter(pk=proposal_id).exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("frameCount", 2**31), ("datasetSize", 1e300), ("wavelengthMin", 10**400)],
    ids=["count", "size", "integer-beyond-a-float"],
)
def test_a_record_with_a_number_too_big_to_store_is_an_error_and_the_others_are_kept(db, store, field, value):
    store.records["AAAAB"][field] = value

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.status, scan.new_count, scan.error_count) == ("succeeded", 3, 1)
    (error,) = scan.errors.all()
    assert error.record == "AAAAB" and field in error.message
    assert ObservingProgram.objects.get(pk=OP_A).dataset_count == 1


@pytest.mark.parametrize(
    ("field", "sent"),
    [
        ("lightLevel", b'{"max": NaN}'),
        ("exposureTime", b"Infinity"),
        ("headerVersion", b'"4.0\\u0000"'),
        ("productId", b'"L1-\\u0000"'),
        ("productId", b'"L1-\\udc00"'),
        ("productId", b'"L1-\xe9"'),
    ],
    ids=["NaN", "Infinity", "NUL", "NUL-in-a-column", "unpaired-surrogate", "not-UTF-8"],
)
def test_a_record_whose_json_postgresql_refuses_is_an_error_and_the_others_are_kept(db, store, field, sent):
    store.records["AAAAB"][field] = "@sent@"
    store.rewrites[b'"@sent@"'] = sent

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.status, scan.new_count, scan.error_count) == ("succeeded", 3, 1)
    (error,) = scan.errors.all()
    assert error.record == "AAAAB" and error.message.startswith("dataset AAAAB: record ")
    assert ObservingProgram.objects.get(pk=OP_A).dataset_count == 1


def test_numbers_beyond_a_float_are_stored_in_raw_as_sent(db, store):
    store.records["AAAAB"]["lightLevel"] = {"max": "@huge@", "med": 2**70}
    store.rewrites[b'"@huge@"'] = b"1e400"

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.new_count, scan.error_count) == (4, 0)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT raw -> 'lightLevel' = %s::jsonb FROM ops_dataset WHERE id = 'AAAAB'",
            ['{"max": 1e400, "med": 1180591620717411303424}'],
        )
        assert cursor.fetchone() == (True,)


def test_a_batch_nested_too_deeply_to_parse_is_an_error_of_its_proposals_and_the_scan_goes_on(db, store):
    store.records["CCCCC"]["lightLevel"] = "@deep@"
    store.rewrites[b'"@deep@"'] = b"[" * 100_000 + b"]" * 100_000

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.status, scan.new_count) == ("succeeded", 0)
    assert sorted(scan.errors.values_list("record", flat=True)) == ["pid_2_7", "pid_3_54"]
    assert "not JSON" in scan.errors.first().message


def test_a_record_whose_bucket_would_leave_a_path_is_an_error_and_the_others_are_kept(db, store):
    store.records["AAAAB"]["bucket"] = "../../etc"

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.status, scan.new_count, scan.error_count) == ("succeeded", 3, 1)
    (error,) = scan.errors.all()
    assert error.record == "AAAAB" and "bucket" in error.message
    assert ObservingProgram.objects.get(pk=OP_A).dataset_count == 1


def test_http_500_then_success_is_retried(db, store):
    store.fail("DatasetList", Failure(status=500))
    store.fail("DatasetsByProposal", Failure(status=502), Failure(status=503))

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.status, scan.new_count, scan.error_count) == ("succeeded", 4, 0)
    assert store.operations()[:5] == [
        "DatasetList",
        "DatasetList",
        "DatasetsByProposal",
        "DatasetsByProposal",
        "DatasetsByProposal",
    ]


def test_a_proposal_batch_that_keeps_failing_is_an_error_and_the_scan_goes_on(db, store, settings):
    settings.LEVEL2_METADATA_RETRIES = 1
    store.fail("DatasetsByProposal", Failure(status=500), Failure(status=500))

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.status, scan.new_count, scan.error_count, scan.proposals_done) == ("succeeded", 0, 2, 2)
    assert sorted(scan.errors.values_list("record", flat=True)) == ["pid_2_7", "pid_3_54"]
    assert "HTTP 500" in scan.errors.first().message

    # Nothing was stored for them, so the next scan completes the work.
    assert run_scan(trigger=Scan.Trigger.COMMAND).new_count == 4


def test_each_batch_is_fetched_ahead_and_written_on_its_own(db, store, settings, monkeypatch):
    monkeypatch.setattr(ops.scan.listing, "BATCH_DATASETS", 1)  # a batch per proposal: pid_2_7, pid_3_54
    settings.LEVEL2_METADATA_RETRIES = 0
    store.fail("DatasetsByProposal", Failure(status=500))

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.status, scan.new_count, scan.error_count, scan.proposals_done) == ("succeeded", 3, 1, 2)
    assert scan.errors.get().record == "pid_2_7"
    assert set(Dataset.objects.values_list("proposal_id", flat=True)) == {"pid_3_54"}
    assert scan.changed_program_ids == (OP_A, OP_B)
    assert [s.variables["proposalIds"] for s in store.sent if s.operation == "DatasetsByProposal"] == [
        ["pid_2_7"],
        ["pid_3_54"],
    ]


def test_the_planner_statistics_are_refreshed_as_the_tables_fill(db, store, monkeypatch):
    monkeypatch.setattr(ops.scan.listing, "BATCH_DATASETS", 1)  # pid_2_7 (1 dataset), then pid_3_54 (3)
    monkeypatch.setattr(ops.scan.statistics, "ANALYZE_FROM_DATASETS", 2)

    run_scan(trigger=Scan.Trigger.COMMAND)

    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'ops_dataset'")
        (estimated_rows,) = cursor.fetchone()
    assert estimated_rows == 4  # analyzed after the second batch, not after the first


def test_the_scans_statistics_sample_fewer_rows_than_the_default(db, store, monkeypatch):
    monkeypatch.setattr(ops.scan.statistics, "ANALYZE_FROM_DATASETS", 2)
    store.add(*(dataset_record(f"DS{n:03d}", observingProgramExecutionId=OP_A) for n in range(40)))

    run_scan(trigger=Scan.Trigger.COMMAND)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT cardinality(histogram_bounds::text::text[]) FROM pg_stats"
            " WHERE tablename = 'ops_dataset' AND attname = 'id'"
        )
        (bounds,) = cursor.fetchone()
    # The default target keeps all 44 ids as bounds.
    assert bounds == ops.scan.statistics.STATISTICS_TARGET + 1


def test_a_timeout_is_retried(db, store, settings):
    settings.LEVEL2_METADATA_TIMEOUT_S = 0.2
    store.fail("DatasetsByProposal", Failure(status=200, delay_s=0.6))

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.status, scan.new_count, scan.error_count) == ("succeeded", 4, 0)
    assert store.operations().count("DatasetsByProposal") == 2


def test_a_list_that_cannot_be_read_fails_the_scan_and_marks_nothing_vanished(db, store, settings):
    run_scan(trigger=Scan.Trigger.COMMAND)
    settings.LEVEL2_METADATA_RETRIES = 0
    store.fail("DatasetList", Failure(status=200, body={"errors": [{"message": "database unavailable"}]}))

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert scan.status == Scan.Status.FAILED
    assert "database unavailable" in scan.message
    assert scan.finished_at is not None
    assert not Dataset.objects.filter(vanished_at__isnull=False).exists()


def test_an_unexpected_failure_marks_the_scan_failed_without_details(db, store, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(ops.scan.upserting, "update_program_totals", broken)

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert scan.status == Scan.Status.FAILED
    assert "we logged it" in scan.message and "secret" not in scan.message
    # The failed batch was rolled back whole: nothing for qualification either.
    assert not Dataset.objects.exists() and not ObservingProgram.objects.exists()
    assert scan.changed_program_ids == ()


def test_a_scan_left_running_by_a_dead_process_is_closed_by_the_next(db, store):
    dead = Scan.objects.create(status=Scan.Status.RUNNING)

    run_scan(trigger=Scan.Trigger.COMMAND)

    dead.refresh_from_db()
    assert dead.status == Scan.Status.FAILED and dead.finished_at is not None


def test_a_scan_row_made_beforehand_is_the_one_that_runs(db, store, staff_user):
    queued = Scan.objects.create(trigger=Scan.Trigger.BUTTON, triggered_by=staff_user)

    scan = run_scan(trigger=Scan.Trigger.BUTTON, user=staff_user, scan=queued)

    assert scan.pk == queued.pk and scan.status == Scan.Status.SUCCEEDED and scan.new_count == 4
    assert Scan.objects.count() == 1


def test_a_dataset_moved_to_another_program_updates_both(db, store):
    run_scan(trigger=Scan.Trigger.COMMAND)
    store.records["AAAAB"].update(observingProgramExecutionId=OP_B, updateDate="2025-07-01T00:00:00.000000")

    run_scan(trigger=Scan.Trigger.COMMAND)

    assert ObservingProgram.objects.get(pk=OP_A).dataset_count == 1
    assert ObservingProgram.objects.get(pk=OP_B).dataset_count == 2
    assert scanner_events(OP_A)[-1].details["datasets_changed"] == ["AAAAB"]
    assert scanner_events(OP_B)[-1].details["datasets_changed"] == ["AAAAB"]


def test_a_dataset_moved_to_a_new_program_counts_there(db, store):
    run_scan(trigger=Scan.Trigger.COMMAND)
    store.records["AAAAB"].update(
        observingProgramExecutionId="eid_3_54_opNew", updateDate="2025-07-01T00:00:00.000000"
    )
    store.add(
        dataset_record(
            "AAAAN", observingProgramExecutionId="eid_3_54_opNew", createDate="2025-05-01T00:00:00"
        )
    )

    run_scan(trigger=Scan.Trigger.COMMAND)

    assert ObservingProgram.objects.get(pk=OP_A).dataset_count == 1
    new = ObservingProgram.objects.get(pk="eid_3_54_opNew")
    assert (new.dataset_count, new.newest_dataset_created_at) == (2, dt.datetime(2025, 5, 1, tzinfo=dt.UTC))
    assert scanner_events("eid_3_54_opNew")[0].details["dataset_count"] == 2


def test_a_new_program_with_datasets_in_two_batches_counts_them_all(db, store, monkeypatch):
    monkeypatch.setattr(ops.scan.listing, "BATCH_DATASETS", 1)  # a batch per proposal: pid_2_7, pid_3_54
    store.records["CCCCC"].update(observingProgramExecutionId=OP_A, createDate="2025-05-01T00:00:00")

    run_scan(trigger=Scan.Trigger.COMMAND)

    program = ObservingProgram.objects.get(pk=OP_A)
    assert (program.dataset_count, program.newest_dataset_created_at) == (
        3,
        dt.datetime(2025, 5, 1, tzinfo=dt.UTC),
    )


def test_the_scan_runs_with_fewer_garbage_collections(db, store):
    import gc

    from ops.pipeline import BULK_GC_THRESHOLD
    from ops.signals import datasets_changed

    thresholds_in_batches = []

    def batch_written(**kwargs):
        thresholds_in_batches.append(gc.get_threshold()[0])

    datasets_changed.connect(batch_written, dispatch_uid="test-gc")
    before = gc.get_threshold()
    try:
        run_scan(trigger=Scan.Trigger.COMMAND)
    finally:
        datasets_changed.disconnect(dispatch_uid="test-gc")

    assert thresholds_in_batches == [BULK_GC_THRESHOLD]
    assert gc.get_threshold() == before
