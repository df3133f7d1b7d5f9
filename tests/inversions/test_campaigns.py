"""Reprocessing campaigns (inversions.campaigns): a publisher queues many published OPs to invert
again, each from the state it was seen in; the filter by software commit that chooses them; the
pages and the API."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from inversions import campaigns, selectors, services, tasks
from inversions.models import Campaign, CampaignItem, Inversion
from ops.history import Actor, record_event
from ops.models import ObservingProgram
from ops.states import ActorKind, State
from tests.factories import (
    ApiTokenFactory,
    InversionFactory,
    UserFactory,
    program_in_state,
    published_program,
)
from tests.inversions.conftest import invertible_program

pytestmark = pytest.mark.django_db

COMMIT = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
OTHER_COMMIT = "ffee0011ffee0011ffee0011ffee0011ffee0011"


def _ids(programs) -> list[str]:
    return [program.pk for program in programs]


RUN_CAMPAIGN = "inversions.tasks.run_campaign"


# --- the filter by the software commit of the latest inversion -----------------------------------


def test_the_commit_filter_reads_each_programs_latest_reported_inversion(inverter):
    old = published_program(commit=COMMIT)
    InversionFactory(program=old, published=True, software_commit=OTHER_COMMIT)  # reported later
    current = published_program(commit=COMMIT)
    # Queued again: the new attempt has no report yet, so the last report's commit still counts.
    again = published_program(commit=COMMIT)
    services.queue_program(program_id=again.pk, user=inverter, expected_state=State.PUBLISHED)
    other = published_program(commit=OTHER_COMMIT)

    def matching(prefix: str) -> set[str]:
        return set(selectors.programs_by_latest_commit(prefix).values_list("program_id", flat=True))

    assert matching(COMMIT[:4]) == {current.pk, again.pk}
    assert matching(COMMIT) == {current.pk, again.pk}
    assert matching(OTHER_COMMIT[:7]) == {old.pk, other.pk}
    assert matching("abcd") == set()


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "xyzw",
        "1a2b%",
        "1a2b_",
        "' OR 1=1 --",
        "\uff11\uff12\uff13\uff14",
        "a" * 41,
        "1a2b 3c4d",
        "0x1a2b",
    ],
    ids=[
        "short",
        "not hex",
        "percent",
        "underscore",
        "sql",
        "fullwidth digits",
        "too long",
        "blank",
        "0x",
    ],
)
def test_a_commit_that_is_not_one_is_a_clear_error_on_the_page_and_in_the_api(viewer_client, text):
    published_program(commit=COMMIT)
    response = viewer_client.get(reverse("program-list"), {"commit": text})
    assert response.status_code == 400
    assert "A software commit is 4 to 40 hexadecimal digits" in response.content.decode()
    assert "0 programs" in response.content.decode()  # not every program, as if they matched
    # The table's part, which htmx swaps in place (messages.js), says it too.
    part = viewer_client.get(reverse("program-list"), {"commit": text}, headers={"HX-Request": "true"})
    assert part.status_code == 400
    assert "A software commit is 4 to 40 hexadecimal digits" in part.content.decode()

    token = ApiTokenFactory(user=UserFactory(username="reader", groups=["viewers"]))
    api = viewer_client.get(
        "/api/programs", {"commit": text}, headers={"Authorization": f"Token {token.secret}"}
    )
    assert api.status_code == 400
    assert list(api.json()["errors"]) == ["commit"]


def test_the_programs_table_filters_by_commit_prefix_in_any_case(viewer_client):
    matching = [published_program(commit=COMMIT) for _ in range(2)]
    other = published_program(commit=OTHER_COMMIT)
    page = viewer_client.get(reverse("program-list"), {"commit": COMMIT[:6].upper()}).content.decode()
    assert "2 programs" in page
    assert all(program.pk in page for program in matching)
    assert other.pk not in page


def test_the_api_lists_programs_by_commit_prefix(client):
    matching = published_program(commit=COMMIT)
    published_program(commit=OTHER_COMMIT)
    token = ApiTokenFactory(user=UserFactory(username="reader", groups=["viewers"]))
    response = client.get(
        "/api/programs", {"commit": COMMIT[:8]}, headers={"Authorization": f"Token {token.secret}"}
    )
    assert response.status_code == 200
    assert response.json()["count"] == 1
    assert [item["program_id"] for item in response.json()["items"]] == [matching.pk]


# --- the campaign service -------------------------------------------------------------------------


def test_a_campaign_queues_each_op_after_the_queue_and_refuses_those_that_moved(inverter, publisher):
    already = invertible_program()
    services.queue_program(program_id=already.pk, user=inverter)
    programs = [published_program(commit=COMMIT) for _ in range(4)]
    not_published = program_in_state(State.GENERATED)
    items = [(program.pk, State.PUBLISHED) for program in programs] + [(not_published.pk, State.GENERATED)]
    campaign = campaigns.create_campaign(user=publisher, items=items, description="commit 1a2b3c4")
    # Between the confirmation page and the confirmation, the lead inverts one again, and the
    # worker moves it on.
    services.queue_program(program_id=programs[1].pk, user=inverter, expected_state=State.PUBLISHED)
    record_event(program_id=programs[1].pk, to_state=State.PREPROCESSING, actor=Actor(ActorKind.WORKER))

    assert campaigns.confirm_campaign(campaign_id=campaign.pk, user=publisher)
    campaign = campaigns.run_campaign(campaign_id=campaign.pk)

    assert (campaign.status, campaign.requested, campaign.queued, campaign.refused) == ("done", 5, 3, 2)
    outcomes = {item.program_id: item for item in campaign.items.all()}
    moved = outcomes[programs[1].pk]
    assert moved.outcome == "refused"
    assert "no longer published: it is preprocessing since" in moved.reason
    assert moved.reason.endswith(" UTC: queued by lead.")  # who took it, not only who acted last
    assert outcomes[not_published.pk].outcome == "refused"
    assert "not published" in outcomes[not_published.pk].reason
    queued = [programs[0], programs[2], programs[3]]
    for program in queued:
        program.refresh_from_db()
        assert program.state == State.QUEUED
        assert outcomes[program.pk].inversion.owner == publisher
        assert outcomes[program.pk].inversion.note == f"Campaign {campaign.pk}: commit 1a2b3c4"
    # The Work queue: what was there, the lead's own, then the campaign's in its order.
    order = [row.inversion.program_id for row in selectors.work_queue().object_list]
    assert order == [already.pk, programs[1].pk, *_ids(queued)]


def test_a_campaign_confirmed_twice_queues_once(publisher):
    program = published_program(commit=COMMIT)
    campaign = campaigns.create_campaign(user=publisher, items=[(program.pk, State.PUBLISHED)])
    assert campaigns.confirm_campaign(campaign_id=campaign.pk, user=publisher)
    campaigns.run_campaign(campaign_id=campaign.pk)
    assert not campaigns.confirm_campaign(campaign_id=campaign.pk, user=publisher)
    campaigns.run_campaign(campaign_id=campaign.pk)
    assert Inversion.objects.filter(program=program).count() == 2  # the published one and one new
    assert Campaign.objects.get().queued == 1


def test_only_publishers_make_and_confirm_campaigns(inverter, publisher):
    program = published_program(commit=COMMIT)
    viewer = UserFactory(username="reader", groups=["viewers"])
    for user in (inverter, viewer, UserFactory(username="staffer", is_staff=True)):
        with pytest.raises(PermissionDenied):
            campaigns.create_campaign(user=user, items=[(program.pk, State.PUBLISHED)])
    campaign = campaigns.create_campaign(user=publisher, items=[(program.pk, State.PUBLISHED)])
    other_publisher = UserFactory(username="other", groups=["publishers"])
    with pytest.raises(PermissionDenied, match="publisher who asked for it"):
        campaigns.confirm_campaign(campaign_id=campaign.pk, user=other_publisher)
    assert Campaign.objects.get().status == "draft"


def test_a_campaign_of_none_too_many_unknown_or_repeated_programs_is_refused(publisher, monkeypatch):
    program = published_program(commit=COMMIT)
    with pytest.raises(campaigns.CampaignRefused, match="No programs"):
        campaigns.create_campaign(user=publisher, items=[])
    with pytest.raises(campaigns.CampaignRefused, match=r"no observing program nope, \.\./x"):
        campaigns.create_campaign(
            user=publisher, items=[("nope", State.PUBLISHED), ("../x", State.PUBLISHED)]
        )
    with pytest.raises(campaigns.CampaignRefused, match="listed more than once"):
        campaigns.create_campaign(user=publisher, items=[(program.pk, State.PUBLISHED)] * 2)
    monkeypatch.setattr(campaigns, "MAX_CAMPAIGN_PROGRAMS", 1)
    other = published_program(commit=COMMIT)
    with pytest.raises(campaigns.CampaignTooLarge, match="1 at most"):
        campaigns.create_campaign(
            user=publisher, items=[(program.pk, State.PUBLISHED), (other.pk, State.PUBLISHED)]
        )
    assert not Campaign.objects.exists()


# --- the pages ---------------------------------------------------------------------------------


@pytest.fixture
def publisher_client(client, publisher):
    client.force_login(publisher)
    return client


def test_a_publisher_sees_the_campaign_of_a_filtered_table_and_others_do_not(client, publisher, inverter):
    published_program(commit=COMMIT)
    published_program(commit=COMMIT)
    invertible_program()
    client.force_login(publisher)
    page = client.get(reverse("program-list"), {"commit": COMMIT[:7]}).content.decode()
    assert "Queue all 2 published to invert again" in page
    assert f'name="commit" value="{COMMIT[:7]}"' in page
    # The whole archive is not offered: a filter first.
    assert "Queue all" not in client.get(reverse("program-list")).content.decode()
    assert "Queue all" not in client.get(reverse("program-list"), {"state": "invertible"}).content.decode()
    client.force_login(inverter)
    assert "Queue all" not in client.get(reverse("program-list"), {"commit": COMMIT[:7]}).content.decode()


def test_viewers_and_inverters_posting_a_campaign_get_403(client, inverter, publisher):
    published_program(commit=COMMIT)
    campaign = campaigns.create_campaign(
        user=publisher, items=[(published_program(commit=COMMIT).pk, State.PUBLISHED)]
    )
    for user in (UserFactory(username="reader", groups=["viewers"]), inverter):
        client.force_login(user)
        assert client.post(reverse("inversions:campaign-new"), {"commit": COMMIT[:7]}).status_code == 403
        confirm = client.post(reverse("inversions:campaign-confirm", args=[campaign.pk]))
        assert confirm.status_code == 403
    assert Campaign.objects.get().status == "draft"
    assert not Inversion.objects.filter(ended_at__isnull=True).exists()


def test_a_campaign_from_the_table_is_confirmed_once_and_refuses_what_moved_meanwhile(
    publisher_client, inverter
):
    programs = [published_program(commit=COMMIT) for _ in range(3)]
    published_program(commit=OTHER_COMMIT)
    invertible_program()
    response = publisher_client.post(
        reverse("inversions:campaign-new"), {"commit": COMMIT[:7], "sort": "newest", "seen_count": "3"}
    )
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and response.url == reverse("inversions:campaign", args=[campaign.pk])
    confirmation = publisher_client.get(response.url).content.decode()
    assert "Queue these 3 to invert again" in confirmation
    assert all(program.pk in confirmation for program in programs)
    assert confirmation.count('class="state state-published">published</span>') >= 3
    # The table's order (newest first) is the queue's.
    assert [item.program_id for item in campaign.items.all()] == _ids(reversed(programs))

    # The lead inverts one again while the confirmation page is open.
    services.queue_program(program_id=programs[0].pk, user=inverter, expected_state=State.PUBLISHED)
    confirm_url = reverse("inversions:campaign-confirm", args=[campaign.pk])
    done = publisher_client.post(confirm_url, follow=True).content.decode()
    assert "2 queued" in done and "1 refused" in done
    assert "no longer published" in done and "by lead" in done

    # Back and post again, or a second tab: the same run, nothing queued twice.
    again = publisher_client.post(confirm_url, follow=True).content.decode()
    assert "confirmed already" in again and "2 queued" in again
    assert Inversion.objects.filter(ended_at__isnull=True).count() == 3  # the lead's, the campaign's 2
    refused = publisher_client.get(reverse("inversions:campaign", args=[campaign.pk]), {"outcome": "refused"})
    assert programs[0].pk in refused.content.decode()
    assert programs[1].pk not in refused.content.decode()


def test_a_long_campaign_runs_in_the_worker_with_a_polled_progress_page(
    publisher_client, monkeypatch, django_capture_on_commit_callbacks, sent_tasks
):
    monkeypatch.setattr(campaigns, "RUN_IN_REQUEST_AT_MOST", 1)
    programs = [published_program(commit=COMMIT) for _ in range(3)]
    publisher_client.post(reverse("inversions:campaign-new"), {"commit": COMMIT[:7]})
    campaign = Campaign.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        publisher_client.post(reverse("inversions:campaign-confirm", args=[campaign.pk]))
    assert sent_tasks == [(RUN_CAMPAIGN, [campaign.pk], False)]
    url = reverse("inversions:campaign", args=[campaign.pk])
    running = publisher_client.get(url).content.decode()
    assert "Queueing" in running and "0 of 3" in running
    assert 'hx-trigger="every 2s" data-poll="visible"' in running
    assert '<noscript><meta http-equiv="refresh"' in running  # without JavaScript too

    tasks.run_campaign(campaign.pk)  # what the worker runs

    part = publisher_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert part.lstrip().startswith('<div id="campaign-status">')  # done: the part polls no more
    assert "3 of 3" in part and "3 queued" in part
    assert all(program.pk in part for program in programs)


def test_a_campaign_over_the_cap_is_refused_with_a_message(publisher_client, monkeypatch):
    monkeypatch.setattr(campaigns, "MAX_CAMPAIGN_PROGRAMS", 2)
    for _ in range(3):
        published_program(commit=COMMIT)
    page = publisher_client.get(reverse("program-list"), {"commit": COMMIT[:7]}).content.decode()
    assert "a campaign takes 2 at most" in page and "Queue all" not in page
    response = publisher_client.post(reverse("inversions:campaign-new"), {"commit": COMMIT[:7]}, follow=True)
    assert "3 programs are more than a campaign takes (2 at most)" in response.content.decode()
    assert not Campaign.objects.exists()


def test_a_campaign_page_that_does_not_exist_is_404(viewer_client):
    for campaign_id in ("1", str(10**30)):
        assert viewer_client.get(f"/campaigns/{campaign_id}/").status_code == 404


# --- the API ---------------------------------------------------------------------------------


def _post(client, token, body):
    return client.post(
        "/api/campaigns",
        body,
        content_type="application/json",
        headers={"Authorization": f"Token {token.secret}"},
    )


def test_the_api_queues_a_campaign_and_answers_its_summary(client, publisher, inverter):
    token = ApiTokenFactory(user=publisher)
    programs = [published_program(commit=COMMIT) for _ in range(2)]
    invertible = invertible_program()
    body = {
        "programs": [{"program_id": program.pk, "expected_state": "published"} for program in programs]
        + [{"program_id": invertible.pk, "expected_state": "invertible"}],
        "description": "new stray-light correction",
    }
    response = _post(client, token, body)
    assert response.status_code == 201
    summary = response.json()
    assert (summary["status"], summary["requested"], summary["queued"], summary["refused"]) == (
        "done",
        3,
        2,
        1,
    )
    assert [item["outcome"] for item in summary["items"]] == ["queued", "queued", "refused"]
    assert "not published" in summary["items"][2]["reason"]
    again = client.get(f"/api/campaigns/{summary['id']}", headers={"Authorization": f"Token {token.secret}"})
    assert again.status_code == 200 and again.json() == summary
    # The same list again: every OP is queued now, not where the caller saw it.
    second = _post(client, token, body).json()
    assert second["queued"] == 0 and "no longer published" in second["items"][0]["reason"]


def test_the_api_refuses_campaigns_as_documented(client, publisher, inverter):
    program = published_program(commit=COMMIT)
    one = {"programs": [{"program_id": program.pk, "expected_state": "published"}]}
    assert client.post("/api/campaigns", one, content_type="application/json").status_code == 401
    for user in (inverter, UserFactory(username="reader", groups=["viewers"])):
        assert _post(client, ApiTokenFactory(user=user), one).status_code == 403
    token = ApiTokenFactory(user=publisher)
    bad = [
        {"programs": []},
        {"programs": [{"program_id": "../../etc/passwd", "expected_state": "published"}]},
        {"programs": [{"program_id": "x" * 129, "expected_state": "published"}]},
        {"programs": [{"program_id": "unknown_op", "expected_state": "published"}]},
        {"programs": [{"program_id": program.pk, "expected_state": "nowhere"}]},
        {"programs": [{"program_id": program.pk, "expected_state": "published"}] * 2},
        {"programs": "all"},
        {"programs": [{"program_id": f"{program.pk}\u0000", "expected_state": "published"}]},
    ]
    for body in bad:
        response = _post(client, token, body)
        assert response.status_code == 400, body
        assert {"programs", "body"} & set(response.json()["errors"]), body
    many = {"programs": [{"program_id": f"op{n}", "expected_state": "published"} for n in range(5001)]}
    too_many = _post(client, token, many)
    assert too_many.status_code == 413
    assert "5,001 programs are more than a campaign takes (5,000 at most)" in too_many.json()["detail"]
    # A million ids: over the request body limit, refused before it is read.
    million = '{"programs": [' + ",".join(['{"program_id":"a","expected_state":"published"}'] * 10**6) + "]}"
    assert _post(client, token, million).status_code == 413
    assert not Campaign.objects.exists()
    assert (
        client.get("/api/campaigns/12", headers={"Authorization": f"Token {token.secret}"}).status_code == 404
    )
    huge = client.get(f"/api/campaigns/{10**30}", headers={"Authorization": f"Token {token.secret}"})
    assert huge.status_code == 400


def test_a_long_api_campaign_runs_in_the_worker(
    client, publisher, monkeypatch, django_capture_on_commit_callbacks, sent_tasks
):
    monkeypatch.setattr(campaigns, "RUN_IN_REQUEST_AT_MOST", 1)
    programs = [published_program(commit=COMMIT) for _ in range(2)]
    body = {"programs": [{"program_id": program.pk, "expected_state": "published"} for program in programs]}
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, ApiTokenFactory(user=publisher), body)
    assert response.status_code == 202
    assert response.json()["status"] == "running" and response.json()["queued"] == 0
    assert sent_tasks == [(RUN_CAMPAIGN, [response.json()["id"]], False)]
    assert [item["outcome"] for item in response.json()["items"]] == ["pending", "pending"]
    assert CampaignItem.objects.filter(outcome="pending").count() == 2


# --- the stale filter (ObservingProgram.stale_since, kept from the history) -----------------------


def _mark_stale(program) -> None:
    """The scan's information event: Level 1 data of the latest inversion changed."""
    record_event(
        program_id=program.pk,
        to_state=program.state,
        actor=Actor(ActorKind.SCANNER),
        details={"stale": {"datasets": ["DS00001"], "fields": ["updateDate"]}},
    )


