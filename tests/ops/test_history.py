import json

import numpy as np
import pytest
from django.db import connection

from ops.history import (
    Actor,
    EventRequest,
    StaleStateError,
    TransitionError,
    record_event,
    record_events,
)
from ops.models import ProgramEvent
from ops.states import TRANSITIONS, ActorKind, State
from tests.factories import ObservingProgramFactory, UserFactory, events_of, program_in_state

pytestmark = pytest.mark.django_db

ALL_ACTORS = list(ActorKind)


def test_first_event_makes_an_op_discovered():
    program = ObservingProgramFactory()
    event = record_event(
        program_id=program.pk,
        to_state=State.DISCOVERED,
        actor=Actor(ActorKind.SCANNER),
        details={"dataset_count": 3},
    )
    program.refresh_from_db()
    assert program.state == State.DISCOVERED
    assert program.current_event == event
    assert (event.from_state, event.to_state, event.details) == ("", "discovered", {"dataset_count": 3})


# Every (source, target) pair of the table, walked from a real history, with each allowed actor.
TABLE_CASES = [
    pytest.param(rule.source, rule.target, kind, id=f"{rule.source}->{rule.target}-by-{kind}")
    for rule in TRANSITIONS
    if rule.source is not None and rule.source not in (State.ERROR, State.ARCHIVED)
    for kind in sorted(rule.by)
]


@pytest.mark.parametrize(("source", "target", "kind"), TABLE_CASES)
def test_every_transition_of_the_table_is_allowed_for_its_actors(source, target, kind):
    program = program_in_state(source)
    event = record_event(program_id=program.pk, to_state=target, actor=Actor(kind))
    assert (event.from_state, event.to_state) == (source, target)


@pytest.mark.parametrize(("source", "target", "kind"), TABLE_CASES)
def test_other_actors_are_refused_the_same_transition(source, target, kind):
    rule = next(r for r in TRANSITIONS if (r.source, r.target) == (source, target))
    others = [actor for actor in ALL_ACTORS if actor not in rule.by]
    program = program_in_state(source)
    for other in others:
        with pytest.raises(TransitionError, match="Only"):
            record_event(program_id=program.pk, to_state=target, actor=Actor(other))
    assert events_of(program)[-1].to_state == source


ALLOWED_PAIRS = {(rule.source, rule.target) for rule in TRANSITIONS}
REFUSED_CASES = [
    (source, target)
    for source in State
    if source not in (State.ERROR, State.ARCHIVED)
    for target in State
    if source != target and (source, target) not in ALLOWED_PAIRS
]


@pytest.mark.parametrize(("source", "target"), REFUSED_CASES)
def test_transitions_outside_the_table_are_refused_with_a_clear_message(source, target):
    program = program_in_state(source)
    with pytest.raises(TransitionError, match=f"cannot go from {source} to {target}"):
        record_event(program_id=program.pk, to_state=target, actor=Actor(ActorKind.STAFF))
    program.refresh_from_db()
    assert program.state == source


def test_an_op_without_history_can_only_be_discovered():
    program = ObservingProgramFactory()
    with pytest.raises(TransitionError, match="from nothing to invertible"):
        record_event(program_id=program.pk, to_state=State.INVERTIBLE, actor=Actor(ActorKind.QUALIFIER))
    assert events_of(program) == []


@pytest.mark.parametrize("kind", ALL_ACTORS)
def test_same_state_is_an_information_event_for_anyone(kind):
    program = program_in_state(State.WORKING)
    event = record_event(
        program_id=program.pk, to_state=State.WORKING, actor=Actor(kind), details={"note": "halfway"}
    )
    assert event.is_information
    assert [e.to_state for e in events_of(program)][-2:] == ["working", "working"]


@pytest.mark.parametrize(
    ("failed_step", "retry_state", "wrong_state"),
    [
        (State.PREPROCESSING, State.QUEUED, State.INVERTED),
        (State.GENERATING, State.INVERTED, State.QUEUED),
        (State.PUBLISHING, State.GENERATED, State.INVERTED),
    ],
)
def test_an_error_is_retried_from_the_state_before_the_failed_step(failed_step, retry_state, wrong_state):
    program = program_in_state(failed_step)
    record_event(program_id=program.pk, to_state=State.ERROR, actor=Actor(ActorKind.WORKER))
    with pytest.raises(TransitionError, match=f"retried from {retry_state}"):
        record_event(program_id=program.pk, to_state=wrong_state, actor=Actor(ActorKind.INVERTER))
    event = record_event(program_id=program.pk, to_state=retry_state, actor=Actor(ActorKind.PUBLISHER))
    assert (event.from_state, event.to_state) == ("error", retry_state)


