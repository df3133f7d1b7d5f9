"""How a step starts the worker's next one: by the task's name, through the Celery app, after
the transaction commits. The tasks (inversions.tasks) import the steps; the steps and the
actions never import the tasks."""

from __future__ import annotations

from django.db import transaction

from level2.celery import app
from ops.states import State

# Where an OP goes next by itself once it enters a state: the worker's task that follows.
AUTOMATIC_STEPS = {State.QUEUED: "preprocess", State.INVERTED: "generate", State.PUBLISHING: "publish"}


def start_after_commit(task: str, *args: object, countdown: float | None = None) -> None:
    """Send ``inversions.tasks.<task>`` with ``args`` once the transaction commits, to run at
    once or ``countdown`` seconds later."""
    signature = app.signature(f"inversions.tasks.{task}", args=list(args), countdown=countdown)
    transaction.on_commit(signature.delay)


def start_automatic_step(*, state: State, inversion_id: str) -> None:
    """The worker's step that follows ``state``, if any (AUTOMATIC_STEPS)."""
    task = AUTOMATIC_STEPS.get(state)
    if task is not None:
        start_after_commit(task, inversion_id)
