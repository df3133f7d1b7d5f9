"""Globus's file picker for "Report done": the link we give, and the post-back we accept."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.test import Client, RequestFactory
from django.urls import include, path, reverse

from inversions.globus_picker import picker_url
from inversions.transfers import _backend_for
from level2.urls import urlpatterns as project_urlpatterns
from ops.states import State
from tests.factories import UserFactory, program_in_state

# Until level2/urls.py includes them, the Globus URLs beside the project's.
urlpatterns = [path("accounts/globus/", include("inversions.globus_urls")), *project_urlpatterns]
pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]

PROGRAM = "pid_1_118_ip"
TEAM_COLLECTION = "7a7a7a7a-0000-4000-8000-00000000000c"


@pytest.fixture
def globus_backend(settings):
    settings.GLOBUS_CLIENT_ID, settings.GLOBUS_CLIENT_SECRET = "service-client", "service-secret"
    _backend_for.cache_clear()
    yield
    _backend_for.cache_clear()


@pytest.fixture
def inverter(db):
    return UserFactory(username="lead-inverter", groups=["inverters"])


def link_for(user, program_id: str = PROGRAM) -> str:
    request = RequestFactory().get(f"/programs/{program_id}/report-done/")
    request.user = user
    return picker_url(request=request, program_id=program_id)


def callback_of(link: str) -> str:
    """Where Globus will post back: the picker link's ``action``, made relative."""
    action = urlsplit(parse_qs(urlsplit(link).query)["action"][0])
    return f"{action.path}?{action.query}"


def post_back(url: str, **fields):
    # Globus posts from its own page: no CSRF token of ours, no session of ours.
    return Client(enforce_csrf_checks=True).post(url, {"endpoint_id": TEAM_COLLECTION, **fields})


def test_picker_link_opens_globus_browse_page(globus_backend, inverter, monkeypatch):
    monkeypatch.setenv("GLOBUS_SDK_ENVIRONMENT", "preview")

    link = urlsplit(link_for(inverter))

    assert f"{link.scheme}://{link.netloc}{link.path}" == "https://app.preview.globus.org/file-manager"
    query = {name: values[0] for name, values in parse_qs(link.query).items()}
    assert (query["method"], query["folderlimit"], query["filelimit"]) == ("POST", "1", "3")
    assert query["action"].startswith(f"http://testserver/accounts/globus/picker/{PROGRAM}/?token=")
    assert query["cancelurl"] == f"http://testserver{reverse('inversions:report-done', args=[PROGRAM])}"


def test_no_picker_without_globus(settings, inverter):
    settings.GLOBUS_CLIENT_ID = ""
    _backend_for.cache_clear()

    assert link_for(inverter) == ""


def form_after(response, user) -> str:
    """The Report done page that the post-back's answer leads ``user`` to."""
    client = Client()
    client.force_login(user)
    return client.get(response["Location"]).text


def test_post_back_with_our_token_prefills_report_done_of_its_user_once(globus_backend, inverter):
    program_in_state(State.WORKING, id=PROGRAM)
    response = post_back(
        callback_of(link_for(inverter)), path="/runs/pid_1_118/", **{"file[0]": "inv_res_mod.fits"}
    )

    assert response.status_code == 303
    location = urlsplit(response["Location"])
    assert location.path == reverse("inversions:report-done", args=[PROGRAM])
    assert list(parse_qs(location.query)) == ["picked"]  # the choice itself stays on the server
    other = UserFactory(username="other-inverter", groups=["inverters"])
    assert 'value="/runs/pid_1_118/"' not in form_after(response, other)
    page = form_after(response, inverter)
    assert 'value="/runs/pid_1_118/"' in page and f'value="{TEAM_COLLECTION}"' in page
    again = form_after(response, inverter)
    assert 'value="/runs/pid_1_118/"' not in again and "used already" in again


def test_a_chosen_folder_is_the_result_path(globus_backend, inverter):
    program_in_state(State.WORKING, id=PROGRAM)
    response = post_back(callback_of(link_for(inverter)), path="/runs/", **{"folder[0]": "pid_1_118"})

    assert 'value="/runs/pid_1_118"' in form_after(response, inverter)


def test_a_post_back_is_accepted_once(globus_backend, inverter):
    url = callback_of(link_for(inverter))
    assert post_back(url, path="/runs/").status_code == 303

    replayed = post_back(url, path="/elsewhere/")

    assert replayed.status_code == 403 and "used already" in replayed.text


def test_report_done_is_not_prefilled_from_its_address(inverter, local_collections):
    program_in_state(State.WORKING, id=PROGRAM)
    client = Client()
    client.force_login(inverter)
    page = client.get(reverse("inversions:report-done", args=[PROGRAM]), {"result_path": "/forged/"}).text
    assert "/forged/" not in page


def test_post_back_without_a_token_is_refused(globus_backend):
    response = post_back(f"/accounts/globus/picker/{PROGRAM}/", path="/runs/")

    assert response.status_code == 403
    assert "does not come from a Level 2 page" in response.text


def test_post_back_with_a_bad_token_is_refused(globus_backend, inverter):
    tampered = callback_of(link_for(inverter)).replace("token=", "token=x")

    response = post_back(tampered, path="/runs/")

    assert response.status_code == 403


def test_post_back_after_an_hour_is_refused(globus_backend, inverter):
    with time_machine.travel("2026-03-01 12:00 +0000", tick=False) as traveller:
        url = callback_of(link_for(inverter))
        traveller.shift(timedelta(minutes=61))
        response = post_back(url, path="/runs/")

    assert response.status_code == 403
    assert "more than an hour" in response.text


def test_a_token_for_another_program_is_refused(globus_backend, inverter):
    url = callback_of(link_for(inverter, "pid_9_999")).replace("pid_9_999", PROGRAM)

    assert post_back(url, path="/runs/").status_code == 403


def test_a_token_of_another_user_is_refused(globus_backend, inverter):
    url = callback_of(link_for(inverter))
    other = Client()
    other.force_login(UserFactory(username="someone-else"))

    assert other.post(url, {"endpoint_id": TEAM_COLLECTION, "path": "/runs/"}).status_code == 403
