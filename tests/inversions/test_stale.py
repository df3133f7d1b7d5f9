"""Stale inversions (issue 21): a scan that finds the Level 1 data of an inversion reprocessed
marks the OP stale, once per change; "Invert again" makes a new attempt that publishes anew."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from demo import team as demo_team
from inversions import pipeline, services, stale
from inversions.models import Inversion
from ops.models import ObservingProgram, ProgramEvent, Scan
from ops.qualification import qualify_programs
from ops.scan import run_scan
from ops.states import State
from tests.factories import events_of, walk_to
from tests.inversions.conftest import write_demo_files
from tests.ops.metadata.store import dataset_record

pytestmark = pytest.mark.django_db

OP = "eid_3_54_opA_R001.1.1"
NEW_CALIBRATION = "https://docs.dkist.nso.edu/projects/visp/en/v3.0.0/"


@pytest.fixture
def store(metadata_store):
    metadata_store.experiments = {"eid_3_54": "Sunspot penumbra"}
    metadata_store.add(
        *(
            dataset_record(dataset_id, observingProgramExecutionId=OP, instrumentProgramExecutionId="id.1.1")
            for dataset_id in ("AAAAA", "AAAAB")
        )
    )
    return metadata_store


def scanned_invertible_op(store) -> ObservingProgram:
    """The store's OP, scanned and qualified as the scan task does."""
    scan = run_scan(trigger=Scan.Trigger.COMMAND)
    qualify_programs(program_ids=scan.changed_program_ids)
    program = ObservingProgram.objects.get(pk=OP)
    assert program.state == State.INVERTIBLE
    return program


def reprocess(store, dataset_id: str, update_date: str, **fields) -> None:
    """The data center recalibrates a dataset: a newer updateDate, maybe other fields."""
    store.records[dataset_id].update(updateDate=update_date, **fields)


def stale_events(program) -> list[ProgramEvent]:
    return [event for event in events_of(program) if "stale" in event.details]


def new_attempt(program, inverter, *, published: bool, dataset_ids=None, snapshot: bool = True) -> Inversion:
    """A new attempt walked to published (or working) by events, its Level 1 snapshot taken as the
    preprocess step takes it, without files (the whole flow is the first test's)."""
    source = State.PUBLISHED if program.state == State.PUBLISHED else State.INVERTIBLE
    inversion = services.queue_program(program_id=program.pk, user=inverter, expected_state=source)
    if snapshot:
        ids = [dataset.id for dataset in pipeline.datasets_to_preprocess(program_id=program.pk)]
        inversion.level1_snapshot = stale.level1_snapshot(dataset_ids=ids)
    inversion.dataset_ids = dataset_ids or []
    inversion.save()
    walk_to(program.pk, State.WORKING)
    if published:
        event = walk_to(program.pk, State.PUBLISHED)
        inversion.ended_at, inversion.end_reason = event.created_at, Inversion.EndReason.PUBLISHED
        inversion.save()
    program.refresh_from_db()
    return inversion


# --- the whole flow ---------------------------------------------------------------------------


