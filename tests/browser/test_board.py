"""The work board in a browser: it follows the OPs by itself, its button works in place, and it
reads at desktop and phone widths (screenshots under the test's tmp_path)."""

from ops.history import Actor, EventRequest, record_events
from ops.models import ObservingProgram
from ops.states import ActorKind, State
from tests.factories import InversionFactory, UserFactory, program_in_state
from tests.inversions.conftest import invertible_program
from tests.inversions.test_preprocess import write_level1

# Polling is every 5 s; a little more for the request itself.
REFRESH_MS = 8000


def test_the_board_shows_a_newly_invertible_op_without_a_reload(logged_in_page, live_server):
    page = logged_in_page
    page.goto(f"{live_server.url}/")
    candidates = page.locator("#candidates")
    assert "No candidates" in candidates.inner_text()
    page.evaluate("window.notReloaded = true")

    program = program_in_state(State.DISCOVERED)
    record_events(requests=[EventRequest(program.pk, State.INVERTIBLE)], actor=Actor(ActorKind.QUALIFIER))

    candidates.get_by_role("link", name=program.pk).wait_for(timeout=REFRESH_MS)
    assert "invertible 1" in page.locator(".board-counts").inner_text()
    assert page.evaluate("window.notReloaded") is True


def test_work_on_this_next_on_the_board_moves_the_op_to_up_next_in_place(
    logged_in_page, live_server, local_collections, eager_tasks
):
    UserFactory(username="lead", groups=["inverters"])
    program = invertible_program(datasets=2)
    write_level1(local_collections, program)
    page = logged_in_page
    page.goto(f"{live_server.url}/")
    page.evaluate("window.notReloaded = true")

    page.locator("#candidates").get_by_role("button", name="Work on this next").click()

    page.locator("#up-next").get_by_role("link", name=program.pk).wait_for(timeout=REFRESH_MS)
    assert "Work on this next: done." in page.locator("#messages").inner_text()
    assert "No candidates" in page.locator("#candidates").inner_text()
    assert page.evaluate("window.notReloaded") is True


def fill_board() -> None:
    owner = UserFactory(username="maria")
    for n, score in enumerate([91.5, 78.2, None, 64.0]):
        program = program_in_state(State.INVERTIBLE)
        ObservingProgram.objects.filter(pk=program.pk).update(
            score=score,
            score_parts=score
            and {
                "score": score,
                "instrument_program_id": f"id.{n}",
                "parts": {"ao": {"value": 0.9, "scaled": 0.6, "weight": 3.0}},
            },
        )
    for state in (State.QUEUED, State.PREPROCESSED, State.WORKING, State.GENERATING, State.GENERATED):
        InversionFactory(program=program_in_state(state), owner=owner, frames_done=12, frames_total=40)
    program_in_state(State.ERROR)


def columns(page) -> int:
    lefts = page.locator(".board-section").evaluate_all("sections => sections.map(s => s.offsetLeft)")
    return len(set(lefts))


def test_the_board_reads_at_desktop_and_phone_widths(logged_in_page, live_server, tmp_path):
    fill_board()
    page = logged_in_page
    page.goto(f"{live_server.url}/")
    assert page.title() == "Board · Level 2"
    assert page.locator("h1").inner_text() == "Work board"
    page.screenshot(path=tmp_path / "board.png", full_page=True)
    assert columns(page) >= 3

    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=tmp_path / "board-phone.png", full_page=True)
    assert columns(page) == 1
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_board_is_usable_from_the_keyboard(logged_in_page, live_server):
    program = program_in_state(State.INVERTIBLE)
    page = logged_in_page
    page.goto(f"{live_server.url}/")
    link = page.locator("#candidates").get_by_role("link", name=program.pk)
    for _ in range(40):
        page.keyboard.press("Tab")
        if link.evaluate("link => link === document.activeElement"):
            break
    else:
        raise AssertionError("the candidate's link is not reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/programs/{program.pk}/")