def test_the_table_and_the_api_filter_by_stale_and_a_campaign_queues_the_stale_ones(client, publisher):
    stale = [published_program(commit=COMMIT) for _ in range(2)]
    for program in stale:
        _mark_stale(program)
    fresh = published_program(commit=COMMIT)
    client.force_login(publisher)
    page = client.get(reverse("program-list"), {"stale": "yes", "commit": COMMIT[:7]}).content.decode()
    assert "2 programs" in page and "Queue all 2 published to invert again" in page
    assert fresh.pk not in page
    assert fresh.pk in client.get(reverse("program-list"), {"stale": "no"}).content.decode()
    token = {"Authorization": f"Token {ApiTokenFactory(user=publisher).secret}"}
    listed = client.get("/api/programs", {"stale": "true"}, headers=token).json()
    assert sorted(item["program_id"] for item in listed["items"]) == sorted(_ids(stale))
    assert client.get("/api/programs", {"stale": "false"}, headers=token).json()["count"] == 1
    assert client.get("/api/programs", {"stale": "perhaps"}, headers=token).status_code == 400

    client.post(reverse("inversions:campaign-new"), {"stale": "yes", "commit": COMMIT[:7]})
    campaign = Campaign.objects.get()
    assert campaign.description == f"commit {COMMIT[:7]}, stale"
    client.post(reverse("inversions:campaign-confirm", args=[campaign.pk]))
    # Queued again: a new attempt on the new data, no longer stale.
    assert client.get("/api/programs", {"stale": "true"}, headers=token).json()["count"] == 0


