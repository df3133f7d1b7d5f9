"""Only one scan at a time: the advisory lock, with committed data and real threads."""

import threading
import time

import pytest
from django.db import connection, connections

from ops import selectors
from ops.models import Dataset, Scan
from ops.scan import ScanAlreadyRunning, run_scan
from tests.ops.metadata.store import Failure, dataset_record


@pytest.fixture
def store(metadata_store):
    metadata_store.add(dataset_record("AAAAA"), dataset_record("AAAAB"))
    return metadata_store


def wait_until(condition, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_second_scan_while_one_runs_exits_at_once(committed_db, store):
    # The first scan waits on a slow answer to its first request, holding the lock.
    store.fail("DatasetList", Failure(status=500, delay_s=1.0))
    results = {}

    def first_scan():
        try:
            results["scan"] = run_scan(trigger=Scan.Trigger.SCHEDULE)
        finally:
            connection.close()

    thread = threading.Thread(target=first_scan)
    thread.start()
    try:
        wait_until(selectors.scan_is_running)
        queued = Scan.objects.create(trigger=Scan.Trigger.BUTTON)

        started = time.monotonic()
        with pytest.raises(ScanAlreadyRunning, match="Another scan is running"):
            run_scan(trigger=Scan.Trigger.COMMAND)
        with pytest.raises(ScanAlreadyRunning):
            run_scan(trigger=Scan.Trigger.BUTTON, scan=queued)
        assert time.monotonic() - started < 0.5
    finally:
        thread.join()

    assert results["scan"].status == Scan.Status.SUCCEEDED and results["scan"].new_count == 2
    queued.refresh_from_db()
    assert queued.status == Scan.Status.FAILED and "Another scan is running" in queued.message
    # The command scan made no row; the button's row was closed.
    assert Scan.objects.count() == 2
    assert Dataset.objects.count() == 2
    assert not selectors.scan_is_running()


def test_the_lock_is_released_when_its_session_ends(committed_db, store):
    holder = connections.create_connection("default")
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [selectors.SCAN_LOCK_KEY])
    assert selectors.scan_is_running()
    with pytest.raises(ScanAlreadyRunning):
        run_scan(trigger=Scan.Trigger.COMMAND)

    holder.close()  # as when the process holding it dies

    # The server ends the session a moment after the client goes.
    wait_until(lambda: not selectors.scan_is_running())
    assert run_scan(trigger=Scan.Trigger.COMMAND).status == Scan.Status.SUCCEEDED


def test_the_lock_is_released_after_a_failed_scan(db, store, settings):
    settings.LEVEL2_METADATA_RETRIES = 0
    store.fail("DatasetList", Failure(status=500))

    assert run_scan(trigger=Scan.Trigger.COMMAND).status == Scan.Status.FAILED

    assert not selectors.scan_is_running()
    assert run_scan(trigger=Scan.Trigger.COMMAND).status == Scan.Status.SUCCEEDED
