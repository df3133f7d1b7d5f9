"""Back after htmx refreshed a page returns the whole page, not the bare part the refresh fetched
from the same URL (level2.htmx.render_page varies on HX-Request)."""

import pytest

from ops.states import State
from tests.factories import InversionFactory, program_in_state

# A little more than the longest refresh interval of these pages (10 s).
REFRESH_MS = 11_000


@pytest.mark.parametrize(
    ("path", "part", "heading"),
    [
        ("/programs/", "#program-table", "Observing programs"),
        ("/work/", "#queue-table", "Work queue"),
        ("/", "#board-sections", "Work board"),
        ("/proposals/", "#proposal-table", "Proposals"),
    ],
)
def test_back_after_a_refresh_shows_the_whole_page(logged_in_page, live_server, path, part, heading):
    program = program_in_state(State.QUEUED)
    InversionFactory(program=program)
    page = logged_in_page
    page.clock.install()
    page.goto(f"{live_server.url}{path}")
    with page.expect_response(lambda response: response.request.headers.get("hx-request") == "true"):
        page.clock.fast_forward(REFRESH_MS)
    page.locator(part).wait_for()

    page.goto(f"{live_server.url}/programs/{program.pk}/")
    page.go_back()

    assert page.locator("h1").inner_text() == heading
    assert page.locator(".site-header nav").is_visible()
    assert page.locator(part).is_visible()


def test_back_after_filtering_the_programs_shows_the_whole_page(logged_in_page, live_server):
    program = program_in_state(State.INVERTIBLE, id="eid_1_1_opINV_R001.1.1")
    page = logged_in_page
    page.goto(f"{live_server.url}/programs/")
    page.select_option("select[name=state]", "invertible")
    page.wait_for_url("**/programs/?state=invertible*")

    page.locator("#program-table").get_by_role("link", name=program.pk).click()
    page.wait_for_url(f"**/programs/{program.pk}/")
    page.go_back()

    page.wait_for_url("**/programs/?state=invertible*")
    assert page.locator("h1").inner_text() == "Observing programs"
    assert page.locator("form.filters").is_visible()
    assert "opINV" in page.locator("#program-table").inner_text()
