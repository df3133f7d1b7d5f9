"""The proposals page and a proposal's page (ops.views.proposal_list, proposal_detail)."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ops import views
from ops.states import State
from tests.factories import ExperimentFactory, InstrumentProgramFactory, ProposalFactory, program_in_state

pytestmark = pytest.mark.django_db

LONG = "Sunspot penumbra and light bridge, ViSP Fe I 630 nm raster with VBI context images " * 3


def op(proposal_id, state=State.INVERTIBLE, *, experiment_id=None, instruments=("VISP",), **fields):
    program = program_in_state(
        state,
        proposal=ProposalFactory(id=proposal_id),
        experiment=ExperimentFactory(id=experiment_id or proposal_id.replace("pid", "eid")),
        **fields,
    )
    for instrument in instruments:
        InstrumentProgramFactory(program=program, instrument=instrument)
    return program


def page(client, url, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def proposal_rows(html) -> list[str]:
    return re.findall(r'<a href="/proposals/([^"/]+)/"><code>', html)


def test_the_pages_need_a_login(client):
    ProposalFactory(id="pid_2_1")
    for url in [reverse("ops:proposal-list"), reverse("ops:proposal-detail", args=["pid_2_1"])]:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_proposals_are_in_numeric_order(viewer_client):
    for proposal_id in ["pid_2_10", "pid_2_9", "pid_1_20", "pid_2_100"]:
        ProposalFactory(id=proposal_id)
    html = page(viewer_client, reverse("ops:proposal-list"))
    assert proposal_rows(html) == ["pid_1_20", "pid_2_9", "pid_2_10", "pid_2_100"]
    assert "<title>Proposals · Level 2</title>" in html and "<h1>Proposals</h1>" in html


def test_each_proposal_counts_its_ops_per_state_each_a_link_to_them(viewer_client):
    op("pid_2_1", State.INVERTIBLE)
    op("pid_2_1", State.INVERTIBLE)
    op("pid_2_1", State.QUEUED)
    op("pid_2_2", State.NOT_INVERTIBLE)
    html = page(viewer_client, reverse("ops:proposal-list"))
    counts = re.findall(
        r'href="/programs/\?proposal=(pid_2_\d)&amp;state=(\w+)" title="[^"]*">[^<]*<b>(\d+)</b>', html
    )
    assert counts == [
        ("pid_2_1", "invertible", "2"),
        ("pid_2_1", "queued", "1"),
        ("pid_2_2", "not_invertible", "1"),
    ]
    assert '<a href="/programs/?proposal=pid_2_1">3</a>' in html  # every OP of it


def test_each_proposal_lists_its_instruments_and_shortened_descriptions(viewer_client):
    ExperimentFactory(id="eid_2_1", description=LONG)
    ExperimentFactory(id="eid_2_7", description="Quiet Sun")
    op("pid_2_1", experiment_id="eid_2_1", instruments=["VISP", "VBI"])
    op("pid_2_1", experiment_id="eid_2_7", instruments=["VISP"])
    op("pid_2_2", instruments=["CRYO-NIRSP"])
    html = page(viewer_client, reverse("ops:proposal-list"))
    assert "<td>VBI, VISP</td>" in html and "<td>CRYO-NIRSP</td>" in html
    summary = re.search(r"<summary>([^<]*)</summary><p>([^<]*)</p>", html)
    assert len(summary[1]) == 100 and summary[1].endswith("…") and LONG.startswith(summary[1][:-1])
    assert summary[2] == LONG.replace("'", "&#x27;")  # the full text, opened on demand
    assert '<code>eid_2_7</code>\n          <span class="description">Quiet Sun</span>' in html


def test_many_proposals_are_paginated(viewer_client, monkeypatch):
    monkeypatch.setattr(views, "PROPOSALS_PER_PAGE", 2)
    for n in range(1, 4):
        ProposalFactory(id=f"pid_2_{n}")
    first = page(viewer_client, reverse("ops:proposal-list"))
    assert proposal_rows(first) == ["pid_2_1", "pid_2_2"] and 'href="?page=2"' in first
    assert proposal_rows(page(viewer_client, reverse("ops:proposal-list"), page="2")) == ["pid_2_3"]
    assert proposal_rows(page(viewer_client, reverse("ops:proposal-list"), page="x")) == [
        "pid_2_1",
        "pid_2_2",
    ]


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_proposals_page_costs_the_same_queries_for_2_or_12_proposals(viewer_client):
    for n in range(1, 3):
        op(f"pid_2_{n}", instruments=["VISP", "VBI"])
    few = _queries(viewer_client, reverse("ops:proposal-list"))
    for n in range(3, 13):
        op(f"pid_2_{n}", State.QUEUED, instruments=["VISP", "VBI"])
        op(f"pid_2_{n}", experiment_id=f"eid_9_{n}")
    assert len(proposal_rows(page(viewer_client, reverse("ops:proposal-list")))) == 12
    # session, user, count, the page, OPs per state and experiment, experiments, instruments
    assert few == _queries(viewer_client, reverse("ops:proposal-list")) == 8


def test_a_proposal_page_shows_its_experiments_counts_and_ops(viewer_client):
    ExperimentFactory(id="eid_2_5", description=LONG)
    mine = op("pid_2_5", State.QUEUED, experiment_id="eid_2_5", id="op.mine", instruments=["VISP", "VBI"])
    op("pid_2_6", id="op.other")
    html = page(viewer_client, reverse("ops:proposal-detail", args=["pid_2_5"]))
    assert "<title>pid_2_5 · Proposals · Level 2</title>" in html
    assert "<h1>Proposal <code>pid_2_5</code></h1>" in html
    assert LONG.replace("'", "&#x27;").strip() in html  # the full description
    assert re.findall(r'<a href="/programs/([^"/]+)/"><code>', html) == [mine.pk]
    assert '<a class="state state-queued" href="/programs/?proposal=pid_2_5&amp;state=queued"' in html
    assert "<td>VBI, VISP</td>" in html


def test_a_proposal_pages_ops_sort_like_the_programs_table(viewer_client):
    for program_id, count in [("op.few", 1), ("op.many", 9)]:
        op("pid_2_5", id=program_id, dataset_count=count)
    url = reverse("ops:proposal-detail", args=["pid_2_5"])
    rows = re.compile(r'<a href="/programs/([^"/]+)/"><code>')
    assert rows.findall(page(viewer_client, url, sort="datasets")) == ["op.many", "op.few"]
    assert rows.findall(page(viewer_client, url, sort="-datasets")) == ["op.few", "op.many"]
    assert rows.findall(page(viewer_client, url, sort="bogus")) == ["op.many", "op.few"]  # newest first


def test_an_unknown_proposal_is_404(viewer_client):
    assert viewer_client.get(reverse("ops:proposal-detail", args=["pid_9_9"])).status_code == 404


def test_a_proposal_page_costs_the_same_queries_for_2_or_12_ops(viewer_client):
    url = reverse("ops:proposal-detail", args=["pid_2_5"])
    for _ in range(2):
        op("pid_2_5", instruments=["VISP", "VBI"])
    few = _queries(viewer_client, url)
    for n in range(10):
        op("pid_2_5", State.QUEUED, experiment_id=f"eid_9_{n}", instruments=["VISP", "VBI"])
    # session, user, the proposal, OPs per state and experiment, experiments, instruments, ids, OPs
    assert few == _queries(viewer_client, url) == 9


def test_the_proposals_table_refreshes_itself_alone_keeping_open_descriptions(viewer_client):
    ExperimentFactory(id="eid_2_1", description=LONG)
    op("pid_2_1")
    url = reverse("ops:proposal-list")
    html = page(viewer_client, url)
    assert 'hx-trigger="every 30s" data-poll="visible"' in html
    polled = viewer_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert polled.lstrip().startswith('<div id="proposal-table"')
    assert "<h1>" not in polled and proposal_rows(polled) == ["pid_2_1"]
    assert 'id="description-pid_2_1-eid_2_1" hx-preserve="true"' in polled


def test_a_proposal_page_refreshes_its_counts_and_programs_not_its_experiments(viewer_client):
    mine = op("pid_2_5", State.QUEUED, experiment_id="eid_2_5", id="op.mine")
    url = reverse("ops:proposal-detail", args=["pid_2_5"])
    polled = viewer_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert '<div id="proposal-live"' in polled and "<h2>Experiments</h2>" not in polled
    programs = polled.split('<div id="proposal-programs" hx-swap-oob="true">')[1]
    assert re.findall(r'<a href="/programs/([^"/]+)/"><code>', programs) == [mine.pk]
