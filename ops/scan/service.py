"""The scan as a service: run one (under the scan lock), or request one ("Scan now")."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from ops import selectors
from ops.metadata.client import MetadataClient, MetadataStoreError
from ops.models import Scan
from ops.pipeline import bulk_work
from ops.scan.lock import ScanAlreadyRunning, scan_lock
from ops.scan.scanner import Scanner

log = logging.getLogger(__name__)

# A requested scan normally starts within seconds. A row still "running" without the lock
# after this long lost its worker; it no longer blocks "Scan now" (the next scan closes it).
REQUEST_WAIT_LIMIT = timedelta(minutes=5)


def run_scan(
    *,
    trigger: Scan.Trigger,
    user: AbstractBaseUser | None = None,
    scan: Scan | None = None,
    list_everything: bool = False,
) -> Scan:
    """Run one scan to the end and return its row (succeeded, or failed with a message).

    The row's ``changed_program_ids`` are the OPs new or changed in the batches that were
    committed (a failed scan may have committed some); ``qualified_program_ids`` those of them
    whose verdicts their batch recorded, and ``batch_qualification`` the summary of that: the
    qualification that follows (``ops.qualification.qualify_after_scan``) does the rest.
    ``scan`` is a row made beforehand (the "Scan now" button); otherwise one is made here.
    Raises ScanAlreadyRunning, without making a row, when another scan is running; a row
    made beforehand is then marked failed with that reason. A re-scan lists only what changed
    in the store unless ``list_everything`` (``ops.scan.listing.choose_scope``).
    """
    try:
        with scan_lock():
            scan = _start(scan=scan, trigger=trigger, user=user)
            changed_program_ids: set[str] = set()
            qualified_program_ids: set[str] = set()
            scanner = None
            try:
                with MetadataClient() as client, bulk_work():
                    scanner = Scanner(
                        scan=scan,
                        client=client,
                        changed_program_ids=changed_program_ids,
                        qualified_program_ids=qualified_program_ids,
                        list_everything=list_everything,
                    )
                    scanner.run()
                _finish(scan, status=Scan.Status.SUCCEEDED)
            except BaseException as error:
                # Even Ctrl-C: never leave a row that says running when nothing runs.
                log.exception("scan %s failed", scan.pk)
                _finish(scan, status=Scan.Status.FAILED, message=_failure_message(error))
                if not isinstance(error, Exception):
                    raise
            finally:
                scan.changed_program_ids = tuple(sorted(changed_program_ids))
                scan.qualified_program_ids = frozenset(qualified_program_ids)
                if scanner is not None:
                    scan.batch_qualification = scanner.qualifying.summary.as_dict()
    except ScanAlreadyRunning as error:
        if scan is not None and scan.status == Scan.Status.RUNNING and scan.pk:
            _finish(scan, status=Scan.Status.FAILED, message=str(error))
        raise
    log.info(
        "scan %s %s: %d new, %d changed, %d unchanged, %d vanished, %d errors; "
        "new OPs with their verdicts recorded in its batches: %d",
        scan.pk,
        scan.status,
        scan.new_count,
        scan.changed_count,
        scan.unchanged_count,
        scan.vanished_count,
        scan.error_count,
        len(scan.qualified_program_ids),
    )
    return scan


def request_scan(*, user: AbstractBaseUser) -> Scan:
    """The row of a scan someone asked for ("Scan now"); the caller enqueues the task.

    Raises ScanAlreadyRunning when a scan is running or another request is still waiting
    for a worker, so that a double click does not queue two scans.
    """
    waiting = Scan.objects.filter(
        status=Scan.Status.RUNNING, started_at__gte=timezone.now() - REQUEST_WAIT_LIMIT
    )
    if selectors.scan_is_running() or waiting.exists():
        raise ScanAlreadyRunning("A scan is already running; its progress is on the Scans page.")
    return Scan.objects.create(trigger=Scan.Trigger.BUTTON, triggered_by=user)


def _failure_message(error: BaseException) -> str:
    if isinstance(error, MetadataStoreError):
        return f"The scan stopped: {error}"
    if isinstance(error, KeyboardInterrupt):
        return "The scan was interrupted; the next scan completes its work."
    return "The scan stopped on an unexpected error; we logged it. The next scan completes its work."


def _start(*, scan: Scan | None, trigger: Scan.Trigger, user: AbstractBaseUser | None) -> Scan:
    now = timezone.now()
    # We hold the lock, so any other row still marked running lost its process.
    Scan.objects.filter(status=Scan.Status.RUNNING).exclude(pk=scan.pk if scan else None).update(
        status=Scan.Status.FAILED,
        finished_at=now,
        message="Stopped before it finished (its process ended); a later scan completed its work.",
    )
    if scan is None:
        return Scan.objects.create(trigger=trigger, triggered_by=user)
    scan.status = Scan.Status.RUNNING
    scan.finished_at = None
    scan.message = ""
    scan.save(update_fields=["status", "finished_at", "message"])
    return scan


def _finish(scan: Scan, *, status: Scan.Status, message: str = "") -> None:
    Scan.objects.filter(pk=scan.pk).update(status=status, finished_at=timezone.now(), message=message)
    scan.refresh_from_db()
