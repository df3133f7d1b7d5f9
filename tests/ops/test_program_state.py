"""An OP's state and current event come from its history alone, kept so by the database."""

import pytest
from django.db import connection

from ops.history import Actor, record_event
from ops.models import ObservingProgram
from ops.states import ActorKind, State
from tests.factories import ObservingProgramFactory, program_in_state

pytestmark = pytest.mark.django_db


def test_each_event_moves_the_state_and_the_current_event():
    program = program_in_state(State.QUEUED)
    newest = program.events.order_by("-id").first()
    assert (program.state, program.current_event) == (State.QUEUED, newest)


def test_direct_sql_cannot_change_the_state():
    program = program_in_state(State.INVERTIBLE)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ops_observingprogram SET state = 'published', current_event_id = NULL WHERE id = %s",
            [program.pk],
        )
    program.refresh_from_db()
    assert program.state == State.INVERTIBLE
    assert program.current_event is not None


def test_saving_an_op_keeps_its_state():
    program = program_in_state(State.INVERTIBLE)
    stale = ObservingProgram.objects.get(pk=program.pk)
    program_in_state_event = program.current_event
    stale.state = State.PUBLISHED
    stale.current_event = None
    stale.dataset_count = 7
    stale.save()
    stale.refresh_from_db()
    assert (stale.state, stale.current_event, stale.dataset_count) == (
        State.INVERTIBLE,
        program_in_state_event,
        7,
    )


def test_a_new_op_starts_without_a_state_whatever_the_insert_says():
    program = ObservingProgramFactory(state=State.WORKING)
    program.refresh_from_db()
    assert (program.state, program.current_event, program.state_since) == ("", None, None)


def test_state_since_is_when_the_op_entered_its_state_information_events_keep_it():
    program = program_in_state(State.WORKING)
    entered = program.current_event.created_at
    assert program.state_since == entered
    record_event(
        program_id=program.pk, to_state=State.WORKING, actor=Actor(ActorKind.INVERTER), details={"note": "n"}
    )
    program.refresh_from_db()
    assert program.current_event.created_at > entered
    assert program.state_since == entered
    record_event(program_id=program.pk, to_state=State.INVERTED, actor=Actor(ActorKind.INVERTER))
    program.refresh_from_db()
    assert program.state_since == program.current_event.created_at > entered


def test_direct_sql_cannot_change_state_since():
    program = program_in_state(State.INVERTIBLE)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ops_observingprogram SET state_since = now() - interval '1 year' WHERE id = %s",
            [program.pk],
        )
    assert ObservingProgram.objects.get(pk=program.pk).state_since == program.state_since
