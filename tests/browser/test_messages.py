"""The losing click's message stays: it lives outside the work panel, which the status poll
replaces once the worker moves the OP (templates/messages.html, level2.htmx)."""

from ops.history import Actor, EventRequest, record_events
from ops.states import ActorKind, State
from tests.factories import InversionFactory, UserFactory
from tests.inversions.conftest import invertible_program

# The work panel polls its status every 2 s.
POLL_MS = 5000


def test_the_message_after_a_lost_race_outlives_the_next_status_poll(page, live_server, committed_db):
    winner = UserFactory(username="lead", groups=["inverters"])
    UserFactory(username="loser", password="a-long-test-password", groups=["inverters"])
    program = invertible_program()
    page.goto(f"{live_server.url}/accounts/login/?next=/programs/{program.pk}/")
    page.fill("input[name=username]", "loser")
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.locator("#work-panel").wait_for()

    # The other lead clicks first, while this page still shows "Work on this next".
    InversionFactory(program=program, owner=winner)
    record_events(
        requests=[EventRequest(program.pk, State.QUEUED, expected_state=State.INVERTIBLE)],
        actor=Actor(ActorKind.INVERTER, winner),
    )
    page.click("button:has-text('Work on this next')")
    message = page.locator("#messages li")
    message.wait_for()
    assert "is no longer invertible: it is queued since" in message.inner_text()
    assert "by lead" in message.inner_text()

    # The worker moves the OP: the next poll brings a new work panel.
    record_events(requests=[EventRequest(program.pk, State.PREPROCESSING)], actor=Actor(ActorKind.WORKER))
    page.locator("#work-panel .work-state .state-preprocessing").wait_for(timeout=POLL_MS)

    assert "is no longer invertible" in message.inner_text()
    message.get_by_role("button", name="Dismiss this message").click()
    assert page.locator("#messages li").count() == 0