def test_archiving_goes_back_to_the_state_before_only():
    program = program_in_state(State.NOT_INVERTIBLE)
    record_event(program_id=program.pk, to_state=State.ARCHIVED, actor=Actor(ActorKind.STAFF))
    with pytest.raises(TransitionError, match="goes back to not_invertible only"):
        record_event(program_id=program.pk, to_state=State.INVERTIBLE, actor=Actor(ActorKind.STAFF))
    with pytest.raises(TransitionError, match="Only staff"):
        record_event(program_id=program.pk, to_state=State.NOT_INVERTIBLE, actor=Actor(ActorKind.QUALIFIER))
    event = record_event(program_id=program.pk, to_state=State.NOT_INVERTIBLE, actor=Actor(ActorKind.STAFF))
    assert event.from_state == "archived"


def test_a_note_and_the_retry_of_an_error_in_one_batch():
    program = program_in_state(State.GENERATING)
    record_event(program_id=program.pk, to_state=State.ERROR, actor=Actor(ActorKind.WORKER))
    inverter = Actor(ActorKind.INVERTER)
    with pytest.raises(TransitionError, match="retried from inverted"):
        record_events(
            requests=[
                EventRequest(program.pk, State.ERROR, {"note": "disk full"}),
                EventRequest(program.pk, State.QUEUED),
            ],
            actor=inverter,
        )
    events = record_events(
        requests=[
            EventRequest(program.pk, State.ERROR, {"note": "disk freed"}),
            EventRequest(program.pk, State.INVERTED),
        ],
        actor=inverter,
    )
    assert [(e.from_state, e.to_state) for e in events] == [("error", "error"), ("error", "inverted")]


def test_expected_state_refuses_with_who_and_when_when_someone_acted_first():
    program = program_in_state(State.INVERTIBLE)
    lead = UserFactory(username="lead")
    record_event(
        program_id=program.pk,
        to_state=State.QUEUED,
        actor=Actor(ActorKind.INVERTER, lead),
        expected_state=State.INVERTIBLE,
    )
    with pytest.raises(StaleStateError, match=r"no longer invertible: it is queued since .* by lead") as err:
        record_event(
            program_id=program.pk,
            to_state=State.QUEUED,
            actor=Actor(ActorKind.INVERTER, UserFactory(username="second")),
            expected_state=State.INVERTIBLE,
        )
    assert err.value.current.actor_user == lead
    assert [e.to_state for e in events_of(program)].count("queued") == 1


def test_the_event_records_the_acting_user_and_details():
    program = program_in_state(State.INVERTIBLE)
    lead = UserFactory(username="lead")
    event = record_event(
        program_id=program.pk,
        to_state=State.QUEUED,
        actor=Actor(ActorKind.INVERTER, lead),
        details={"note": "best seeing of the cycle"},
    )
    event.refresh_from_db()
    assert (event.actor_kind, event.actor_user, event.actor_label) == ("inverter", lead, "lead")
    assert event.details == {"note": "best seeing of the cycle"}
    assert event.created_at is not None


def test_a_batch_is_recorded_all_or_nothing():
    first, second = ObservingProgramFactory(), ObservingProgramFactory()
    scanner = Actor(ActorKind.SCANNER)
    with pytest.raises(TransitionError):
        record_events(
            requests=[
                EventRequest(first.pk, State.DISCOVERED),
                EventRequest(second.pk, State.INVERTIBLE),
            ],
            actor=scanner,
        )
    assert events_of(first) == [] and events_of(second) == []

    events = record_events(
        requests=[
            EventRequest(first.pk, State.DISCOVERED, {"dataset_count": 3}),
            EventRequest(second.pk, State.DISCOVERED, {"dataset_count": 1}),
            EventRequest(first.pk, State.DISCOVERED, {"note": "datasets changed"}),
        ],
        actor=scanner,
    )
    assert all(event.pk for event in events)
    first.refresh_from_db()
    assert first.current_event == events[2]
    assert [(e.from_state, e.to_state) for e in events_of(first)] == [
        ("", "discovered"),
        ("discovered", "discovered"),
    ]


def test_details_are_stored_as_sent_whatever_characters_they_hold():
    program = ObservingProgramFactory()
    details = {
        "note": 'tab\there, newline\nthere, backslash \\ and "quotes"',
        "report": {"message": "corner (1,2) is 3.0″ from centre; 75 % ≥ 75 %", "values": [0.1, None, True]},
    }
    event = record_event(
        program_id=program.pk, to_state=State.DISCOVERED, actor=Actor(ActorKind.SCANNER), details=details
    )
    event.refresh_from_db()
    assert event.details == details


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({}, id="plain"),
        # json.dumps takes NumPy's floats (a subclass of float), msgspec does not.
        pytest.param({"numpy": np.float64(0.25)}, id="numpy"),
    ],
)
def test_details_are_the_jsonb_that_json_dumps_gives(extra):
    program = ObservingProgramFactory()
    details = {
        "numbers": [1e16, 1e22, 1e-7, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, -0.0, 2.5, 2**70, -3],
        "text": 'é ″ ≥ 𝄞 \u2028 \x7f \x01 \\ "quoted"',
        "nested": {"none": None, "yes": True, "list": [[], {}]},
        **extra,
    }
    event = record_event(
        program_id=program.pk, to_state=State.DISCOVERED, actor=Actor(ActorKind.SCANNER), details=details
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT details::text, %s::jsonb::text FROM ops_programevent WHERE id = %s",
            [json.dumps(details), event.pk],
        )
        stored, as_json_dumps_gives = cursor.fetchone()
    assert stored == as_json_dumps_gives


