"""What the data center has (proposals … datasets), the scans that read it, and OP history."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from ops.scoring import LABELS as SCORE_LABELS
from ops.states import ActorKind, State

_KEY_NUMBERS = re.compile(r"^[a-z]+_(\d+)_(\d+)$")
# A web address a page may link to: http(s) and nothing a browser would read otherwise
# (javascript:, data:, leading blanks or control characters).
_WEB_URL = re.compile(r"https?://[^\x00-\x20\x7f]+", re.IGNORECASE)


def key_numbers(key: str) -> tuple[int, int]:
    """(cycle, n) of ``pid_2_10`` / ``eid_2_10``, so that keys sort numerically."""
    match = _KEY_NUMBERS.match(key)
    return (int(match[1]), int(match[2])) if match else (0, 0)


class Proposal(models.Model):
    id = models.CharField(primary_key=True, max_length=64)
    cycle = models.PositiveIntegerField(default=0)
    number = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["cycle", "number"]

    def __str__(self) -> str:
        return self.id

    def save(self, *args, **kwargs):
        self.cycle, self.number = key_numbers(self.id)
        super().save(*args, **kwargs)


class Experiment(models.Model):
    id = models.CharField(primary_key=True, max_length=64)
    cycle = models.PositiveIntegerField(default=0)
    number = models.PositiveIntegerField(default=0)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["cycle", "number"]

    def __str__(self) -> str:
        return self.id

    def save(self, *args, **kwargs):
        self.cycle, self.number = key_numbers(self.id)
        super().save(*args, **kwargs)


class ObservingProgram(models.Model):
    """The unit of work. Its state is its newest ProgramEvent (``current_event``)."""

    id = models.CharField(primary_key=True, max_length=128)
    # Not indexed: nothing looks OPs up by proposal or experiment, and every scan writes
    # thousands of OP rows (each index is one more write per row).
    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="programs", db_index=False)
    experiment = models.ForeignKey(
        Experiment, on_delete=models.PROTECT, related_name="programs", null=True, blank=True, db_index=False
    )
    first_seen_at = models.DateTimeField(auto_now_add=True)
    # Newest createDate among the OP's datasets: the OP settles LEVEL2_SETTLE_DAYS after it.
    newest_dataset_created_at = models.DateTimeField(null=True, blank=True)
    dataset_count = models.PositiveIntegerField(default=0)
    # The newest event and its state, kept by the database: a trigger on each insert into
    # the history sets them, and direct writes to them are ignored (migration 0005). Pages
    # filter and count 20,000 OPs by state without reading the 200,000-row history.
    current_event = models.OneToOneField(
        "ProgramEvent", on_delete=models.PROTECT, null=True, blank=True, editable=False, related_name="+"
    )
    state = models.CharField(max_length=16, choices=State, blank=True, editable=False)
    # When the OP entered its state (information events keep it), kept by the same trigger.
    state_since = models.DateTimeField(null=True, blank=True, editable=False)
    # Since when the Level 1 data of its latest inversion changed (an information event with
    # "stale" details); cleared when the OP enters queued, a new attempt that uses the new
    # data. Kept by the same trigger (migration 0011): direct writes are ignored.
    stale_since = models.DateTimeField(null=True, blank=True, editable=False)
    # The ranking (ops.scoring) of its best invertible IP, set by the qualification; None when
    # no IP is invertible. ``score_parts``: that IP's id and each term, for the page's hover.
    score = models.FloatField(null=True, blank=True)
    score_parts = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            # Candidates, best first, ties to the oldest (ops.selectors.CANDIDATE_ORDER).
            models.Index(
                "state",
                models.F("score").desc(nulls_last=True),
                "first_seen_at",
                "id",
                name="op_state_score_idx",
            ),
            models.Index(fields=["state", "state_since"], name="op_state_since_idx"),
            models.Index(fields=["newest_dataset_created_at"], name="op_newest_created_idx"),
            models.Index(fields=["-first_seen_at", "id"], name="op_list_order_idx"),
            models.Index(fields=["state", "-first_seen_at", "id"], name="op_state_list_idx"),
            # The board's stale OPs and the stale filter: a few among 20,000.
            models.Index(
                fields=["stale_since", "id"],
                condition=models.Q(stale_since__isnull=False),
                name="op_stale_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.id

    def score_explained(self) -> str:
        """The score's terms in words, for the hover on every page that shows a score."""
        if self.score is None or not self.score_parts:
            return "No score: no instrument program is invertible."
        terms = "; ".join(
            f"{SCORE_LABELS.get(name, name)} {part['value']:g} → {100 * part['scaled']:.0f}"
            f" (weight {part['weight']:g})"
            for name, part in self.score_parts["parts"].items()
        )
        return f"{self.score:g} of 100 from {self.score_parts['instrument_program_id']}: {terms}"

    @property
    def is_stale(self) -> bool:
        """Whether Level 1 data its latest inversion used changed afterwards."""
        return self.stale_since is not None

    def settles_at(self) -> datetime | None:
        return self.settle_date(self.newest_dataset_created_at)

    @staticmethod
    def settle_date(newest_dataset_created_at: datetime | None) -> datetime | None:
        """When an OP whose newest dataset was created then settles (None: no datasets)."""
        if newest_dataset_created_at is None:
            return None
        return newest_dataset_created_at + timedelta(days=settings.LEVEL2_SETTLE_DAYS)


