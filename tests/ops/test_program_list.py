import pytest
from django.urls import reverse

from ops.states import State
from tests.factories import program_in_state

pytestmark = pytest.mark.django_db


def test_the_login_page_answers(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Log in to Level 2" in response.content


def test_programs_need_a_login(client):
    response = client.get(reverse("ops:program-list"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_an_empty_programs_page_says_why(viewer_client):
    response = viewer_client.get(reverse("ops:program-list"))
    assert response.status_code == 200
    assert b"appear after the first scan" in response.content


def test_programs_page_lists_and_filters_by_state(viewer_client):
    program_in_state(State.INVERTIBLE, id="eid_1_1_opINV_R001.1.1")
    program_in_state(State.QUEUED, id="eid_1_2_opQUE_R001.1.1")
    everything = viewer_client.get(reverse("ops:program-list"))
    assert b"opINV" in everything.content and b"opQUE" in everything.content
    queued = viewer_client.get(reverse("ops:program-list"), {"state": "queued"})
    assert b"opQUE" in queued.content and b"opINV" not in queued.content


def test_htmx_requests_get_only_the_table(viewer_client):
    program_in_state(State.INVERTIBLE, id="eid_1_1_opINV_R001.1.1")
    response = viewer_client.get(reverse("ops:program-list"), {"q": "opINV"}, headers={"HX-Request": "true"})
    assert response.content.lstrip().startswith(b'<div id="program-table">')
    assert b"<html" not in response.content


def test_an_unknown_state_filter_shows_everything(viewer_client):
    program_in_state(State.INVERTIBLE, id="eid_1_1_opINV_R001.1.1")
    response = viewer_client.get(reverse("ops:program-list"), {"state": "nonsense", "page": "x"})
    assert response.status_code == 200
    assert b"opINV" in response.content
