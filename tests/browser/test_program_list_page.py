from ops.states import State
from tests.factories import program_in_state


def test_login_leads_to_the_board(logged_in_page, live_server):
    assert logged_in_page.url == f"{live_server.url}/"
    assert logged_in_page.locator("h1").inner_text() == "Work board"


def test_choosing_a_state_swaps_the_table_in_place(logged_in_page, live_server):
    program_in_state(State.INVERTIBLE, id="eid_1_1_opINV_R001.1.1")
    program_in_state(State.NOT_INVERTIBLE, id="eid_1_2_opNOT_R001.1.1")
    page = logged_in_page
    page.goto(f"{live_server.url}/programs/")
    page.evaluate("window.notReloaded = true")

    page.select_option("select[name=state]", "invertible")
    page.wait_for_url("**/programs/?state=invertible*")

    table = page.locator("#program-table")
    assert "opINV" in table.inner_text()
    assert "opNOT" not in table.inner_text()
    assert page.evaluate("window.notReloaded") is True


def test_a_pasted_search_filters_while_the_box_keeps_the_focus(logged_in_page, live_server):
    program_in_state(State.INVERTIBLE, id="eid_1_1_opINV_R001.1.1")
    program_in_state(State.NOT_INVERTIBLE, id="eid_1_2_opNOT_R001.1.1")
    page = logged_in_page
    page.goto(f"{live_server.url}/programs/")
    search = page.locator("input[name=q]")
    search.focus()

    page.keyboard.insert_text("opINV")  # as a paste: one input event, no key pressed

    page.wait_for_url("**/programs/?*q=opINV*")
    table = page.locator("#program-table")
    table.get_by_text("1 program", exact=True).wait_for()
    assert "opNOT" not in table.inner_text()
    assert page.evaluate("document.activeElement.name") == "q"
