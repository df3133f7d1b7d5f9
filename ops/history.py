"""The one function that appends to an OP's history.

It locks the OP row, reads the current state, checks the transition against
``ops.states.TRANSITION_TABLE`` and inserts the event. Nothing else writes ProgramEvent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, overload

import msgspec
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql
from psycopg.types.json import Jsonb

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
    return _state_before(current.program_id, _Head(current.id, current.from_state, current.to_state))


class _Head(NamedTuple):
    """What the checks read of an OP's current event: ``event_id`` is None for an event
    requested earlier in the same call (not written yet), and ``actor`` who requested it."""

    event_id: int | None
    from_state: str
    to_state: str
    actor: Actor | None = None


def _state_before(program_id: str, head: _Head) -> str:
    if head.from_state != head.to_state:
        return head.from_state
    entered = (
        ProgramEvent.objects.filter(program_id=program_id, to_state=head.to_state, id__lt=head.event_id)
        .exclude(from_state=head.to_state)
        .order_by("-id")
        .values_list("from_state", flat=True)
        .first()
    )
    return entered or ""


def _check(program_id: str, head: _Head | None, target: str, actor: Actor) -> None:
    source = head.to_state if head else None
    if source == target:
        return  # an information event: anyone allowed to act may add one
    # Plain strings look up the table as States do (Django's choices hash by value).
    rule = TRANSITION_TABLE.get((source, target))
    if rule is None:
        raise TransitionError(f"An observing program cannot go from {source or 'nothing'} to {target}.")
    if actor.kind not in rule.by:
        allowed = ", ".join(sorted(rule.by))
        raise TransitionError(f"Only {allowed} may move a program from {source} to {target}.")
    if source == State.ERROR and head is not None:
        failed_step = _state_before(program_id, head)
        retry = RETRY_STATE_AFTER_FAILED_STEP.get(State(failed_step))
        if target != retry:
            raise TransitionError(f"A failed {failed_step} step is retried from {retry}.")
    if (
        source == State.ARCHIVED
        and head is not None
        and target != (before := _state_before(program_id, head))
    ):
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
    """One requested state change of one OP (see ``record_events``); ``actor`` when another
    than the call's asks for it (a scan batch records its new OPs' verdicts as the qualifier)."""

    program_id: str
    to_state: State
    details: dict[str, Any] = field(default_factory=dict)
    expected_state: State | None = None
    actor: Actor | None = None


def record_events(*, requests: Sequence[EventRequest], actor: Actor) -> Sequence[ProgramEvent]:
    """Append events to the histories of several OPs at once, all or none.

    Each request is checked against the OP's current state under a row lock (rows are
    locked in id order, so concurrent callers cannot deadlock). ``expected_state`` makes a
    request conditional: when another actor moved the OP first, StaleStateError says who
    and when, and nothing is written. Several requests for one OP follow each other: each
    is checked against the state the one before leaves, and the OP's row is pointed at the
    last once. The events come back in the order requested, each ProgramEvent built when it
    is read (``RecordedEvents``).
    """
    if not requests:
        return []
    # One time for the whole call: a StaleStateError about an event requested earlier in it
    # tells that time too.
    now = timezone.now()
    events_table, programs_table = ProgramEvent._meta.db_table, ObservingProgram._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        # Lock in id order. Plain SQL with arrays: the ORM's IN lists of thousands of ids cost
        # more to build and parse than the statements take, and only ids and states are needed.
        cursor.execute(
            f"SELECT id, current_event_id FROM {programs_table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            [list({request.program_id for request in requests})],
        )
        current_event_ids = cursor.fetchall()
        # Read the current events after the locks are held: a statement that waited for a
        # lock sees the locked rows' new versions but not rows inserted meanwhile.
        event_ids = [event_id for _program_id, event_id in current_event_ids if event_id]
        heads: dict[str, _Head | None] = dict.fromkeys(
            program_id for program_id, _event_id in current_event_ids
        )
        if event_ids:
            cursor.execute(
                f"SELECT program_id, id, from_state, to_state FROM {events_table} WHERE id = ANY(%s)",
                [event_ids],
            )
            for program_id, event_id, from_state, to_state in cursor:
                heads[program_id] = _Head(event_id, from_state, to_state)
        from_states = []
        for request in requests:
            program_id, target = request.program_id, request.to_state
            if program_id not in heads:
                raise TransitionError(f"There is no observing program {program_id}.")
            head = heads[program_id]
            if (
                request.expected_state is not None
                and (head.to_state if head else None) != request.expected_state
            ):
                # The event is read only to say who moved the OP, and when.
                _check_expected(program_id, _event_of(program_id, head, now), request.expected_state)
            requester = request.actor or actor
            _check(program_id, head, target, requester)
            source = head.to_state if head else ""
            from_states.append(source)
            # A later request for the same OP in this call starts from this event; an
            # information event leaves the state, and how it was entered, as they were.
            if source != target:
                heads[program_id] = _Head(None, source, target, requester)
        # The database points each OP at its newest event (a trigger, migration 0005).
        event_ids = _insert_events(cursor.cursor, requests, from_states, actor, now)
        return RecordedEvents(requests, from_states, actor, event_ids, now)


def _event_of(program_id: str, head: _Head | None, now: datetime) -> ProgramEvent | None:
    """The current event as StaleStateError shows it (read only then)."""
    if head is None:
        return None
    if head.actor is not None:  # requested earlier in this call
        return ProgramEvent(
            program_id=program_id,
            from_state=head.from_state,
            to_state=head.to_state,
            actor_kind=head.actor.kind,
            actor_user=head.actor.user,
            created_at=now,
        )
    return ProgramEvent.objects.select_related("actor_user").defer("details").get(pk=head.event_id)


_encode_json = msgspec.json.Encoder().encode


def _details_json(details: dict[str, Any]) -> bytes | str:
    """``details`` as the JSON text that PostgreSQL parses into the jsonb column.

    msgspec writes the same values as ``json.dumps`` (the same jsonb: only the spacing, the
    exponents' form and \\u escapes differ) several times faster, which counts for thousands
    of qualification reports of kilobytes each. It writes null for NaN and infinity, which
    JSON cannot hold (``json.dumps`` writes them as words that jsonb refuses, failing the
    whole batch). What msgspec refuses and ``json.dumps`` takes (subclasses of float and int,
    such as NumPy's scalars; strings with lone surrogates, which jsonb then refuses) is left
    to ``json.dumps``.
    """
    try:
        return _encode_json(details)
    except (TypeError, UnicodeEncodeError):
        return json.dumps(details)


# The columns COPY writes, with their types: binary COPY sends each value as it is (the
# kilobytes of a report are not escaped as the text format needs), so each type must be
# the column's own.
_COPY_COLUMNS = {
    "id": "bigint",
    "program_id": "text",
    "from_state": "text",
    "to_state": "text",
    "actor_kind": "text",
    "actor_user_id": "integer",
    "details": "jsonb",
    "created_at": "timestamptz",
}


def _insert_events(
    cursor, requests: Sequence[EventRequest], from_states: list[str], actor: Actor, now: datetime
) -> list[int]:
    """Insert the events with COPY, at time ``now``; their ids.

    Ids are drawn from the table's sequence first, in ascending order, so that events keep the
    order of the list (the pointing trigger takes each OP's highest id as its newest). COPY
    hands each details document to PostgreSQL once, as JSON text: the earlier single JSON
    document of all rows was parsed whole and then taken apart again, which cost PostgreSQL
    about twice as much for thousands of qualification reports.
    """
    table = ProgramEvent._meta.db_table
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
        [table, len(requests)],
    )
    event_ids = sorted(event_id for (event_id,) in cursor.fetchall())
    with cursor.copy(
        sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, _COPY_COLUMNS))
        )
    ) as copy:
        copy.set_types(list(_COPY_COLUMNS.values()))
        for event_id, request, from_state in zip(event_ids, requests, from_states, strict=True):
            requester = request.actor or actor
            copy.write_row(
                (
                    event_id,
                    request.program_id,
                    from_state,
                    request.to_state,
                    requester.kind,
                    requester.user.pk if requester.user is not None else None,
                    Jsonb(request.details, dumps=_details_json),
                    now,
                )
            )
    return event_ids


class RecordedEvents(Sequence[ProgramEvent]):
    """The events ``record_events`` wrote, in the order requested. Each ProgramEvent is built
    when it is first read: the scan and the qualification write thousands of events and read
    none, and a model instance costs more than its row's share of the writing."""

    def __init__(
        self,
        requests: Sequence[EventRequest],
        from_states: list[str],
        actor: Actor,
        event_ids: list[int],
        created_at: datetime,
    ):
        self._requests = requests
        self._from_states = from_states
        self._actor = actor
        self._event_ids = event_ids
        self._created_at = created_at
        self._events: list[ProgramEvent | None] = [None] * len(event_ids)

    def __len__(self) -> int:
        return len(self._events)

    @overload
    def __getitem__(self, index: int) -> ProgramEvent: ...
    @overload
    def __getitem__(self, index: slice) -> list[ProgramEvent]: ...
    def __getitem__(self, index: int | slice) -> ProgramEvent | list[ProgramEvent]:
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(len(self)))]
        event = self._events[index]
        if event is None:
            request = self._requests[index]
            requester = request.actor or self._actor
            event = self._events[index] = ProgramEvent(
                id=self._event_ids[index],
                program_id=request.program_id,
                from_state=self._from_states[index],
                to_state=request.to_state,
                actor_kind=requester.kind,
                actor_user=requester.user,
                details=request.details,
                created_at=self._created_at,
            )
            event._state.adding = False
            event._state.db = connection.alias
        return event


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
