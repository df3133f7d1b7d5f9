"""Reads of the work for pages: an OP's work panel, the queue."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from inversions import actions, overdue
from inversions.models import Inversion, Transfer
from inversions.transfers import get_backend
from ops.models import ObservingProgram
from ops.states import State

# States the worker moves on by itself: their pages follow it live.
MOVING_STATES = frozenset(
    {State.QUEUED, State.PREPROCESSING, State.INVERTED, State.GENERATING, State.PUBLISHING}
)


@dataclass(frozen=True)
class TransferView:
    transfer: Transfer
    url: str | None

    @property
    def percent(self) -> int | None:
        total = self.transfer.files_total
        return round(100 * self.transfer.files_done / total) if total else None

    @property
    def bytes_per_second(self) -> float | None:
        """The mean rate so far (to the last poll, or to the end)."""
        transfer = self.transfer
        until = transfer.completed_at or transfer.polled_at
        if not (transfer.submitted_at and until and transfer.bytes_done):
            return None
        seconds = (until - transfer.submitted_at).total_seconds()
        return transfer.bytes_done / seconds if seconds > 0 else None


@dataclass(frozen=True)
class GenerationView:
    frames_done: int
    frames_total: int | None
    rate_per_min: float | None
    minutes_left: float | None

    @property
    def percent(self) -> int | None:
        return round(100 * self.frames_done / self.frames_total) if self.frames_total else None


@dataclass(frozen=True)
class WorkPanel:
    program: ObservingProgram
    state: str
    since: datetime | None
    inversion: Inversion | None
    transfers: list[TransferView]
    actions: list[actions.Action]
    forms: dict[str, Any] = field(default_factory=dict)
    overdue_days: float | None = None
    generation: GenerationView | None = None
    moving: bool = False

    @property
    def days_in_state(self) -> float | None:
        return (timezone.now() - self.since).total_seconds() / 86400 if self.since else None


def _generation(inversion: Inversion, now: datetime) -> GenerationView:
    rate = left = None
    if inversion.generation_started_at and inversion.frames_done:
        minutes = max((now - inversion.generation_started_at).total_seconds() / 60, 1 / 60)
        rate = inversion.frames_done / minutes
        if inversion.frames_total:
            left = (inversion.frames_total - inversion.frames_done) / rate
    return GenerationView(inversion.frames_done, inversion.frames_total, rate, left)


def work_panel(*, program: ObservingProgram, user, now: datetime | None = None) -> WorkPanel:
    """The OP's attempt (the open one, else the latest), its transfers, the user's buttons."""
    now = now or timezone.now()
    state = program.state
    inversion = (
        Inversion.objects.filter(program=program)
        .select_related("owner", "reported_by")
        .order_by("ended_at", "-created_at")  # the open one (NULL) first
        .first()
    )
    backend = get_backend()
    transfers = (
        [
            TransferView(transfer, backend.task_url(transfer.task_id) if transfer.task_id else None)
            for transfer in inversion.transfers.order_by("-id")
        ]
        if inversion
        else []
    )
    since = program.state_since
    overdue_days = None
    if since and overdue.is_overdue(state=state, since=since, now=now):
        overdue_days = overdue.expected_days(state)
    forms = {}
    allowed = actions.allowed_actions(state=state, user=user) if state else []
    for action in allowed:
        if not action.page:
            forms[action.slug] = action.form(initial={"expected_state": state}, prefix=action.slug)
    return WorkPanel(
        program=program,
        state=state,
        since=since,
        inversion=inversion,
        transfers=transfers,
        actions=allowed,
        forms=forms,
        overdue_days=overdue_days,
        generation=_generation(inversion, now) if inversion and state == State.GENERATING else None,
        moving=state in MOVING_STATES,
    )


@dataclass(frozen=True)
class QueueRow:
    inversion: Inversion
    state: str
    since: datetime
    overdue: bool


def work_queue(*, now: datetime | None = None) -> list[QueueRow]:
    """Every open attempt in queue order, with its OP's state and how long it has been there."""
    now = now or timezone.now()
    inversions = (
        Inversion.objects.filter(ended_at__isnull=True)
        .select_related("owner", "program__current_event")
        .order_by("queue_position", "created_at")
    )
    return [
        QueueRow(
            inversion=inversion,
            state=inversion.program.state,
            since=inversion.program.state_since,
            overdue=overdue.is_overdue(
                state=inversion.program.state, since=inversion.program.state_since, now=now
            ),
        )
        for inversion in inversions
    ]
