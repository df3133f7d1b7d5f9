"""A publisher's reprocessing campaign in a browser, under the Content-Security-Policy: the commit
filter in place, the confirmation, and a long campaign's progress page following the worker."""

from inversions import campaigns, services, tasks
from inversions.models import Campaign
from tests.factories import UserFactory, published_program

COMMIT = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"


def test_a_publisher_filters_by_commit_and_follows_a_long_campaign(
    page, live_server, committed_db, monkeypatch, sent_tasks
):
    # The worker's steps after queueing are not this test's: no task leaves for the broker.
    monkeypatch.setattr(services, "start_automatic_step", lambda **kwargs: None)
    monkeypatch.setattr(campaigns, "RUN_IN_REQUEST_AT_MOST", 1)
    programs = [published_program(commit=COMMIT) for _ in range(2)]
    published_program(commit="ffee0011")
    UserFactory(username="pub", password="a-long-test-password", groups=["publishers"])
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "pub")
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/programs/")

    commit = page.locator("input[name=commit]")
    commit.fill("xyz1")
    page.locator("#program-table").get_by_text("A software commit is 4 to 40 hexadecimal digits").wait_for()
    commit.fill(COMMIT[:7].upper())
    page.get_by_role("button", name="Queue all 2 published to invert again…").click()

    page.wait_for_url("**/campaigns/*/")
    assert all(program.pk in page.content() for program in programs)
    page.get_by_role("button", name="Queue these 2 to invert again").click()
    page.get_by_text("0 of 2").wait_for()
    campaign_id = Campaign.objects.get().pk
    assert sent_tasks == [("inversions.tasks.run_campaign", [campaign_id], False)]

    tasks.run_campaign(campaign_id)  # the worker; the page polls and shows the outcome
    page.locator("h2", has_text="Done").wait_for(timeout=10_000)
    assert "2 of 2: 2 queued, 0 refused." in page.locator("#campaign-status").inner_text()
    assert not [error for error in errors if "Content Security Policy" in error], errors