class InstrumentProgram(models.Model):
    id = models.CharField(primary_key=True, max_length=128)
    # Indexed by ip_program_idx below (a plain index: nothing searches ids by prefix).
    program = models.ForeignKey(
        ObservingProgram, on_delete=models.PROTECT, related_name="instrument_programs", db_index=False
    )
    instrument = models.CharField(max_length=32)

    class Meta:
        indexes = [
            models.Index(fields=["program"], name="ip_program_idx"),
            # The programs table's instrument filter and its list of instruments (a loose index
            # scan, ops.selectors.instrument_names). IPs are inserted once and never updated.
            models.Index(fields=["instrument", "program"], name="ip_instrument_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.instrument})"


class Dataset(models.Model):
    """One Level 1 dataset: typed columns for what rules and pages use, and the raw record."""

    id = models.CharField(primary_key=True, max_length=64)
    # Datasets are read by OP (dataset_program_idx below), never by IP or proposal: the scan
    # writes 100,000 rows into this table, and each index is one more write per row.
    instrument_program = models.ForeignKey(
        InstrumentProgram, on_delete=models.PROTECT, related_name="datasets", db_index=False
    )
    program = models.ForeignKey(
        ObservingProgram, on_delete=models.PROTECT, related_name="datasets", db_index=False
    )
    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="datasets", db_index=False)
    experiment_id_text = models.CharField("experiment id", max_length=64, blank=True)
    instrument_name = models.CharField(max_length=32)
    create_date = models.DateTimeField()
    update_date = models.DateTimeField()
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    bounding_box = models.CharField(max_length=200, blank=True)
    stokes_parameters = models.CharField(max_length=16, blank=True)
    wavelength_min = models.FloatField(null=True, blank=True)
    wavelength_max = models.FloatField(null=True, blank=True)
    spectral_lines = ArrayField(models.CharField(max_length=64), null=True, blank=True)
    frame_count = models.PositiveIntegerField(default=0)
    health_good = models.PositiveIntegerField(default=0)
    gos_open = models.PositiveIntegerField(default=0)
    ao_locked = models.PositiveIntegerField(default=0)
    light_level = models.JSONField(null=True, blank=True)
    fried_parameter = models.JSONField(null=True, blank=True)
    polarimetric_accuracy = models.JSONField(null=True, blank=True)
    exposure_time = models.FloatField(null=True, blank=True)
    dataset_size = models.BigIntegerField(null=True, blank=True)
    is_embargoed = models.BooleanField(default=False)
    embargo_end_date = models.DateTimeField(null=True, blank=True)
    bucket = models.CharField(max_length=64, blank=True)
    product_id = models.CharField(max_length=128, blank=True)
    browse_movie_url = models.URLField(max_length=500, blank=True)
    raw = models.JSONField()
    first_seen_at = models.DateTimeField(auto_now_add=True)
    # Set when the store stops listing the dataset; it is never deleted here.
    vanished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["program"], name="dataset_program_idx")]

    def __str__(self) -> str:
        return self.id

    @property
    def browse_movie_link(self) -> str:
        """The movie's address when it is http(s), else "": the store's text is untrusted."""
        return self.browse_movie_url if _WEB_URL.fullmatch(self.browse_movie_url) else ""