def test_numbers_that_json_cannot_hold_are_stored_as_null():
    program = ObservingProgramFactory()
    details = {"ratio": float("nan"), "limits": [float("inf"), -float("inf")], "count": 3}
    event = record_event(
        program_id=program.pk, to_state=State.DISCOVERED, actor=Actor(ActorKind.SCANNER), details=details
    )
    event.refresh_from_db()
    assert event.details == {"ratio": None, "limits": [None, None], "count": 3}


def test_recorded_events_read_as_the_rows_written():
    first, second = program_in_state(State.INVERTIBLE), program_in_state(State.INVERTIBLE)
    lead = UserFactory(username="lead")
    events = record_events(
        requests=[
            EventRequest(first.pk, State.QUEUED, {"note": "first"}),
            EventRequest(second.pk, State.QUEUED, expected_state=State.INVERTIBLE),
        ],
        actor=Actor(ActorKind.INVERTER, lead),
    )
    fields = (
        "pk",
        "program_id",
        "from_state",
        "to_state",
        "actor_kind",
        "actor_user",
        "details",
        "created_at",
    )
    assert len(events) == 2
    for event in events:
        stored = ProgramEvent.objects.get(pk=event.pk)
        assert [getattr(event, name) for name in fields] == [getattr(stored, name) for name in fields]
    assert events[-1] is events[1] and events[:1] == [events[0]]
    assert [event.program_id for event in events] == [first.pk, second.pk]


def test_an_unknown_program_is_a_clear_error():
    with pytest.raises(TransitionError, match="There is no observing program nope"):
        record_event(program_id="nope", to_state=State.DISCOVERED, actor=Actor(ActorKind.SCANNER))


def test_requests_of_two_actors_for_one_op_are_chained_and_each_checked():
    program = ObservingProgramFactory()
    qualifier = Actor(ActorKind.QUALIFIER)
    events = record_events(
        requests=[
            EventRequest(program.pk, State.DISCOVERED, {"dataset_count": 2}),
            EventRequest(program.pk, State.INVERTIBLE, {"report": {}}, State.DISCOVERED, qualifier),
        ],
        actor=Actor(ActorKind.SCANNER),
    )
    stored = events_of(program)
    assert [(e.from_state, e.to_state, e.actor_kind) for e in stored] == [
        ("", "discovered", "scanner"),
        ("discovered", "invertible", "qualifier"),
    ]
    assert [(e.pk, e.actor_kind) for e in events] == [(e.pk, e.actor_kind) for e in stored]
    program.refresh_from_db()
    assert (program.current_event_id, program.state) == (stored[1].pk, "invertible")
    # The scanner may not give a verdict: the second request's own actor is the one checked.
    other = ObservingProgramFactory()
    with pytest.raises(TransitionError, match="Only qualifier"):
        record_events(
            requests=[EventRequest(other.pk, State.DISCOVERED), EventRequest(other.pk, State.INVERTIBLE)],
            actor=Actor(ActorKind.SCANNER),
        )
    assert events_of(other) == []


def test_a_stale_request_after_an_earlier_one_of_the_same_call_names_it():
    program = ObservingProgramFactory()
    with pytest.raises(
        StaleStateError, match=r"no longer invertible: it is discovered since .* by scanner"
    ) as err:
        record_events(
            requests=[
                EventRequest(program.pk, State.DISCOVERED),
                EventRequest(
                    program.pk, State.NOT_INVERTIBLE, {}, State.INVERTIBLE, Actor(ActorKind.QUALIFIER)
                ),
            ],
            actor=Actor(ActorKind.SCANNER),
        )
    assert (err.value.current.to_state, err.value.current.actor_kind) == ("discovered", "scanner")
    assert events_of(program) == []


def test_large_details_are_stored_uncompressed():
    # Compressing thousands of reports cost the scan's batches more than the space saved
    # (migration 0013).
    program = ObservingProgramFactory()
    details = {"report": {"message": "compressible " * 1000}}
    event = record_event(
        program_id=program.pk, to_state=State.DISCOVERED, actor=Actor(ActorKind.SCANNER), details=details
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(details) FROM ops_programevent WHERE id = %s", [event.pk]
        )
        assert cursor.fetchone() == (None,)
    event.refresh_from_db()
    assert event.details == details
