"""The program page in a browser: the matrix's tips on keyboard focus and hover, and the page
at desktop and phone widths (screenshots under the test's tmp_path, for a look)."""

from tests.ops.test_program_detail import observed_program


def box(locator):
    return locator.bounding_box() or {"x": 0, "y": 0, "width": 0, "height": 0}


def test_a_failing_cell_shows_its_value_and_threshold_on_focus_and_hover(
    logged_in_page, live_server, tmp_path
):
    page = logged_in_page
    program = observed_program()
    page.goto(f"{live_server.url}/programs/{program.pk}/")

    failing = page.locator("table.matrix td.cell.fail")
    assert failing.count() == 1
    tip = failing.locator(".tip")
    assert box(tip)["width"] <= 1  # visually hidden until asked for

    failing.focus()
    page.screenshot(path=tmp_path / "program_tip.png")
    assert box(tip)["width"] > 100
    assert tip.inner_text() == "AO fails: measured 61 %, threshold 75 %"
    # Shown inside the matrix's box, not cut off by its scrolling.
    scroller = box(page.locator(".matrix-scroll"))
    assert box(tip)["y"] >= scroller["y"]

    passing = page.locator("table.matrix td.cell.pass").first
    passing.hover()
    assert box(passing.locator(".tip"))["width"] > 100
    assert "passes" in passing.locator(".tip").inner_text()


def test_the_page_reads_at_desktop_and_phone_widths(logged_in_page, live_server, tmp_path):
    page = logged_in_page
    program = observed_program()
    page.goto(f"{live_server.url}/programs/{program.pk}/")
    page.screenshot(path=tmp_path / "program_1280.png", full_page=True)
    matrix_fits = page.evaluate(
        "() => { const s = document.querySelector('.matrix-scroll'); return s.scrollWidth <= s.clientWidth; }"
    )
    assert matrix_fits

    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=tmp_path / "program_390.png", full_page=True)
    widths = page.evaluate(
        """() => ({
            main: document.querySelector('main').scrollWidth,
            page: document.documentElement.scrollWidth,
            matrix: document.querySelector('.matrix-scroll').scrollWidth,
            matrixBox: document.querySelector('.matrix-scroll').clientWidth,
        })"""
    )
    # The page's content does not scroll sideways; the matrix scrolls inside its own box.
    assert widths["main"] <= 390 and widths["page"] <= 390
    assert widths["matrix"] > widths["matrixBox"]
