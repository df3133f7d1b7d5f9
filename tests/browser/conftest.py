"""Browser tests: Playwright driving Debian's Chromium against a live server.

`make test` installs Chromium where it can (root with apt-get); elsewhere these tests are
skipped with the reason, and LEVEL2_REQUIRE_BROWSER=1 turns that skip into a failure.
"""

import os
import shutil

import pytest

CHROMIUM = os.environ.get("LEVEL2_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a headless Chromium on a machine without a desktop or outside network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium():
    """A browser per test: Playwright's event loop must not outlive the test that needs it."""
    if CHROMIUM is None:
        message = "Chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("LEVEL2_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls that tests and
    # fixtures make beside it are still plain synchronous code.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture
def logged_in_page(page, live_server, committed_db):
    from tests.factories import UserFactory

    UserFactory(username="lead", password="a-long-test-password", groups=["viewers"])
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "lead")
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    return page
