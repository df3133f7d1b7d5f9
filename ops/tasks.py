"""Celery tasks: thin wrappers around ops services."""

from __future__ import annotations

import logging

from celery import shared_task

from ops.models import Scan
from ops.qualification import qualify_after_scan, qualify_programs
from ops.scan import ScanAlreadyRunning, run_scan

log = logging.getLogger(__name__)


@shared_task
def qualify_settled_programs() -> dict[str, int]:
    """Beat: qualify every OP whose settle date has passed since its last report."""
    return qualify_programs().as_dict()


@shared_task
def scan_metadata_store(scan_id: int | None = None) -> int | None:
    """Beat (no ``scan_id``) or "Scan now" (the row it made): one scan, then the qualification
    of the OPs it found new or changed; returns the scan's id."""
    scan = Scan.objects.filter(pk=scan_id).first() if scan_id is not None else None
    trigger = Scan.Trigger.BUTTON if scan is not None else Scan.Trigger.SCHEDULE
    try:
        scan = run_scan(trigger=trigger, user=scan.triggered_by if scan else None, scan=scan)
    except ScanAlreadyRunning:
        log.info("scan not started: another scan is running")
        return None
    # After the scan lock is released: qualifying does not hold up the next scan.
    qualify_after_scan(scan=scan)
    return scan.pk
