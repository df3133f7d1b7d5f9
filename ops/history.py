"""The one function that appends to an OP's history.

It locks the OP row, reads the current state, checks the transition against
``ops.states.TRANSITION_TABLE`` and inserts the event. Nothing else writes ProgramEvent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from ops.models import ObservingProgram, ProgramEvent
from ops.states import RETRY_STATE_AFTER_FAILED_STEP, TRANSITION_TABLE, ActorKind, State


class TransitionError(Exception):
    """A state change that the transition table does not allow."""


class StaleStateError(TransitionError):
    """The OP is no longer in the state the caller saw: someone else acted first."""

    def __init__(self, message: str, *, current: ProgramEvent | None):
        super().__init__(message)
        self.current = current


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    user: AbstractBaseUser | None = None


def _describe(event: ProgramEvent) -> str:
    return f"{event.to_state} since {event.created_at:%Y-%m-%d %H:%M} UTC by {event.actor_label}"


def state_before(current: ProgramEvent) -> str:
    """The state the OP left to enter its current one: information events (a note on an OP in
    error, say) repeat the current state, so they are skipped (one query, only then)."""
    if current.from_state != current.to_state:
        return current.from_state
    entered = (
        ProgramEvent.objects.filter(
            program_id=current.program_id, to_state=current.to_state, id__lt=current.id
        )
        .exclude(from_state=current.to_state)
        .order_by("-id")
        .values_list("from_state", flat=True)
        .first()
    )
    return entered or ""


def _check(current: ProgramEvent | None, target: State, actor: Actor) -> None:
    source = State(current.to_state) if current else None
    if source == target:
        return  # an information event: anyone allowed to act may add one
    rule = TRANSITION_TABLE.get((source, target))
    if rule is None:
        raise TransitionError(f"An observing program cannot go from {source or 'nothing'} to {target}.")
    if actor.kind not in rule.by:
        allowed = ", ".join(sorted(rule.by))
        raise TransitionError(f"Only {allowed} may move a program from {source} to {target}.")
    if source == State.ERROR and current is not None:
        failed_step = state_before(current)
        retry = RETRY_STATE_AFTER_FAILED_STEP.get(State(failed_step))
        if target != retry:
            raise TransitionError(f"A failed {failed_step} step is retried from {retry}.")
    if source == State.ARCHIVED and current is not None and target != (before := state_before(current)):
        raise TransitionError(f"An archived program goes back to {before} only.")


def _check_expected(program_id: str, current: ProgramEvent | None, expected: State) -> None:
    if current is None or current.to_state != expected:
        taken = f"it is {_describe(current)}" if current else "it has no state yet"
        raise StaleStateError(f"{program_id} is no longer {expected}: {taken}.", current=current)


def lock_in_state(*, program_id: str, expected_state: State) -> ObservingProgram:
    """Lock the OP row for the rest of the caller's transaction, and check that the OP is still
    in the state the user saw, for an action that records no event (the queue's order, say).
    StaleStateError says who moved it, and when."""
    program = ObservingProgram.objects.select_for_update().filter(pk=program_id).first()
    if program is None:
        raise TransitionError(f"There is no observing program {program_id}.")
    # Read after the lock is held, as record_events does: a statement that waited for the lock
    # sees the OP row's new version, but not the event inserted meanwhile.
    program.current_event = (
        ProgramEvent.objects.select_related("actor_user")
        .defer("details")
        .filter(pk=program.current_event_id)
        .first()
        if program.current_event_id
        else None
    )
    _check_expected(program.pk, program.current_event, expected_state)
    return program


@dataclass(frozen=True)
class EventRequest:
    """One requested state change of one OP (see ``record_events``)."""

    program_id: str
    to_state: State
    details: dict[str, Any] = field(default_factory=dict)
    expected_state: State | None = None


def record_events(*, requests: Sequence[EventRequest], actor: Actor) -> list[ProgramEvent]:
    """Append events to the histories of several OPs at once, all or none.

    Each request is checked against the OP's current state under a row lock (rows are
    locked in id order, so concurrent callers cannot deadlock). ``expected_state`` makes a
    request conditional: when another actor moved the OP first, StaleStateError says who
    and when, and nothing is written.
    """
    if not requests:
        return []
    with transaction.atomic():
        # Lock in id order; only the ids and current events are needed, not OP instances.
        current_event_ids = dict(
            ObservingProgram.objects.select_for_update()
            .filter(pk__in={request.program_id for request in requests})
            .order_by("pk")
            .values_list("pk", "current_event_id")
        )
        # Read the current events after the locks are held: a statement that waited for a
        # lock sees the locked rows' new versions but not rows inserted meanwhile. Their
        # details (a qualification report is kilobytes) are read only if someone asks.
        current_events = (
            ProgramEvent.objects.select_related("actor_user")
            .defer("details")
            .in_bulk([event_id for event_id in current_event_ids.values() if event_id])
        )
        current_by_program = {
            program_id: current_events.get(event_id) for program_id, event_id in current_event_ids.items()
        }
        events = []
        for request in requests:
            if request.program_id not in current_by_program:
                raise TransitionError(f"There is no observing program {request.program_id}.")
            current = current_by_program[request.program_id]
            if request.expected_state is not None:
                _check_expected(request.program_id, current, request.expected_state)
            _check(current, State(request.to_state), actor)
            event = ProgramEvent(
                program_id=request.program_id,
                from_state=current.to_state if current else "",
                to_state=request.to_state,
                actor_kind=actor.kind,
                actor_user=actor.user,
                details=request.details,
            )
            # A later request for the same OP in this batch starts from this event.
            current_by_program[request.program_id] = event
            events.append(event)
        # The database points each OP at its newest event (a trigger, migration 0005).
        _insert_events(events)
        return events


def _insert_events(events: list[ProgramEvent]) -> None:
    """Insert the events with COPY and give each its id and time.

    Ids are drawn from the table's sequence first, in ascending order, so that events keep the
    order of the list (the pointing trigger takes each OP's highest id as its newest). COPY
    hands each details document to PostgreSQL once, as text: the earlier single JSON
    document of all rows was parsed whole and then taken apart again, which cost PostgreSQL
    about twice as much for thousands of qualification reports.
    """
    now = timezone.now()
    table = ProgramEvent._meta.db_table
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, len(events)],
        )
        event_ids = sorted(event_id for (event_id,) in cursor.fetchall())
        with cursor.copy(
            sql.SQL(
                "COPY {} (id, program_id, from_state, to_state, actor_kind, actor_user_id, details,"
                " created_at) FROM STDIN"
            ).format(sql.Identifier(table))
        ) as copy:
            for event, event_id in zip(events, event_ids, strict=True):
                copy.write_row(
                    (
                        event_id,
                        event.program_id,
                        event.from_state,
                        event.to_state,
                        event.actor_kind,
                        event.actor_user_id,
                        json.dumps(event.details),
                        now,
                    )
                )
    for event, event_id in zip(events, event_ids, strict=True):
        event.pk = event_id
        event.created_at = now
        event._state.adding = False
        event._state.db = connection.alias


def record_event(
    *,
    program_id: str,
    to_state: State,
    actor: Actor,
    details: dict[str, Any] | None = None,
    expected_state: State | None = None,
) -> ProgramEvent:
    """Append one event to an OP's history and make it the current state."""
    request = EventRequest(program_id, to_state, details or {}, expected_state)
    return record_events(requests=[request], actor=actor)[0]
