"""Pages htmx refreshes on their own URL (level2.htmx): the browser's cache keeps the page and its
part apart, htmx's history restore gets the whole page, and messages come out of band."""

import pytest
from django.urls import reverse

from ops.states import State
from tests.factories import ScanFactory, UserFactory, program_in_state

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def refreshed_pages() -> list[str]:
    """Every page whose regions htmx refreshes with a GET of the page's own URL."""
    program = program_in_state(State.INVERTIBLE)
    scan = ScanFactory()
    return [
        reverse("board"),
        reverse("program-list") + "?state=invertible",
        reverse("ops:proposal-list"),
        reverse("ops:proposal-detail", args=[program.proposal_id]),
        reverse("ops:scan-list"),
        reverse("ops:scan-detail", args=[scan.pk]),
        reverse("inversions:queue"),
        reverse("inversions:charts"),
        reverse("program-detail", args=[program.pk]) + "?part=status",
    ]


def test_each_refreshed_page_varies_on_htmx_and_answers_it_a_part(client):
    client.force_login(UserFactory(groups=["viewers"]))
    for url in refreshed_pages():
        page = client.get(url)
        part = client.get(url, headers=HTMX)
        assert page.status_code == part.status_code == 200, url
        for response in (page, part):
            assert {"HX-Request", "HX-History-Restore-Request"} <= set(response["Vary"].split(", ")), url
        assert b"<html" in page.content and b"<html" not in part.content, url
        assert b"{#" not in page.content, url  # a {# comment #} spans one line only


def test_htmx_restoring_history_after_back_gets_the_whole_page(client):
    client.force_login(UserFactory(groups=["viewers"]))
    for url in refreshed_pages()[:-1]:  # the status part is never pushed to the history
        response = client.get(url, headers={**HTMX, "HX-History-Restore-Request": "true"})
        assert b"<html" in response.content and b'class="site-header"' in response.content, url


def test_an_htmx_action_appends_its_message_to_the_page_list_out_of_band(client):
    client.force_login(UserFactory(groups=["inverters"]))
    program = program_in_state(State.INVERTIBLE)
    response = client.post(
        reverse("inversions:program-action", args=[program.pk, "queue"]),
        {"queue-expected_state": "invertible"},
        headers=HTMX,
    )
    html = response.content.decode()
    panel, messages = html.split('<ul id="messages"')
    assert 'id="work-panel"' in panel and "Work on this next: done." not in panel
    assert messages.startswith(' class="messages" role="status" hx-swap-oob="beforeend">')
    assert "Work on this next: done." in messages and 'class="dismiss"' in messages


def test_a_message_is_shown_once(client):
    client.force_login(UserFactory(groups=["inverters"]))
    program = program_in_state(State.INVERTIBLE)
    url = reverse("program-detail", args=[program.pk])
    action = reverse("inversions:program-action", args=[program.pk, "queue"])
    client.post(action, {"queue-expected_state": "invertible"})
    assert "Work on this next: done." in client.get(url).content.decode()
    assert "Work on this next: done." not in client.get(url).content.decode()
    assert b'id="messages"' not in client.get(url + "?part=status&seen=queued", headers=HTMX).content


def test_the_favicon_answers_where_browsers_ask(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("level2/favicon.ico")
