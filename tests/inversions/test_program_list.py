import datetime as dt
import re
from html import unescape as html_unescape
from urllib.parse import urlencode

import pytest
import time_machine
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ops import views
from ops.history import Actor, record_event
from ops.models import ObservingProgram
from ops.states import ActorKind, State
from tests.factories import (
    ExperimentFactory,
    InstrumentProgramFactory,
    ObservingProgramFactory,
    ProposalFactory,
    program_in_state,
)

pytestmark = pytest.mark.django_db


def test_the_login_page_answers(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Log in to Level 2" in response.content


def test_programs_need_a_login(client):
    response = client.get(reverse("program-list"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_an_empty_programs_page_says_why(viewer_client):
    response = viewer_client.get(reverse("program-list"))
    assert response.status_code == 200
    assert b"appear after the first scan" in response.content


def test_programs_page_lists_and_filters_by_state(viewer_client):
    program_in_state(State.INVERTIBLE, id="eid_1_1_opINV_R001.1.1")
    program_in_state(State.QUEUED, id="eid_1_2_opQUE_R001.1.1")
    everything = viewer_client.get(reverse("program-list"))
    assert b"opINV" in everything.content and b"opQUE" in everything.content
    queued = viewer_client.get(reverse("program-list"), {"state": "queued"})
    assert b"opQUE" in queued.content and b"opINV" not in queued.content


def test_htmx_requests_get_only_the_table(viewer_client):
    program_in_state(State.INVERTIBLE, id="eid_1_1_opINV_R001.1.1")
    response = viewer_client.get(reverse("program-list"), {"q": "opINV"}, headers={"HX-Request": "true"})
    assert response.content.lstrip().startswith(b'<div id="program-table" ')
    assert b"<html" not in response.content


def test_an_unknown_state_filter_shows_everything(viewer_client):
    program_in_state(State.INVERTIBLE, id="eid_1_1_opINV_R001.1.1")
    response = viewer_client.get(reverse("program-list"), {"state": "nonsense", "page": "x"})
    assert response.status_code == 200
    assert b"opINV" in response.content


# --- filters, sorts and the live table ------------------------------------------------------

T0 = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def op_at(when: dt.datetime, state=State.INVERTIBLE, *, instruments=(), **fields):
    """An OP first seen, and in ``state``, since ``when``; with one IP per instrument."""
    with time_machine.travel(when, tick=False):
        program = program_in_state(state, **fields)
    for instrument in instruments:
        InstrumentProgramFactory(program=program, instrument=instrument)
    return program


def listed(client, **params) -> list[str]:
    """The ids of the OPs that the programs page shows, in its order."""
    response = client.get(reverse("program-list"), params)
    assert response.status_code == 200
    return re.findall(r'<a href="/programs/([^"/]+)/"><code>', response.content.decode())


def test_the_instrument_filter_keeps_ops_with_an_ip_of_that_instrument(viewer_client):
    op_at(T0, id="op.visp", instruments=["VISP"])
    op_at(T0 + HOUR, id="op.vbi", instruments=["VBI"])
    op_at(T0 + 2 * HOUR, id="op.both", instruments=["VISP", "VBI"])
    assert listed(viewer_client, instrument="VBI") == ["op.both", "op.vbi"]
    page = viewer_client.get(reverse("program-list")).content.decode()
    assert '<option value="VBI">VBI</option>' in page and '<option value="VISP">VISP</option>' in page
    assert "<td>VBI, VISP</td>" in page  # the instruments column, sorted


def test_the_proposal_filter_keeps_that_proposals_ops_and_counts_only_them(viewer_client):
    op_at(T0, id="op.nine", proposal=ProposalFactory(id="pid_2_9"))
    op_at(T0, State.QUEUED, id="op.ninety", proposal=ProposalFactory(id="pid_2_90"))
    assert listed(viewer_client, proposal="pid_2_9") == ["op.nine"]
    page = viewer_client.get(reverse("program-list"), {"proposal": "pid_2_9"}).content.decode()
    assert re.search(r">all <b>1</b>", page) and re.search(r">queued <b>0</b>", page)


def test_search_matches_program_proposal_and_experiment_ids(viewer_client):
    op_at(
        T0, id="op.one", proposal=ProposalFactory(id="pid_3_14"), experiment=ExperimentFactory(id="eid_5_1")
    )
    op_at(
        T0, id="op.two", proposal=ProposalFactory(id="pid_3_15"), experiment=ExperimentFactory(id="eid_5_2")
    )
    assert listed(viewer_client, q="OP.TWO") == ["op.two"]
    assert listed(viewer_client, q="pid_3_14") == ["op.one"]
    assert listed(viewer_client, q="eid_5_2") == ["op.two"]
    assert listed(viewer_client, q="nothing like it") == []


def test_newest_first_is_the_default_order(viewer_client):
    op_at(T0, id="op.old")
    op_at(T0 + HOUR, id="op.new")
    assert listed(viewer_client) == listed(viewer_client, sort="newest") == ["op.new", "op.old"]


def test_state_age_sorts_by_when_each_op_entered_its_state_either_way(viewer_client):
    seen_first = op_at(T0, id="op.a")
    op_at(T0 + HOUR, id="op.b")
    op_at(T0 + HOUR, id="op.c")  # a tie with op.b: by id
    ObservingProgramFactory(id="op.nostate")  # no event yet: no state_since, last either way
    with time_machine.travel(T0 + 3 * HOUR, tick=False):
        record_event(program_id=seen_first.pk, to_state=State.QUEUED, actor=Actor(ActorKind.INVERTER))
    assert listed(viewer_client, sort="state_age") == ["op.b", "op.c", "op.a", "op.nostate"]
    assert listed(viewer_client, sort="-state_age") == ["op.a", "op.b", "op.c", "op.nostate"]


def test_dataset_count_sorts_most_or_fewest_first_ties_newest_first(viewer_client):
    op_at(T0, id="op.three", dataset_count=3)
    op_at(T0 + HOUR, id="op.nine", dataset_count=9)
    op_at(T0 + 2 * HOUR, id="op.three.newer", dataset_count=3)
    assert listed(viewer_client, sort="datasets") == ["op.nine", "op.three.newer", "op.three"]
    assert listed(viewer_client, sort="-datasets") == ["op.three.newer", "op.three", "op.nine"]


def test_score_sorts_best_first_nulls_last_ties_to_the_op_seen_first(viewer_client):
    scores = {"op.none": None, "op.fifty": 50.0, "op.ninety.old": 90.0, "op.ninety.new": 90.0}
    for hours, (program_id, score) in enumerate(scores.items()):
        op_at(T0 + hours * HOUR, id=program_id)
        ObservingProgram.objects.filter(pk=program_id).update(
            score=score,
            score_parts=None if score is None else {"instrument_program_id": "ip.1", "parts": {}},
        )
    assert listed(viewer_client, sort="score") == ["op.ninety.old", "op.ninety.new", "op.fifty", "op.none"]
    page = viewer_client.get(reverse("program-list"), {"sort": "score"}).content.decode()
    assert 'title="90 of 100 from ip.1: "' in page  # the score's hover (ops/score.html)


def test_sortable_headers_are_links_with_aria_sort(viewer_client):
    op_at(T0, id="op.a")
    page = viewer_client.get(reverse("program-list"), {"sort": "state_age", "q": "op", "page": "1"})
    html = page.content.decode()
    # The sorted column says so and reverses on a click; the others sort their way first.
    assert '<th scope="col" aria-sort="ascending"><a href="?sort=-state_age&amp;q=op">Since</a></th>' in html
    assert '<th scope="col" class="number"><a href="?sort=score&amp;q=op">Score</a></th>' in html
    assert '<a href="?sort=datasets&amp;q=op">Datasets</a>' in html
    html = viewer_client.get(reverse("program-list"), {"sort": "score"}).content.decode()
    assert 'aria-sort="descending"><a href="?sort=score">Score</a>' in html
    assert html.count("aria-sort=") == 1


def test_pagination_links_and_state_tabs_keep_every_filter_and_sort(viewer_client, monkeypatch):
    monkeypatch.setattr(views, "PROGRAMS_PER_PAGE", 2)
    proposal = ProposalFactory(id="pid_2_5")
    for n in range(3):
        op_at(T0 + n * HOUR, id=f"op.{n}", proposal=proposal, instruments=["VISP"])
    params = {"instrument": "VISP", "proposal": "pid_2_5", "q": "op.", "sort": "score"}
    html = viewer_client.get(reverse("program-list"), params).content.decode()
    next_link = re.search(r'<a href="\?([^"]*)">next', html)[1]
    assert QueryDict(html_unescape(next_link)) == QueryDict(urlencode({**params, "page": 2}))
    tab = re.search(r'<a href="\?([^"]*)">queued <b>', html)[1]
    assert QueryDict(html_unescape(tab)) == QueryDict(urlencode({**params, "state": "queued"}))
    assert listed(viewer_client, **params, page="2") == ["op.2"]  # no scores: seen first, first


def test_bad_parameters_are_ignored(viewer_client):
    op_at(T0, id="op.a", instruments=["VISP"])
    op_at(T0 + HOUR, id="op.b")
    bad = {
        "state": "nonsense",
        "instrument": "<script>",
        "sort": "'; DROP TABLE",
        "page": "-3",
        "proposal": "p" * 500,
        "q": "q" * 500,
    }
    for name, value in bad.items():
        assert listed(viewer_client, **{name: value}) == ["op.b", "op.a"], name
    assert listed(viewer_client, page="999") == ["op.b", "op.a"]  # the last page
    # The sort holds (no scores: the OP seen first first), the page falls back to the first.
    assert listed(viewer_client, sort="score", page="x") == ["op.a", "op.b"]


def test_the_table_refreshes_itself_with_its_filters_and_leaves_the_form_alone(viewer_client):
    op_at(T0, id="op.a", instruments=["VISP"])
    params = {"instrument": "VISP", "sort": "score", "q": "op"}
    full = viewer_client.get(reverse("program-list"), params).content.decode()
    table = re.search(r'<div id="program-table" ([^>]*)>', full)[1]
    url = html_unescape(re.search(r'hx-get="([^"]*)"', table)[1])
    assert url.startswith("/programs/?") and QueryDict(url.split("?", 1)[1]) == QueryDict(urlencode(params))
    assert 'hx-trigger="every 10s" data-poll="visible"' in table
    assert 'hx-swap="outerHTML"' in table
    assert full.index("</form>") < full.index('<div id="program-table"')  # the form is not swapped
    refreshed = viewer_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "<form" not in refreshed and "op.a" in refreshed and "hx-push-url" not in refreshed


def _queries(client, params) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("program-list"), params)
    assert response.status_code == 200 and b"<code>" in response.content, params
    return len(captured)


FILTERS_AND_SORTS = [
    {},
    {"state": "invertible"},
    {"instrument": "VBI"},
    {"proposal": "pid_2_1"},
    {"q": "op"},
    {"sort": "state_age"},
    {"sort": "-state_age", "state": "queued"},
    {"sort": "datasets", "instrument": "VISP"},
    {"sort": "-datasets"},
    {"sort": "score", "proposal": "pid_2_1", "q": "pid"},
    {"page": "2"},
]


def test_every_filter_and_sort_costs_the_same_queries_for_2_or_12_ops(viewer_client, monkeypatch):
    monkeypatch.setattr(views, "PROGRAMS_PER_PAGE", 10)  # page 2: the last page, then a page of its own
    proposal = ProposalFactory(id="pid_2_1")
    for n in range(2):
        op_at(T0 + n * HOUR, State.QUEUED, id=f"op.{n}", proposal=proposal, instruments=["VISP", "VBI"])
    op_at(T0, State.INVERTIBLE, id="op.inv", proposal=proposal, instruments=["VISP"])
    few = {str(params): _queries(viewer_client, params) for params in FILTERS_AND_SORTS}
    for n in range(2, 12):
        op_at(T0 + n * HOUR, State.QUEUED, id=f"op.{n}", proposal=proposal, instruments=["VISP", "VBI"])
    many = {str(params): _queries(viewer_client, params) for params in FILTERS_AND_SORTS}
    assert set(few.values()) == {7}, few  # session, user, its roles, instruments, state counts, ids, the page
    assert many == few