class Scan(models.Model):
    """One run of the scanner, with its counts and progress."""

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "schedule"
        BUTTON = "button", "Scan now"
        COMMAND = "command", "command line"

    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status, default=Status.RUNNING)
    trigger = models.CharField(max_length=16, choices=Trigger, default=Trigger.COMMAND)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    proposals_total = models.PositiveIntegerField(default=0)
    proposals_done = models.PositiveIntegerField(default=0)
    new_count = models.PositiveIntegerField(default=0)
    changed_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    vanished_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    # A re-scan that listed only the datasets created or updated since this time (the
    # store's clock); null: the scan listed every dataset.
    listed_since = models.DateTimeField(null=True, blank=True)

    # Not stored: set by ops.scan.run_scan on the row it returns. The OPs that its committed
    # batches found new or changed, sorted, for the qualification that follows the scan; of
    # them, those whose verdicts the batches recorded, and the summary of that (by name, as
    # ops.qualification.QualificationSummary has them).
    changed_program_ids: tuple[str, ...] = ()
    qualified_program_ids: frozenset[str] = frozenset()
    batch_qualification: dict[str, float] | None = None

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"scan {self.pk} ({self.status})"

    @property
    def duration(self) -> timedelta | None:
        return self.finished_at - self.started_at if self.finished_at else None

    @property
    def listing_description(self) -> str:
        """What the scan listed, in words."""
        if self.listed_since is None:
            return "every dataset"
        since = self.listed_since.astimezone(UTC)
        return f"the datasets created or updated since {since:%Y-%m-%d %H:%M:%S} UTC, and earlier errors"


class ScanError(models.Model):
    """An error of one scan, with the record (dataset, proposal or request) it concerns."""

    scan = models.ForeignKey(Scan, on_delete=models.CASCADE, related_name="errors")
    record = models.CharField(max_length=200, blank=True)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.record}: {self.message}"


class ProgramEvent(models.Model):
    """Append-only history of OP states; the database rejects UPDATE, DELETE and TRUNCATE.

    Written only by ``ops.history.record_event``.
    """

    # Indexed by event_program_newest_idx below.
    program = models.ForeignKey(
        ObservingProgram, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    from_state = models.CharField(max_length=16, choices=State, blank=True)
    to_state = models.CharField(max_length=16, choices=State)
    actor_kind = models.CharField(max_length=16, choices=ActorKind)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["program", "-id"], name="event_program_newest_idx"),
            # The state changes alone (information events repeat the state), with what the
            # pipeline charts read of them: their SQL reads this index, not the table's details.
            models.Index(
                fields=["program", "id"],
                include=["from_state", "to_state", "created_at"],
                condition=~models.Q(from_state=models.F("to_state")),
                name="event_state_change_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.program_id}: {self.from_state or '∅'} → {self.to_state}"

    @property
    def is_information(self) -> bool:
        return self.from_state == self.to_state

    @property
    def actor_label(self) -> str:
        return self.actor_user.get_username() if self.actor_user_id else self.get_actor_kind_display()
