from inversions import tasks
from tests.factories import UserFactory
from tests.inversions.conftest import invertible_program, published_and_stale
from tests.inversions.test_preprocess import write_level1


def test_an_inverter_queues_an_op_and_sees_it_preprocessed_without_a_reload(
    page, live_server, committed_db, local_collections, eager_tasks
):
    UserFactory(username="lead", password="a-long-test-password", groups=["inverters"])
    program = invertible_program(datasets=2)
    write_level1(local_collections, program)
    page.goto(f"{live_server.url}/accounts/login/?next=/programs/{program.pk}/")
    page.fill("input[name=username]", "lead")
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.evaluate("window.notReloaded = true")

    page.click("button:has-text('Work on this next')")

    panel = page.locator("#work-panel")
    panel.locator(".work-state .state-preprocessed").wait_for()
    assert "Start" in panel.inner_text()
    assert "6 of 6" in panel.locator("table.transfers").inner_text()
    assert page.evaluate("window.notReloaded") is True


def test_a_read_only_user_sees_no_buttons(page, live_server, committed_db):
    UserFactory(username="reader", password="a-long-test-password", groups=["viewers"])
    program = invertible_program()
    page.goto(f"{live_server.url}/accounts/login/?next=/programs/{program.pk}/")
    page.fill("input[name=username]", "reader")
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.locator("#work-panel").wait_for()
    assert page.locator("#work-panel button").count() == 0
    assert "You may look but not act" in page.locator("#work-panel").inner_text()


def test_invert_again_on_a_stale_op_queues_a_new_attempt_without_a_reload(
    page, live_server, committed_db, monkeypatch
):
    # The worker's step is only sent, never run: the OP stays queued, as the click left it.
    monkeypatch.setattr(tasks.preprocess, "apply_async", lambda *args, **options: None)
    UserFactory(username="lead", password="a-long-test-password", groups=["inverters"])
    program, first = published_and_stale()
    page.goto(f"{live_server.url}/accounts/login/?next=/programs/{program.pk}/")
    page.fill("input[name=username]", "lead")
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    assert f"Level 1 changed since {first.id}" in page.locator(".stale-notice").inner_text()
    page.evaluate("window.notReloaded = true")

    page.click("button:has-text('Invert again')")

    page.locator("#work-panel .work-state .state-queued").wait_for()
    assert page.locator(".stale-notice").count() == 0
    rows = page.locator("table.inversion-list tbody tr")
    rows.nth(1).wait_for()
    assert first.id in rows.nth(1).inner_text() and "queued" in rows.nth(0).inner_text()
    assert page.evaluate("window.notReloaded") is True