def test_reprocessed_level1_data_make_a_published_op_stale_and_invert_again_publishes_a_second_time(
    store, inverter, publisher, local_collections, eager_tasks, settings, django_capture_on_commit_callbacks
):
    settings.LEVEL2_GENERATION_PROCESSES = 1
    program = scanned_invertible_op(store)
    write_demo_files(program)

    def publish_an_attempt(expected_state: State) -> Inversion:
        with django_capture_on_commit_callbacks(execute=True):
            inversion = services.queue_program(
                program_id=program.pk, user=inverter, expected_state=expected_state
            )
        services.start_work(program_id=program.pk, user=inverter)
        report = services.DoneReport(
            "0123abcd" if expected_state == State.INVERTIBLE else "4567ef01",
            "team",
            demo_team.result_path(program.pk),
            ["AAAAA", "AAAAB"],
        )
        with django_capture_on_commit_callbacks(execute=True):
            services.report_done(program_id=program.pk, user=inverter, report=report)
        with django_capture_on_commit_callbacks(execute=True):
            services.publish(program_id=program.pk, user=publisher)
        program.refresh_from_db()
        assert program.state == State.PUBLISHED, events_of(program)[-1].details
        inversion.refresh_from_db()
        return inversion

    first = publish_an_attempt(State.INVERTIBLE)
    assert set(first.level1_snapshot["datasets"]) == {"AAAAA", "AAAAB"}
    assert not program.is_stale

    reprocess(store, "AAAAB", "2026-01-05T10:00:00.000000", calibrationDocumentationUrl=NEW_CALIBRATION)
    scan = run_scan(trigger=Scan.Trigger.COMMAND)
    program.refresh_from_db()
    (event,) = stale_events(program)
    assert program.state == State.PUBLISHED and program.stale_since == event.created_at
    assert (event.actor_kind, event.to_state, event.details["scan"]) == ("scanner", "published", scan.pk)
    change = event.details["stale"]["datasets"]["AAAAB"]
    assert event.details["stale"]["inversion"] == first.id
    assert change["update_date"] == {
        "old": "2025-06-28T19:52:46.460870+00:00",
        "new": "2026-01-05T10:00:00+00:00",
    }
    assert change["fields"] == {
        "calibrationDocumentationUrl": {
            "old": "https://docs.dkist.nso.edu/projects/visp/en/v2.0.0/",
            "new": NEW_CALIBRATION,
        }
    }
    assert f"Level 1 changed since {first.id}: dataset AAAAB reprocessed" in event.details["note"]

    # A scan that finds nothing new adds nothing.
    run_scan(trigger=Scan.Trigger.COMMAND)
    assert len(stale_events(program)) == 1

    second = publish_an_attempt(State.PUBLISHED)
    program.refresh_from_db()
    assert not program.is_stale
    again = next(e for e in events_of(program) if e.details.get("inversion") == second.id)
    assert (again.from_state, again.to_state, again.details["again_after"]) == (
        "published",
        "queued",
        first.id,
    )
    assert second.id != first.id and second.software_commit == "4567ef01"
    assert (
        second.level1_snapshot["datasets"]["AAAAB"]["values"]["calibrationDocumentationUrl"]
        == NEW_CALIBRATION
    )
    assert [record["inversionId"] for record in store.inventories] == [first.id, second.id]
    for inversion in (first, second):
        folder = local_collections / "publish" / "data" / program.proposal_id / inversion.directory
        assert any(folder.glob("*.asdf")) and inversion.end_reason == "published"
    # The second attempt used the reprocessed data: the same scan again marks nothing.
    run_scan(trigger=Scan.Trigger.COMMAND)
    program.refresh_from_db()
    assert not program.is_stale and len(stale_events(program)) == 1


# --- what is a change, and what is not ------------------------------------------------------


def test_a_rescan_of_an_unchanged_store_adds_no_stale_event(store, inverter):
    program = scanned_invertible_op(store)
    new_attempt(program, inverter, published=True, dataset_ids=["AAAAA", "AAAAB"])
    run_scan(trigger=Scan.Trigger.COMMAND)
    program.refresh_from_db()
    assert stale_events(program) == [] and not program.is_stale


def test_each_new_reprocessing_is_named_once_and_the_op_stays_stale_since_the_first(store, inverter):
    program = scanned_invertible_op(store)
    inversion = new_attempt(program, inverter, published=True, dataset_ids=["AAAAA", "AAAAB"])
    reprocess(store, "AAAAA", "2026-01-05T10:00:00.000000", frameCount=450)
    reprocess(store, "AAAAB", "2026-01-05T11:00:00.000000")
    run_scan(trigger=Scan.Trigger.COMMAND)
    (first,) = stale_events(program)
    changes = first.details["stale"]["datasets"]
    assert sorted(changes) == ["AAAAA", "AAAAB"]
    assert changes["AAAAA"]["fields"] == {"frameCount": {"old": 444, "new": 450}}
    assert changes["AAAAB"]["fields"] == {}
    assert first.details["note"].startswith(f"Level 1 changed since {inversion.id}: datasets AAAAA, AAAAB")

    # The dataset vanishes and comes back unchanged: the same change, not named again.
    held = store.records.pop("AAAAA")
    run_scan(trigger=Scan.Trigger.COMMAND)
    store.add(held)
    run_scan(trigger=Scan.Trigger.COMMAND)
    assert len(stale_events(program)) == 1

    reprocess(store, "AAAAA", "2026-02-01T00:00:00.000000")
    run_scan(trigger=Scan.Trigger.COMMAND)
    _, second = stale_events(program)
    assert list(second.details["stale"]["datasets"]) == ["AAAAA"]
    assert (
        second.details["stale"]["datasets"]["AAAAA"]["update_date"]["old"]
        == "2025-06-28T19:52:46.460870+00:00"
    )
    program.refresh_from_db()
    assert program.stale_since == first.created_at


