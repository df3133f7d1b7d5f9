"""The work on an OP: attempts at inverting it and the transfers they make.

The OP's states stay in ops' history; each event's details name the attempt (``inversion``).
"""

from __future__ import annotations

import secrets
import string
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.urls import reverse

from ops.models import ObservingProgram
from ops.states import State

INVERSION_ID_ALPHABET = string.ascii_uppercase + string.digits
# What new_inversion_id makes, for input that names an attempt.
INVERSION_ID_PATTERN = r"inv\.[A-Z0-9]{6}"


def new_inversion_id() -> str:
    """``inv.`` + 6 characters of A-Z and 0-9 (L2-PRODUCTS.md §3)."""
    return "inv." + "".join(secrets.choice(INVERSION_ID_ALPHABET) for _ in range(6))


class Inversion(models.Model):
    """One attempt at inverting one OP: made by "Work on this next", ended by "Put back" or
    by publication. Its id is the inversion id of the products."""

    class EndReason(models.TextChoices):
        PUT_BACK = "put_back", "put back"
        PUBLISHED = "published", "published"

    id = models.CharField(primary_key=True, max_length=16, default=new_inversion_id)
    program = models.ForeignKey(ObservingProgram, on_delete=models.PROTECT, related_name="inversions")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="inversions")
    created_at = models.DateTimeField(auto_now_add=True)
    # Smaller first; "Move to top" gives the smallest.
    queue_position = models.BigIntegerField(default=0)
    note = models.TextField(blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=16, choices=EndReason, blank=True)

    # "Report done": what the science team handed over.
    reported_at = models.DateTimeField(null=True, blank=True)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    software_commit = models.CharField(max_length=40, blank=True)
    result_collection = models.CharField(max_length=128, blank=True)
    result_path = models.CharField(max_length=1024, blank=True)
    dataset_ids = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    notes = models.TextField(blank=True)
    # The Level 1 records as they were when their data was copied to scratch (the preprocess
    # step): what a later change of them is compared with (inversions.stale). Empty on
    # attempts older than it; they are compared with their start.
    level1_snapshot = models.JSONField(default=dict, blank=True)

    # Generation progress, for the page (the events record the start and the outcome).
    frames_done = models.PositiveIntegerField(default=0)
    frames_total = models.PositiveIntegerField(null=True, blank=True)
    generation_started_at = models.DateTimeField(null=True, blank=True)
    products = models.JSONField(default=dict, blank=True)

    # Publication steps done, so that a retry resumes where it stopped.
    publish_conversation_id = models.CharField(max_length=64, blank=True)
    messages_sent = models.JSONField(null=True, blank=True)
    store_record = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["queue_position", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["program"], condition=Q(ended_at__isnull=True), name="one_open_inversion_per_program"
            )
        ]
        indexes = [
            # The filter by the software commit of each OP's latest reported attempt
            # (inversions.selectors.programs_by_latest_commit): the commit's prefix. Whether a
            # later report of the OP exists is a hash anti-join over the few attempts (bench.pages).
            models.Index(
                fields=["software_commit"],
                opclasses=["varchar_pattern_ops"],  # LIKE 'prefix%' whatever the collation
                condition=Q(reported_at__isnull=False),
                name="inversion_commit_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def directory(self) -> str:
        """The products' folder name: the id with ``.`` → ``_`` (``inv_PUYATW``)."""
        return self.id.replace(".", "_")


class Transfer(models.Model):
    """One transfer of one step, through the transfer interface (inversions.transfers).

    The submission id is had from the backend (Globus gives them) and stored before the
    transfer is submitted; ``task_id`` is set once the backend has accepted it. The poller (a
    periodic task) brings status and progress up to date.
    """

    class Step(models.TextChoices):
        PREPROCESS = "preprocess", "Level 1 data to scratch"
        RESULTS = "results", "results to scratch"
        PUBLISH = "publish", "products to the archive"

    class Status(models.TextChoices):
        PENDING = "pending", "not yet submitted"
        ACTIVE = "active", "active"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    inversion = models.ForeignKey(Inversion, on_delete=models.PROTECT, related_name="transfers")
    step = models.CharField(max_length=16, choices=Step)
    # No default: every id comes from the backend (inversions.transfers), never made here.
    submission_id = models.UUIDField(unique=True, editable=False)
    backend = models.CharField(max_length=16)
    task_id = models.CharField(max_length=64, blank=True)
    label = models.CharField(max_length=128)
    source_collection = models.CharField(max_length=128)
    destination_collection = models.CharField(max_length=128)
    items = models.JSONField()
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    files_done = models.PositiveIntegerField(default=0)
    files_total = models.PositiveIntegerField(null=True, blank=True)
    bytes_done = models.BigIntegerField(default=0)
    message = models.TextField(blank=True)
    # While the task struggles: the backend's long account of it (Globus's nice_status_details).
    status_details = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    polled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The poller's question: which transfers are not finished?
            models.Index(
                fields=["id"], condition=Q(status__in=["pending", "active"]), name="transfer_open_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.inversion_id} {self.step} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in {self.Status.PENDING, self.Status.ACTIVE}

    @property
    def duration(self) -> timedelta | None:
        if self.submitted_at and self.completed_at:
            return self.completed_at - self.submitted_at
        return None


class Campaign(models.Model):
    """A reprocessing campaign: a publisher's request to invert again a set of published OPs,
    each checked against the state the publisher saw, and its outcome.

    Made as a draft when the publisher asks for it (the confirmation page lists its items);
    confirming it moves it to running once (a second post of the same confirmation finds it
    running or done), and each OP is then queued or refused in a transaction of its own.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "awaiting confirmation"
        RUNNING = "running", "running"
        DONE = "done", "done"

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # What chose the OPs, in words ("commit 1a2b3c, stale"), for the pages and the new attempts' note.
    description = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=16, choices=Status, default=Status.DRAFT)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    requested = models.PositiveIntegerField(default=0)
    queued = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"campaign {self.pk} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("inversions:campaign", args=[self.pk])

    @property
    def done_count(self) -> int:
        return self.queued + self.refused

    @property
    def percent(self) -> int:
        return round(100 * self.done_count / self.requested) if self.requested else 100


class CampaignItem(models.Model):
    """One OP of a campaign, the state its publisher saw it in, and what became of it."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "pending"
        QUEUED = "queued", "queued"
        REFUSED = "refused", "refused"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    program = models.ForeignKey(ObservingProgram, on_delete=models.PROTECT, related_name="+", db_index=False)
    expected_state = models.CharField(max_length=16, choices=State)
    outcome = models.CharField(max_length=16, choices=Outcome, default=Outcome.PENDING)
    reason = models.TextField(blank=True)
    inversion = models.ForeignKey(
        Inversion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign", "position"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "position"], name="campaign_item_position"),
            models.UniqueConstraint(fields=["campaign", "program"], name="campaign_item_program"),
        ]

    def __str__(self) -> str:
        return f"{self.program_id} ({self.outcome})"


class ApiToken(models.Model):
    """A cluster API token of one user. Only its SHA-256 digest is kept; the token itself is
    shown once, when it is made (admin or ``manage.py create_api_token``)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for.")
    # The token's first characters, so that people can tell their tokens apart.
    prefix = models.CharField(max_length=8, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


from inversions.globus_identity import GlobusIdentity  # noqa: E402,F401
