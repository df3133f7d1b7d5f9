"""Reading needs a role, decided on the server for every page and API route (inversions.access)."""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter

from ops.states import State
from tests.factories import ApiTokenFactory, UserFactory, program_in_state

pytestmark = pytest.mark.django_db

# Open to anyone: logging in and out, and the post-backs that carry their own proof.
OPEN = {
    "login",
    "logout",
    "globus:login",
    "globus:login-callback",
    "globus:picker-callback",
    "admin:login",
    "admin:logout",
    # Prometheus' scrapes: an address allow-list or a bearer token, not a role (tests/level2/test_health.py).
    "metrics",
}


def _patterns(resolver=None, namespace=""):
    """(name, kwargs) of every named URL pattern, with made-up values for its parameters."""
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _patterns(entry, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            converters = getattr(entry.pattern, "converters", {})
            kwargs = {
                name: 1 if isinstance(converter, IntConverter) else "x"
                for name, converter in converters.items()
            }
            if not converters and entry.pattern.regex.groupindex:
                continue  # admin's regex routes are covered by the named ones around them
            yield f"{namespace}{entry.name}", kwargs


def _api_route(name: str) -> bool:
    """A route of the API, which answers for itself (its schema and docs page are pages)."""
    return name.startswith("api:") and name not in {"api:openapi-json", "api:openapi-view"}


ROUTES = sorted({(name, tuple(sorted(kwargs.items()))) for name, kwargs in _patterns()})


def test_the_walk_finds_the_pages_and_the_api():
    names = {name for name, _ in ROUTES}
    assert {
        "board",
        "program-detail",
        "program-list",
        "inversions:report-done",
        "api:openapi-json",
    } <= names
    assert len(names) > 40  # admin's too


@pytest.mark.parametrize(("name", "kwargs"), [route for route in ROUTES if route[0] not in OPEN])
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_account_with_no_role_gets_nothing_anywhere(client, name, kwargs, method):
    client.force_login(UserFactory(username="newcomer", email="new@nso.example"))
    program_in_state(State.INVERTIBLE, id="x")
    url = reverse(name, kwargs=dict(kwargs))
    response = getattr(client, method)(url)
    if _api_route(name):
        assert response.status_code in {401, 403, 404, 405}, url  # 404, 405: nothing here
    else:
        assert response.status_code == 403, url
        assert b"has no role in Level 2 yet" in response.content, url


@pytest.mark.parametrize(("name", "kwargs"), [route for route in ROUTES if route[0] not in OPEN])
def test_anonymous_users_are_sent_to_log_in(client, name, kwargs):
    url = reverse(name, kwargs=dict(kwargs))
    response = client.get(url)
    if _api_route(name):
        assert response.status_code in {401, 404, 405}, url
    else:
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_the_no_role_page_says_whom_to_ask_and_shows_nothing_else(client):
    UserFactory(username="desk", first_name="Ada", last_name="Desk", email="desk@nso.example", is_staff=True)
    client.force_login(UserFactory(username="newcomer"))
    response = client.get(reverse("board"))
    html = response.content.decode()
    assert response.status_code == 403
    assert "newcomer" in html and "has no role in Level 2 yet" in html
    assert '<a href="mailto:desk@nso.example">Ada Desk</a>' in html
    assert reverse("program-list") not in html and "Log out" in html


def test_an_api_token_of_an_account_with_no_role_is_refused_saying_why(client):
    token = ApiTokenFactory(user=UserFactory(username="newcomer"))
    response = client.get("/api/programs", headers={"Authorization": f"Token {token.secret}"})
    assert response.status_code == 403
    assert response.json()["detail"].startswith("newcomer has no role in Level 2 yet")


@pytest.mark.parametrize(
    "user",
    [{"groups": ["viewers"]}, {"groups": ["inverters"]}, {"groups": ["publishers"]}, {"is_staff": True}],
)
def test_every_role_reads(client, user):
    client.force_login(UserFactory(username="someone", **user))
    program = program_in_state(State.INVERTIBLE)
    assert client.get(reverse("board")).status_code == 200
    assert client.get(reverse("program-detail", args=[program.pk])).status_code == 200
    token = ApiTokenFactory(user=UserFactory(username="script", **user))
    assert client.get("/api/programs", headers={"Authorization": f"Token {token.secret}"}).status_code == 200


def test_the_viewers_group_is_made_by_a_migration():
    migration = importlib.import_module("ops.migrations.0010_viewers_group")
    Group.objects.filter(name="viewers").delete()
    migration.create_group(apps, None)
    assert Group.objects.filter(name="viewers").exists()


def test_a_refusal_is_a_page_in_the_layout_saying_why(client):
    client.force_login(UserFactory(username="reader", groups=["viewers"]))
    program = program_in_state(State.GENERATED)
    response = client.post(
        reverse("inversions:program-action", args=[program.pk, "publish"]),
        {"publish-expected_state": "generated"},
    )
    html = response.content.decode()
    assert response.status_code == 403
    assert "Publish needs the publishers role." in html
    assert 'class="site-header"' in html and "Level 2 admins" in html


def test_a_viewer_is_told_why_there_are_no_buttons(client):
    client.force_login(UserFactory(username="reader", groups=["viewers"]))
    program = program_in_state(State.INVERTIBLE)
    html = client.get(reverse("program-detail", args=[program.pk])).content.decode()
    assert "You may look but not act" in html
    assert "You may look but not act" in client.get(reverse("board")).content.decode()


def test_the_read_only_line_is_not_shown_to_those_who_act(client):
    for index, user in enumerate([{"groups": ["inverters"]}, {"is_staff": True}]):
        client.force_login(UserFactory(username=f"actor{index}", **user))
        program = program_in_state(State.INVERTIBLE)
        html = client.get(reverse("program-detail", args=[program.pk])).content.decode()
        assert "You may look but not act" not in html
