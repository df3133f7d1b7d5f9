"""An OP's state and current event come from its history alone, kept so by the database."""

import pytest
from django.db import IntegrityError, connection, transaction

from ops.history import Actor, EventRequest, record_event, record_events
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


STALE = {"stale": {"inversion": "inv.AAAAAA", "datasets": {"BKRPQ": {"fields": ["updateDate"]}}}}


def _stale_since(program: ObservingProgram):
    return ObservingProgram.objects.values_list("stale_since", flat=True).get(pk=program.pk)


def test_a_stale_information_event_marks_the_op_stale_and_later_ones_keep_the_first_time():
    program = program_in_state(State.PUBLISHED)
    assert program.stale_since is None and not program.is_stale
    record_event(program_id=program.pk, to_state=State.PUBLISHED, actor=Actor(ActorKind.SCANNER), details={})
    assert _stale_since(program) is None
    first = record_event(
        program_id=program.pk, to_state=State.PUBLISHED, actor=Actor(ActorKind.SCANNER), details=STALE
    )
    assert _stale_since(program) == first.created_at
    record_event(
        program_id=program.pk, to_state=State.PUBLISHED, actor=Actor(ActorKind.SCANNER), details=STALE
    )
    record_event(
        program_id=program.pk,
        to_state=State.PUBLISHED,
        actor=Actor(ActorKind.INVERTER),
        details={"note": "n"},
    )
    program.refresh_from_db()
    assert program.stale_since == first.created_at and program.is_stale


def test_entering_queued_clears_stale_and_a_stale_event_while_queued_sets_it_again():
    program = program_in_state(State.PUBLISHED)
    record_event(
        program_id=program.pk, to_state=State.PUBLISHED, actor=Actor(ActorKind.SCANNER), details=STALE
    )
    record_event(program_id=program.pk, to_state=State.QUEUED, actor=Actor(ActorKind.INVERTER))
    assert _stale_since(program) is None
    again = record_event(
        program_id=program.pk, to_state=State.QUEUED, actor=Actor(ActorKind.SCANNER), details=STALE
    )
    assert _stale_since(program) == again.created_at
    # An information event in queued is not entering it.
    record_event(program_id=program.pk, to_state=State.QUEUED, actor=Actor(ActorKind.INVERTER), details={})
    assert _stale_since(program) == again.created_at


def test_within_one_statement_the_newest_marking_event_decides():
    marked, cleared = program_in_state(State.PUBLISHED), program_in_state(State.PUBLISHED)
    record_events(
        requests=[
            EventRequest(marked.pk, State.QUEUED),
            EventRequest(marked.pk, State.QUEUED, STALE),
            EventRequest(cleared.pk, State.PUBLISHED, STALE),
            EventRequest(cleared.pk, State.QUEUED),
        ],
        actor=Actor(ActorKind.INVERTER),
    )
    assert _stale_since(marked) is not None
    assert _stale_since(cleared) is None


def test_only_an_object_under_stale_in_an_information_event_marks():
    program = program_in_state(State.GENERATED)
    record_event(
        program_id=program.pk,
        to_state=State.GENERATED,
        actor=Actor(ActorKind.SCANNER),
        details={"stale": "yes"},
    )
    record_event(
        program_id=program.pk, to_state=State.PUBLISHING, actor=Actor(ActorKind.PUBLISHER), details=STALE
    )
    assert _stale_since(program) is None


def test_direct_writes_cannot_mark_or_clear_stale():
    program = program_in_state(State.PUBLISHED)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ops_observingprogram SET stale_since = now() WHERE id = %s", [program.pk])
    assert _stale_since(program) is None
    event = record_event(
        program_id=program.pk, to_state=State.PUBLISHED, actor=Actor(ActorKind.SCANNER), details=STALE
    )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ops_observingprogram SET stale_since = NULL WHERE id = %s", [program.pk])
    program.refresh_from_db()
    program.dataset_count = 3
    program.save()
    assert _stale_since(program) == event.created_at
    assert _stale_since(ObservingProgramFactory(stale_since=event.created_at)) is None


def test_editing_an_event_into_a_stale_one_is_still_refused():
    program = program_in_state(State.PUBLISHED)
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE ops_programevent SET details = %s::jsonb WHERE id = %s",
            ['{"stale": {"inversion": "inv.AAAAAA"}}', program.current_event_id],
        )
    assert _stale_since(program) is None
