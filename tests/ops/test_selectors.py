import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ops import selectors
from ops.states import State
from tests.factories import InstrumentProgramFactory, ObservingProgramFactory, program_in_state

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


def test_program_page_filters_by_current_state_and_search():
    invertible = program_in_state(State.INVERTIBLE, id="eid_1_1_opAAA_R001.1.1")
    program_in_state(State.NOT_INVERTIBLE, id="eid_1_2_opBBB_R001.1.1")
    assert list(selectors.program_page(state=State.INVERTIBLE).object_list) == [invertible]
    assert list(selectors.program_page(search="opaaa").object_list) == [invertible]
    assert selectors.state_counts() == {"invertible": 1, "not_invertible": 1}


def test_program_pages_are_newest_first_and_cost_the_same_queries_deep_down():
    programs = ObservingProgramFactory.create_batch(7)
    for program in programs:
        program_in_state(State.INVERTIBLE, id=f"{program.pk}-x")
    with CaptureQueriesContext(connection) as first:
        page = selectors.program_page(per_page=3)
        [program.current_event for program in page.object_list]
    with CaptureQueriesContext(connection) as last:
        last_page = selectors.program_page(page_number=5, per_page=3)
        [program.current_event for program in last_page.object_list]
    assert len(first) == len(last) == 3
    assert page.object_list[0].pk == programs[-1].pk + "-x"
    assert last_page.paginator.count == 14 and len(last_page.object_list) == 2
    assert last_page.object_list[-1].pk == programs[0].pk


def test_instrument_names_are_each_instrument_once_sorted():
    assert selectors.instrument_names() == []
    for instrument in ["VISP", "VBI", "VISP", "CRYO-NIRSP", "VBI"]:
        InstrumentProgramFactory(instrument=instrument)
    assert selectors.instrument_names() == ["CRYO-NIRSP", "VBI", "VISP"]


def test_a_known_count_spares_the_count_query_of_a_program_page():
    program_in_state(State.INVERTIBLE)
    with CaptureQueriesContext(connection) as counted:
        assert selectors.program_page().paginator.count == 1
    with CaptureQueriesContext(connection) as given:
        assert selectors.program_page(count=1).paginator.count == 1
    assert len(given) == len(counted) - 1
    assert not any("COUNT(" in query["sql"] for query in given.captured_queries)


def test_latest_reports_are_each_ops_newest_report_as_json_loads_reads_it():
    from ops.history import Actor, record_event
    from ops.states import ActorKind

    qualifier = Actor(ActorKind.QUALIFIER)
    first_report = {"invertible": False, "instrument_programs": [], "measured": 1.0}
    newest_report = {"invertible": True, "instrument_programs": [{"id": "ip", "measured": 10**30}]}
    twice = program_in_state(State.DISCOVERED)
    record_event(
        program_id=twice.pk, to_state=State.NOT_INVERTIBLE, actor=qualifier, details={"report": first_report}
    )
    record_event(
        program_id=twice.pk, to_state=State.INVERTIBLE, actor=qualifier, details={"report": newest_report}
    )
    # An event without a report (a note) does not hide the report before it.
    record_event(
        program_id=twice.pk, to_state=State.INVERTIBLE, actor=qualifier, details={"note": "looked at"}
    )
    once = program_in_state(State.DISCOVERED)
    record_event(
        program_id=once.pk, to_state=State.NOT_INVERTIBLE, actor=qualifier, details={"report": first_report}
    )
    never = program_in_state(State.DISCOVERED)

    reports = selectors.latest_reports(program_ids=[twice.pk, once.pk, never.pk])

    assert reports == {twice.pk: newest_report, once.pk: first_report}
    assert type(reports[once.pk]["measured"]) is float
    assert type(reports[twice.pk]["instrument_programs"][0]["measured"]) is int
