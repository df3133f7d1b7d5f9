import pytest

from ops.history import (
    Actor,
    record_event,
)
from ops.states import ActorKind, State
from tests.factories import ObservingProgramFactory

pytestmark = pytest.mark.django_db


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
    assert (event.from_state, event.to_state, event.details) == ("", "discovered", {"dataset_count": 3})
