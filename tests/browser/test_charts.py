"""The pipeline charts in a browser: the SVG charts draw, with their legends, at desktop and phone widths."""

import time_machine
from django.utils import timezone

from ops.states import State
from tests.factories import program_in_state


def test_the_charts_draw_with_paths_bars_and_legends(logged_in_page, live_server):
    # All their events at one moment: on a busy machine, walking them through their states
    # could cross a minute and draw a band of time spent discovered.
    with time_machine.travel(timezone.now().replace(second=0, microsecond=0), tick=False):
        for state in (State.NOT_INVERTIBLE, State.QUEUED, State.WORKING, State.PUBLISHED, State.ERROR):
            program_in_state(state)
    page = logged_in_page

    page.goto(f"{live_server.url}/charts/")

    charts = page.locator("#charts svg[role=img]")
    assert charts.count() == 4  # nobody is overdue yet: that chart says so instead
    # Every OP moved on from discovered within the minute: it has bars of entering, no band.
    assert page.locator("#charts svg path.state-discovered").count() == 1
    assert page.locator("#charts svg path.state-working").count() == 3  # per state, in the work, entering
    assert page.locator("#charts svg rect.state-discovered").count() == 1  # time spent
    box = page.locator("#charts svg path.state-not_invertible").first.bounding_box()
    assert box["width"] > 100 and box["height"] > 10
    legend = page.locator("#charts .legend").first
    assert "published" in legend.inner_text()
    swatch = legend.locator(".swatch.state-error")
    assert swatch.evaluate("element => getComputedStyle(element).backgroundColor") == "rgb(240, 128, 128)"
    assert "No OP has been overdue." in page.locator("#charts").inner_text()


def test_the_charts_fit_a_phone(logged_in_page, live_server):
    program_in_state(State.QUEUED)
    page = logged_in_page
    page.set_viewport_size({"width": 390, "height": 800})

    page.goto(f"{live_server.url}/charts/")

    assert page.locator("#charts svg[role=img]").first.bounding_box()["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
