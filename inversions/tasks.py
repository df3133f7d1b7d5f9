"""Celery tasks: thin wrappers around inversions.pipeline and the overdue report."""

from __future__ import annotations

import logging

from celery import shared_task

from inversions import campaigns, overdue, pipeline
from inversions.transfers import SubmissionIdUnavailable

log = logging.getLogger(__name__)

# The steps that start a transfer first ask the backend for a submission id. When Globus has
# none to give (unreachable, refusing), the OP stays where it is and the task tries again,
# at growing intervals up to ten minutes, until Globus answers or the OP has moved on.
TRANSFER_STEP = {
    "autoretry_for": (SubmissionIdUnavailable,),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "max_retries": None,
}


@shared_task(**TRANSFER_STEP)
def preprocess(inversion_id: str) -> None:
    """After "Work on this next" (or a retry): the Level 1 data to scratch."""
    pipeline.preprocess(inversion_id=inversion_id)


@shared_task(**TRANSFER_STEP)
def generate(inversion_id: str) -> None:
    """After "Report done" (or a regenerate, a retry): the results to scratch."""
    pipeline.bring_results(inversion_id=inversion_id)


@shared_task
def generate_products(inversion_id: str) -> None:
    """Once the results are on scratch: write the products, frames in parallel processes."""
    pipeline.generate_products(inversion_id=inversion_id)


@shared_task(**TRANSFER_STEP)
def publish(inversion_id: str) -> None:
    """After "Publish" (or a retry), and after each publication step that a transfer ends."""
    pipeline.publish(inversion_id=inversion_id)


@shared_task
def poll_transfers() -> int:
    """Beat: follow every open transfer; returns how many were looked at."""
    return pipeline.poll_transfers()


@shared_task
def email_overdue() -> int:
    """Beat, daily: each owner their overdue OPs, the lead a summary; returns emails sent."""
    return overdue.email_overdue()


@shared_task
def run_campaign(campaign_id: int) -> None:
    """After a long campaign's confirmation: queue its OPs one by one (its page shows progress)."""
    campaigns.run_campaign(campaign_id=campaign_id)
