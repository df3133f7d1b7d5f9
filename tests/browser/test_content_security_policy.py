"""Every page works under the Content-Security-Policy (level2/settings.py SECURE_CSP): the
browser reports no violation anywhere, and htmx still swaps and polls."""

import pytest

from ops.states import State
from tests.factories import InversionFactory, ScanFactory, UserFactory, program_in_state

PASSWORD = "a-long-test-password"


@pytest.fixture
def violations(page):
    """The browser's console messages about the policy, as they come."""
    found = []
    page.on(
        "console",
        lambda message: found.append(message.text) if "Content Security Policy" in message.text else None,
    )
    page.on("pageerror", lambda error: found.append(f"page error: {error}"))
    return found


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_no_page_violates_the_policy(page, live_server, committed_db, violations):
    UserFactory(username="admin", password=PASSWORD, is_staff=True, is_superuser=True)
    owner = UserFactory(username="maria", groups=["inverters"])
    invertible = program_in_state(State.INVERTIBLE)
    for state in (State.QUEUED, State.WORKING, State.GENERATED):
        InversionFactory(program=program_in_state(state), owner=owner, frames_done=3, frames_total=9)
    generating = InversionFactory(
        program=program_in_state(State.GENERATING), owner=owner, frames_total=9
    ).program
    working = InversionFactory(program=program_in_state(State.WORKING), owner=owner).program
    scan = ScanFactory()
    page.goto(f"{live_server.url}/accounts/login/")
    log_in(page, live_server, "admin")
    pages = [
        "/",
        "/programs/",
        f"/programs/{invertible.pk}/",
        f"/programs/{working.pk}/",
        f"/programs/{generating.pk}/",
        f"/programs/{working.pk}/report-done/",
        "/proposals/",
        f"/proposals/{invertible.proposal_id}/",
        "/work/",
        "/charts/",
        "/scans/",
        f"/scans/{scan.pk}/",
        "/admin/",
        "/admin/inversions/apitoken/add/",
        "/admin/ops/observingprogram/",
        "/api/docs",
    ]
    for path in pages:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        page.wait_for_load_state("networkidle")
        assert not violations, (path, violations)
    # The work panel polls (every 2 s), the board swaps its sections (every 5 s): under the policy too.
    with page.expect_response(lambda response: "part=status" in response.url, timeout=8000):
        page.goto(f"{live_server.url}/programs/{generating.pk}/")
    page.goto(f"{live_server.url}/")
    with page.expect_response(
        lambda response: response.request.headers.get("hx-request") == "true", timeout=10000
    ):
        pass
    assert not violations, violations


def test_pages_of_refusals_and_logging_in_keep_the_policy(page, live_server, committed_db, violations):
    UserFactory(username="newcomer", password=PASSWORD)
    response = page.goto(f"{live_server.url}/accounts/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    log_in(page, live_server, "newcomer")
    assert "has no role in Level 2 yet" in page.content()
    assert not violations, violations
