"""Requests refused before any view: a NUL byte anywhere (400), a body over the limit (413)."""

from __future__ import annotations

import json

import pytest

from ops.states import State
from tests.factories import ApiTokenFactory, UserFactory, program_in_state

NUL_MESSAGE = "contains a NUL byte"


@pytest.fixture
def token(db):
    return ApiTokenFactory(user=UserFactory(username="admin", is_staff=True, is_superuser=True))


def api_headers(token) -> dict[str, str]:
    return {"Authorization": f"Token {token.secret}"}


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("/programs/a%00b/", "path"),
        ("/proposals/pid%00/", "path"),
        ("/programs/a%00b/quicklooks/x.png", "path"),
        ("/programs/?q=a%00b", "query"),
        ("/scans/?page=1%00", "query"),
    ],
)
def test_a_nul_byte_on_a_page_is_a_400_page_in_the_layout(client, staff_user, url, where):
    client.force_login(staff_user)
    response = client.get(url)
    assert response.status_code == 400
    assert f"The request&#x27;s {where} {NUL_MESSAGE}" in response.text
    assert 'class="site-header"' in response.text


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("/api/programs/a%00b", "path"),
        ("/api/programs?proposal=a%00", "query"),
        ("/api/programs?instrument=%00", "query"),
        ("/api/programs?state=invertible&x=%00", "query"),
    ],
)
def test_a_nul_byte_in_an_api_request_is_a_400_with_field_errors(client, token, url, where):
    response = client.get(url, headers=api_headers(token))
    assert response.status_code == 400
    assert response.json() == {"errors": {where: [f"The request's {where} {NUL_MESSAGE}."]}}


def test_a_nul_byte_in_a_header_or_a_cookie_is_refused(client, db):
    assert client.get("/programs/", headers={"X-Anything": "a\x00"}).status_code == 400
    # The client quotes it as "abcdefgh\000ijkl"; Django's cookie parsing makes it a NUL again.
    client.cookies["sessionid"] = "abcdefgh\x00ijkl"
    assert client.get("/programs/").status_code == 400


@pytest.mark.parametrize("note", ["a\x00b", "\x00"])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])  # the API parses both
def test_a_nul_byte_in_a_json_body_is_refused(client, token, note, content_type):
    program = program_in_state(State.INVERTIBLE)
    response = client.post(
        f"/api/programs/{program.pk}/events",
        json.dumps({"state": "invertible", "expected_state": "invertible", "note": note}),
        content_type=content_type,
        headers=api_headers(token),
    )
    assert response.status_code == 400
    assert response.json() == {"errors": {"body": [f"The request's body {NUL_MESSAGE}."]}}


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(client, token):
    program = program_in_state(State.INVERTIBLE)
    response = client.post(
        f"/api/programs/{program.pk}/events",
        '{"state": "invertible", "expected_state": "invertible", "note": "C:\\\\u0000"}',
        content_type="application/json",
        headers=api_headers(token),
    )
    assert response.status_code == 201
    assert response.json()["details"]["note"] == "C:\\u0000"


def test_a_nul_byte_in_a_form_body_is_refused(client, db):
    response = client.post(
        "/accounts/login/", "username=a%00&password=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert f"The request&#x27;s body {NUL_MESSAGE}" in response.text


def test_a_body_over_the_limit_is_413_for_the_api(client, token, settings):
    program = program_in_state(State.INVERTIBLE)
    body = '{"state": "invertible", "expected_state": "invertible", "note": "%s"}' % ("x" * 3_000_000)
    response = client.post(
        f"/api/programs/{program.pk}/events",
        body,
        content_type="application/json",
        headers=api_headers(token),
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than 2560 KiB."}


def test_a_body_over_the_limit_is_a_413_page(client, staff_user):
    client.force_login(staff_user)
    program = program_in_state(State.INVERTIBLE)
    response = client.post(
        f"/programs/{program.pk}/actions/note/",
        {"note-text": "x" * 3_000_000, "expected_state": "invertible"},
    )
    assert response.status_code == 413
    assert "Request too large" in response.text
