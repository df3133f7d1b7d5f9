"""Celery tasks: thin wrappers around ops services."""

from __future__ import annotations

import logging

from celery import shared_task

from ops.qualification import qualify_programs

log = logging.getLogger(__name__)


@shared_task
def qualify_settled_programs() -> dict[str, int]:
    """Beat: qualify every OP whose settle date has passed since its last report."""
    return qualify_programs().as_dict()
