"""The Celery task: the beat's scan and the "Scan now" scan; a busy lock is logged, not raised."""

import datetime as dt
import logging

import pytest
from django.db import connections
from django.utils import timezone

import ops.qualification
from ops import selectors
from ops.models import ObservingProgram, Scan
from ops.scan import ScanAlreadyRunning, request_scan
from ops.states import State
from ops.tasks import scan_metadata_store
from tests.factories import ScanFactory
from tests.ops.metadata.store import dataset_record

# The record's OP; its datasets were made in 2025, so it is settled.
PROGRAM_ID = dataset_record()["observingProgramExecutionId"]


@pytest.fixture
def store(metadata_store):
    metadata_store.add(dataset_record("AAAAA"))
    return metadata_store


@pytest.fixture
def lock_held(db):
    holder = connections.create_connection("default")
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [selectors.SCAN_LOCK_KEY])
    yield
    holder.close()


def test_the_beat_runs_a_scheduled_scan(db, store):
    scan_id = scan_metadata_store.apply().get()

    scan = Scan.objects.get(pk=scan_id)
    assert (scan.trigger, scan.status, scan.new_count) == ("schedule", "succeeded", 1)


def test_the_scan_hands_the_programs_its_batches_did_not_qualify_to_qualification(db, store, monkeypatch):
    qualified: list[list[str]] = []
    qualify_programs = ops.qualification.qualify_programs

    def recording(*, program_ids):
        qualified.append(sorted(program_ids))
        return qualify_programs(program_ids=program_ids)

    monkeypatch.setattr(ops.qualification, "qualify_programs", recording)

    scan_metadata_store.apply().get()  # new and settled: its batch gave the verdict
    scan_metadata_store.apply().get()  # the same store again: nothing new or changed
    store.records["AAAAA"]["updateDate"] = "2025-07-01T00:00:00.000000"
    scan_metadata_store.apply().get()

    assert qualified == [[], [], [PROGRAM_ID]]


def test_after_the_beat_scan_a_settled_program_has_its_verdict(db, store):
    scan_metadata_store.apply().get()

    program = ObservingProgram.objects.select_related("current_event").get(pk=PROGRAM_ID)
    assert program.current_event.to_state in {State.INVERTIBLE, State.NOT_INVERTIBLE}
    assert "report" in program.current_event.details


def test_scan_now_runs_the_row_it_made(db, store, staff_user):
    requested = request_scan(user=staff_user)

    assert scan_metadata_store.apply(args=[requested.pk]).get() == requested.pk

    requested.refresh_from_db()
    assert (requested.trigger, requested.triggered_by, requested.status) == (
        "button",
        staff_user,
        "succeeded",
    )


def test_a_busy_lock_is_logged_not_raised(store, lock_held, caplog):
    with caplog.at_level(logging.INFO, logger="ops.tasks"):
        assert scan_metadata_store.apply().get() is None
    assert "another scan is running" in caplog.text
    assert not Scan.objects.exists() and store.sent == []


def test_request_scan_refuses_while_a_scan_holds_the_lock(staff_user, lock_held):
    with pytest.raises(ScanAlreadyRunning, match="already running"):
        request_scan(user=staff_user)


def test_request_scan_refuses_while_another_request_waits_for_a_worker(db, staff_user):
    ScanFactory(status=Scan.Status.RUNNING)
    with pytest.raises(ScanAlreadyRunning):
        request_scan(user=staff_user)


def test_a_row_whose_worker_died_long_ago_does_not_block_scan_now(db, staff_user):
    lost = ScanFactory(status=Scan.Status.RUNNING)
    Scan.objects.filter(pk=lost.pk).update(started_at=timezone.now() - dt.timedelta(minutes=10))

    assert request_scan(user=staff_user).trigger == Scan.Trigger.BUTTON