def test_a_dataset_the_inversion_did_not_use_makes_nothing_stale(store, inverter):
    program = scanned_invertible_op(store)
    new_attempt(program, inverter, published=True, dataset_ids=["AAAAA"])
    reprocess(store, "AAAAB", "2026-01-05T10:00:00.000000")
    run_scan(trigger=Scan.Trigger.COMMAND)
    assert stale_events(program) == []


def test_work_under_way_is_marked_stale_too_and_queueing_again_is_the_remedy(store, inverter):
    program = scanned_invertible_op(store)
    new_attempt(program, inverter, published=False)
    reprocess(store, "AAAAA", "2026-01-05T10:00:00.000000")
    run_scan(trigger=Scan.Trigger.COMMAND)
    program.refresh_from_db()
    assert program.state == State.WORKING and program.is_stale
    services.put_back(program_id=program.pk, user=inverter, reason="new data", expected_state=State.WORKING)
    services.queue_program(program_id=program.pk, user=inverter)
    program.refresh_from_db()
    assert program.state == State.QUEUED and not program.is_stale


def test_an_op_without_an_attempt_or_with_one_put_back_is_never_stale(store, inverter):
    program = scanned_invertible_op(store)
    reprocess(store, "AAAAA", "2026-01-05T10:00:00.000000")
    run_scan(trigger=Scan.Trigger.COMMAND)
    services.queue_program(program_id=program.pk, user=inverter)
    services.put_back(program_id=program.pk, user=inverter, reason="not now", expected_state=State.QUEUED)
    reprocess(store, "AAAAA", "2026-01-06T10:00:00.000000")
    run_scan(trigger=Scan.Trigger.COMMAND)
    program.refresh_from_db()
    assert stale_events(program) == [] and not program.is_stale


def test_an_attempt_older_than_snapshots_is_compared_with_its_start(store, inverter):
    program = scanned_invertible_op(store)
    inversion = new_attempt(program, inverter, published=True, snapshot=False)
    # Reprocessed before the attempt started: not a change for it.
    reprocess(store, "AAAAA", "2025-12-01T00:00:00.000000")
    Inversion.objects.filter(pk=inversion.pk).update(created_at="2026-01-01T00:00:00Z")
    run_scan(trigger=Scan.Trigger.COMMAND)
    assert stale_events(program) == []
    reprocess(store, "AAAAB", "2026-01-05T10:00:00.000000")
    run_scan(trigger=Scan.Trigger.COMMAND)
    (event,) = stale_events(program)
    assert event.details["stale"]["datasets"] == {
        "AAAAB": {"update_date": {"old": None, "new": "2026-01-05T10:00:00+00:00"}, "fields": {}}
    }
    assert event.details["stale"]["used_since"] == "2026-01-01T00:00:00+00:00"


def test_the_scan_command_marks_stale_ops(store, inverter, capsys):
    program = scanned_invertible_op(store)
    new_attempt(program, inverter, published=True, dataset_ids=["AAAAA", "AAAAB"])
    reprocess(store, "AAAAA", "2026-01-05T10:00:00.000000")
    call_command("scan")
    program.refresh_from_db()
    assert program.is_stale and len(stale_events(program)) == 1


def test_a_batch_of_ops_without_attempts_costs_one_query(store):
    scanned_invertible_op(store)
    with CaptureQueriesContext(connection) as queries:
        assert stale.find_stale(program_ids=[OP, "eid_9_9_other.1.1"]) == []
    assert len(queries) == 1


def test_record_snapshots_keep_short_values_and_digest_long_or_odd_ones():
    raw = {"frameCount": 444, "updateDate": "x", "huge": "y" * 5000, "nested": {"a": [1, 2]}}
    snapshot = stale.record_snapshot(update_date=timezone.now(), raw=raw)
    assert snapshot["values"] == {"frameCount": 444, "nested": {"a": [1, 2]}}
    assert list(snapshot["digests"]) == ["huge"] and "updateDate" not in snapshot["values"]
    later = stale.record_snapshot(
        update_date=timezone.now(), raw={**raw, "huge": "z" * 5000, "frameCount": 445}
    )
    assert stale.changed_fields(snapshot, later) == {"frameCount": {"old": 444, "new": 445}, "huge": {}}
    assert stale.record_snapshot(update_date=timezone.now(), raw=["not", "a", "record"])["values"] == {}