def test_the_campaigns_page_lists_every_campaign_newest_first(viewer_client, publisher):
    program = published_program(commit=COMMIT)
    first = campaigns.create_campaign(
        user=publisher, items=[(program.pk, State.PUBLISHED)], description="one"
    )
    campaigns.confirm_campaign(campaign_id=first.pk, user=publisher)
    campaigns.run_campaign(campaign_id=first.pk)
    second = campaigns.create_campaign(user=publisher, items=[(program.pk, State.QUEUED)], description="two")
    page = viewer_client.get(reverse("inversions:campaigns")).content.decode()
    assert page.index(reverse("inversions:campaign", args=[second.pk])) < page.index(
        reverse("inversions:campaign", args=[first.pk])
    )
    assert "awaiting confirmation" in page and "done" in page
    assert viewer_client.get(reverse("inversions:campaigns"), {"page": "x" * 50}).status_code == 200


def test_a_short_campaign_cut_off_in_the_request_is_finished_by_the_worker(
    publisher, monkeypatch, django_capture_on_commit_callbacks, sent_tasks
):
    """Queued in the request, it is handed to the worker for later too: a request that dies
    half-way (here: a crash after the first OP) leaves the rest to the worker."""
    programs = [published_program(commit=COMMIT) for _ in range(3)]
    campaign = campaigns.create_campaign(user=publisher, items=[(p.pk, State.PUBLISHED) for p in programs])
    queue_program = services.queue_program
    calls = []

    def crash_on_the_second(**kwargs):
        calls.append(kwargs["program_id"])
        if len(calls) == 2:
            raise RuntimeError("the request's process was stopped")
        return queue_program(**kwargs)

    monkeypatch.setattr(services, "queue_program", crash_on_the_second)
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=True):
        campaigns.start_campaign(campaign_id=campaign.pk, user=publisher)
    assert [sent for sent in sent_tasks if sent[0] == RUN_CAMPAIGN] == [(RUN_CAMPAIGN, [campaign.pk], True)]
    campaign.refresh_from_db()
    assert (campaign.status, campaign.queued, campaign.refused) == (Campaign.Status.RUNNING, 1, 0)

    monkeypatch.setattr(services, "queue_program", queue_program)
    tasks.run_campaign(campaign.pk)  # what the worker runs, RESUME_AFTER_S later

    campaign.refresh_from_db()
    assert (campaign.status, campaign.queued, campaign.refused) == (Campaign.Status.DONE, 3, 0)
    states = ObservingProgram.objects.filter(pk__in=_ids(programs)).values_list("state", flat=True)
    assert list(states) == [State.QUEUED] * 3
