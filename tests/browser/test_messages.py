"""The losing click's message stays: it lives outside the work panel, which the status poll
replaces once the worker moves the OP (templates/messages.html, level2.htmx)."""

from django.contrib.auth.models import Group

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


def _log_in(page, live_server, username: str, next_path: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.locator("#work-panel").wait_for()


def test_a_refused_form_shows_its_errors_in_the_panel(page, live_server, committed_db):
    """A 400 answer carrying the panel is swapped: htmx alone would leave the click unanswered."""
    lead = UserFactory(username="lead", password="a-long-test-password", groups=["inverters"])
    program = invertible_program()
    InversionFactory(program=program, owner=lead)
    record_events(requests=[EventRequest(program.pk, State.QUEUED)], actor=Actor(ActorKind.INVERTER, lead))
    _log_in(page, live_server, "lead", f"/programs/{program.pk}/")

    # Blanks pass the browser's "required" check; the server strips them and refuses.
    page.fill("input[name='put-back-reason']", "   ")
    page.click("button:has-text('Put back')")

    page.locator("#work-panel .errorlist").wait_for()
    assert "This field is required." in page.locator("#work-panel").inner_text()
    assert page.locator("#work-panel .work-state .state-queued").count() == 1


def test_a_refusal_page_becomes_a_message(page, live_server, committed_db):
    """A 403 error page (here: the role was taken away after the page was shown) is not swapped
    into the panel; its reason becomes a message."""
    user = UserFactory(username="lead", password="a-long-test-password", groups=["inverters"])
    program = invertible_program()
    _log_in(page, live_server, "lead", f"/programs/{program.pk}/")

    user.groups.set([Group.objects.get_or_create(name="viewers")[0]])
    page.click("button:has-text('Work on this next')")

    message = page.locator("#messages li.error")
    message.wait_for()
    assert message.inner_text().startswith("Not allowed: Work on this next needs the inverters role.")
    assert page.locator("#work-panel h1").count() == 0  # no page inside the panel
    assert page.locator("#work-panel .work-state .state-invertible").count() == 1
