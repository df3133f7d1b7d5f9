import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ops import selectors
from ops.states import State
from tests.factories import ObservingProgramFactory, program_in_state

pytestmark = pytest.mark.django_db


def _queries_to_read_states(count: int) -> tuple[int, list]:
    with CaptureQueriesContext(connection) as captured:
        states = [program.state for program in selectors.programs_with_state()[:count]]
    return len(captured), states


def test_the_state_of_many_ops_is_one_query():
    program_in_state(State.INVERTIBLE)
    program_in_state(State.QUEUED)
    ObservingProgramFactory.create_batch(198)
    one, _ = _queries_to_read_states(1)
    two_hundred, states = _queries_to_read_states(200)
    assert len(states) == 200
    assert one == two_hundred == 1
    assert {State.INVERTIBLE, State.QUEUED, ""} == set(states)


def test_program_list_filters_by_current_state_and_search():
    invertible = program_in_state(State.INVERTIBLE, id="eid_1_1_opAAA_R001.1.1")
    program_in_state(State.NOT_INVERTIBLE, id="eid_1_2_opBBB_R001.1.1")
    assert list(selectors.program_list(state=State.INVERTIBLE)) == [invertible]
    assert list(selectors.program_list(search="opaaa")) == [invertible]
    assert selectors.state_counts() == {"invertible": 1, "not_invertible": 1}
