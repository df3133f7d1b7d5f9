"""The program page's work panel and its buttons: each role and each action → allowed or 403."""

import pytest
from django.urls import reverse

from demo import team as demo_team
from inversions import services
from inversions.actions import ACTIONS
from inversions.selectors import QUEUE_ROWS_PER_PAGE
from ops.states import State
from tests.factories import InversionFactory, UserFactory, events_of, program_in_state
from tests.inversions.conftest import invertible_program, published_and_stale

pytestmark = pytest.mark.django_db

ROLES = {
    "viewer": {"groups": ["viewers"]},
    "inverter": {"groups": ["inverters"]},
    "publisher": {"groups": ["publishers"]},
    "staff": {"is_staff": True},
}
# Which roles may use each button (the server's answer; the page shows the same buttons).
ALLOWED = {
    "queue": {"inverter"},
    "invert-again": {"inverter", "publisher"},
    "start": {"inverter"},
    "put-back": {"inverter"},
    "move-to-top": {"inverter"},
    "retry": {"inverter", "publisher"},
    "publish": {"publisher"},
    "regenerate": {"inverter", "publisher"},
    "archive": {"staff"},
    "restore": {"staff"},
    "note": {"inverter", "staff"},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("slug", ALLOWED)
def test_each_role_may_use_only_its_buttons(client, role, slug):
    client.force_login(UserFactory(username=role, **ROLES[role]))
    program = program_in_state(State.INVERTIBLE)
    response = client.post(
        reverse("inversions:program-action", args=[program.pk, slug]),
        {f"{slug}-expected_state": "invertible", f"{slug}-reason": "why", f"{slug}-text": "a note"},
    )
    if role in ALLOWED[slug]:
        assert response.status_code == 302  # done, or refused by the state with a message
    else:
        assert response.status_code == 403
        program.refresh_from_db()
        assert program.state == State.INVERTIBLE


def test_the_table_covers_every_button():
    assert {action.slug for action in ACTIONS} - {"report-done"} == set(ALLOWED)


def test_a_read_only_user_sees_no_buttons(client):
    client.force_login(UserFactory(username="reader", groups=["viewers"]))
    program = invertible_program()
    html = client.get(reverse("program-detail", args=[program.pk])).content.decode()
    assert 'id="work-panel"' in html
    assert (
        "Work on this next" not in html
        and "<button" not in html.split('id="work-panel"')[1].split("</section>")[0]
    )


def test_an_inverter_sees_work_on_this_next_and_its_click_queues(client, inverter):
    client.force_login(inverter)
    program = invertible_program()
    page = client.get(reverse("program-detail", args=[program.pk])).content.decode()
    assert "Work on this next" in page
    response = client.post(
        reverse("inversions:program-action", args=[program.pk, "queue"]),
        {"queue-expected_state": "invertible"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "queued" in response.content.decode()


def test_after_an_action_the_state_and_history_outside_the_panel_follow(client, inverter):
    client.force_login(inverter)
    program = invertible_program()
    html = client.post(
        reverse("inversions:program-action", args=[program.pk, "queue"]),
        {"queue-expected_state": "invertible"},
        headers={"HX-Request": "true"},
    ).content.decode()
    state = html.split('<dd id="program-state" hx-swap-oob="true">')[1].split("</dd>")[0]
    assert "state-queued" in state and f"by {inverter.username}" in state
    history = html.split('<section id="history"')[1].split("</section>")[0]
    assert 'hx-swap-oob="true"' in history
    assert "invertible → queued" in history


def test_a_second_click_sees_who_took_it(client, inverter):
    program = invertible_program()
    client.force_login(UserFactory(username="first", groups=["inverters"]))
    client.post(
        reverse("inversions:program-action", args=[program.pk, "queue"]),
        {"queue-expected_state": "invertible"},
    )
    client.force_login(inverter)
    response = client.post(
        reverse("inversions:program-action", args=[program.pk, "queue"]),
        {"queue-expected_state": "invertible"},
        follow=True,
    )
    assert response.status_code == 200
    assert "no longer invertible: it is queued since" in response.content.decode()
    assert "by first" in response.content.decode()


def test_report_done_names_each_missing_result_file(client, inverter, local_collections):
    program = program_in_state(State.WORKING)
    (local_collections / "team" / "runs").mkdir(parents=True)
    (local_collections / "team" / "runs" / "per_ori.fits").write_bytes(b"x")
    client.force_login(inverter)
    response = client.post(
        reverse("inversions:report-done", args=[program.pk]),
        {"software_commit": "xyz", "result_collection": "team", "result_path": "/runs/", "dataset_ids": []},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "7 to 40 hexadecimal" in html
    assert "lacks inv_res_mod.fits, inv_res_pre.fits" in html
    assert "Choose at least one dataset" in html
    program.refresh_from_db()
    assert program.state == State.WORKING


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("//etc/", "/etc/ does not exist on collection team"),
        ("/demo/../../..", "climbs above the collection&#x27;s root"),
        ("/runs/\x00/", "Null characters are not allowed"),
        ("/out/", "leaves team/"),
    ],
)
def test_report_done_with_a_path_out_of_the_collection_is_a_400_with_the_reason(
    client, inverter, local_collections, tmp_path, path, reason
):
    program = program_in_state(State.WORKING)
    (local_collections / "team").mkdir(parents=True)
    (local_collections / "team" / "out").symlink_to(tmp_path)
    client.force_login(inverter)
    response = client.post(
        reverse("inversions:report-done", args=[program.pk]),
        {"software_commit": "abcdef1", "result_collection": "team", "result_path": path},
    )
    assert response.status_code == 400
    assert reason in response.content.decode()
    program.refresh_from_db()
    assert program.state == State.WORKING


def test_a_quicklook_linked_out_of_scratch_is_not_served(client, inverter, local_collections, tmp_path):
    program = program_in_state(State.GENERATED)
    folder = local_collections / "scratch" / program.proposal_id / "inv_X_quicklook"
    folder.mkdir(parents=True)
    (folder / "good.png").write_bytes(b"\x89PNG good")
    (tmp_path / "secret").write_text("the worker's secrets")
    (folder / "evil.png").symlink_to(tmp_path / "secret")
    InversionFactory(
        program=program,
        products={
            "quicklooks": [
                f"{program.proposal_id}/inv_X_quicklook/{name}" for name in ("good.png", "evil.png")
            ]
        },
    )
    client.force_login(inverter)

    good = client.get(reverse("inversions:quicklook", args=[program.pk, "good.png"]))
    evil = client.get(reverse("inversions:quicklook", args=[program.pk, "evil.png"]))

    assert (good.status_code, b"".join(good.streaming_content)) == (200, b"\x89PNG good")
    assert evil.status_code == 404


def test_report_done_of_another_ops_result_folder_is_a_400_naming_it(client, inverter, working):
    other = InversionFactory(result_collection="team", result_path=demo_team.result_path(working.pk))
    client.force_login(inverter)
    response = client.post(
        reverse("inversions:report-done", args=[working.pk]),
        {
            "software_commit": "abcdef1",
            "result_collection": "team",
            "result_path": demo_team.result_path(working.pk),
            "dataset_ids": list(working.datasets.values_list("id", flat=True)),
        },
    )
    assert response.status_code == 400
    assert f"holds the results of {other.program_id}" in response.content.decode()
    working.refresh_from_db()
    assert working.state == State.WORKING


def test_report_done_page_is_for_inverters(client):
    client.force_login(UserFactory(username="reader", groups=["viewers"]))
    program = program_in_state(State.WORKING)
    assert client.get(reverse("inversions:report-done", args=[program.pk])).status_code == 403


def test_an_unreachable_commit_server_is_not_called_a_bad_commit(
    client, inverter, local_collections, settings
):
    settings.LEVEL2_SOFTWARE_COMMIT_URL = "http://127.0.0.1:9/commit/{commit}"
    program = program_in_state(State.WORKING)
    client.force_login(inverter)
    response = client.post(
        reverse("inversions:report-done", args=[program.pk]),
        {"software_commit": "abcdef1", "result_collection": "team", "result_path": "/runs/"},
    )
    assert "could not be reached to check the commit" in response.content.decode()


def test_the_queue_page_lists_open_attempts_in_order(client, inverter):
    from inversions import services

    first, second = invertible_program(), invertible_program()
    services.queue_program(program_id=first.pk, user=inverter)
    services.queue_program(program_id=second.pk, user=inverter)
    services.move_to_top(program_id=second.pk, user=inverter, expected_state=State.QUEUED)
    client.force_login(inverter)
    html = client.get(reverse("inversions:queue")).content.decode()
    assert html.index(second.pk) < html.index(first.pk)
    assert "Move to top" in html


def test_the_queue_page_shows_a_page_of_attempts_in_constant_queries(
    client, inverter, django_assert_max_num_queries
):
    """A campaign queues thousands: the page, which refreshes itself, shows 50 at a time."""
    programs = [program_in_state(State.QUEUED) for _ in range(QUEUE_ROWS_PER_PAGE + 5)]
    for program in programs:
        InversionFactory(program=program, owner=inverter)
    client.force_login(inverter)

    with django_assert_max_num_queries(8):
        first = client.get(reverse("inversions:queue")).content.decode()
    second = client.get(reverse("inversions:queue"), {"page": 2}, headers={"HX-Request": "true"})

    assert f"{QUEUE_ROWS_PER_PAGE + 5} in the queue" in first
    assert [program.pk in first for program in programs] == [True] * 50 + [False] * 5
    assert "page 1 of 2" in first
    html = second.content.decode()
    assert [program.pk in html for program in programs] == [False] * 50 + [True] * 5
    assert "<td>51</td>" in html and "<td>55</td>" in html
    assert 'hx-get="/work/?page=2"' in html  # the refresh stays on its page


def test_the_products_say_where_they_are_with_a_dkist_snippet_naming_the_asdf_there(client, settings):
    settings.GLOBUS_SCRATCH_COLLECTION = "scratch-collection-id"
    client.force_login(UserFactory(username="reader", groups=["viewers"]))
    program = program_in_state(State.GENERATED)
    folder = f"{program.proposal_id}/INV_ABCDEF"
    InversionFactory(
        program=program,
        products={
            "files": 3,
            "bytes": 3000,
            "frames": 2,
            "duration_s": 1.5,
            "spectral_lines": ["Fe I"],
            "asdf": f"{folder}/INV_ABCDEF_L2_metadata.asdf",
            "quicklooks": [f"{folder}/quicklooks/temperature.png"],
            "file_list": [["INV_ABCDEF_L2_metadata.asdf", 1000]],
        },
    )

    html = client.get(reverse("program-detail", args=[program.pk])).content.decode()

    panel, products = html.split('<div id="products">')
    assert "dkist" not in panel  # the products have the page's full width, below the panel
    assert "<dd><code>scratch-collection-id</code> (scratch)</dd>" in products
    assert f"<dd><code>/{folder}/</code></dd>" in products
    assert f'dkist.load_dataset("/{folder}/INV_ABCDEF_L2_metadata.asdf")' in products
    assert 'data-copy="dkist-snippet"' in products
    quicklook = reverse("inversions:quicklook", args=[program.pk, "temperature.png"])
    assert f'<a href="{quicklook}"><img src="{quicklook}"' in products  # opens full size


def test_report_done_lays_out_its_fields_with_labels(client, inverter):
    program = program_in_state(State.WORKING)
    client.force_login(inverter)

    html = client.get(reverse("inversions:report-done", args=[program.pk])).content.decode()

    for field, label in [
        ("software_commit", "Inversion software commit"),
        ("result_collection", "Result collection"),
        ("result_path", "Result path"),
        ("notes", "Notes"),
    ]:
        assert f'<label for="id_{field}">{label}</label>' in html
    assert "<legend>Results</legend>" in html and "<legend>Datasets used</legend>" in html
    assert 'aria-describedby="id_notes_helptext"' in html


@pytest.mark.parametrize(
    ("slug", "fields"),
    [("move-to-top", {}), ("archive", {"reason": "duplicate"}), ("note", {"text": "still waiting"})],
)
def test_a_stale_page_acts_on_nothing_and_says_who_moved_the_program(client, inverter, slug, fields):
    from inversions import services

    program = invertible_program()
    services.queue_program(program_id=program.pk, user=inverter)
    services.put_back(program_id=program.pk, user=inverter, reason="wrong OP", expected_state=State.QUEUED)
    client.force_login(UserFactory(username="desk", is_staff=True, groups=["inverters"]))
    data = {f"{slug}-expected_state": "queued", **{f"{slug}-{name}": value for name, value in fields.items()}}
    response = client.post(reverse("inversions:program-action", args=[program.pk, slug]), data, follow=True)
    assert f"{program.pk} is no longer queued: it is invertible since " in response.content.decode()
    assert " UTC by lead." in response.content.decode()
    assert [event.to_state for event in events_of(program)][-2:] == ["queued", "invertible"]


def test_an_action_from_a_state_it_does_not_act_from_is_refused(client, inverter):
    program = program_in_state(State.PREPROCESSED)
    client.force_login(inverter)
    response = client.post(
        reverse("inversions:program-action", args=[program.pk, "start"]),
        {"start-expected_state": "working"},
        follow=True,
    )
    assert "Start is not possible on a program that is working." in response.content.decode()
    program.refresh_from_db()
    assert program.state == State.PREPROCESSED


def _report(program, **change):
    return {
        "software_commit": "abcdef1",
        "result_collection": "team",
        "result_path": demo_team.result_path(program.pk),
        "dataset_ids": list(program.datasets.values_list("id", flat=True)),
    } | change


def test_a_report_done_page_left_open_cannot_report_for_the_next_attempt(
    client, inverter, working, django_capture_on_commit_callbacks
):
    client.force_login(inverter)
    url = reverse("inversions:report-done", args=[working.pk])
    first = services.open_inversion(program_id=working.pk)
    assert f'name="inversion" value="{first.id}"' in client.get(url).content.decode()

    # Meanwhile the attempt is put back, and the OP queued and started again.
    services.put_back(
        program_id=working.pk, user=inverter, reason="wrong lines", expected_state=State.WORKING
    )
    with django_capture_on_commit_callbacks(execute=True):
        second = services.queue_program(program_id=working.pk, user=inverter)
    services.start_work(program_id=working.pk, user=inverter)

    stale = client.post(url, _report(working, inversion=first.id))
    assert stale.status_code == 400
    assert f"This report is for {first.id}, but the attempt under way on {working.pk} is {second.id}" in (
        stale.content.decode()
    )
    working.refresh_from_db()
    assert working.state == State.WORKING

    assert client.post(url, _report(working, inversion=second.id)).status_code == 302
    working.refresh_from_db()
    assert working.state == State.INVERTED


@pytest.mark.parametrize("inversion", ["../etc", "inv.abcdef", "inv.ABCDEF\n", "inv.ABC\x00EF"])
def test_report_done_refuses_what_is_no_inversion_id(client, inverter, working, inversion):
    client.force_login(inverter)
    response = client.post(
        reverse("inversions:report-done", args=[working.pk]), _report(working, inversion=inversion)
    )
    assert response.status_code == 400
    working.refresh_from_db()
    assert working.state == State.WORKING


# --- issue 21: stale, the inversions, "Invert again" ---------------------------------------


def test_a_stale_op_says_what_changed_since_which_inversion_and_lists_its_inversions(client, inverter):
    program, inversion = published_and_stale()
    client.force_login(inverter)
    html = client.get(reverse("program-detail", args=[program.pk])).content.decode()
    notice = html.split('class="stale-notice"')[1].split("</div>")[0]
    assert f"Level 1 changed since <code>{inversion.id}</code>" in notice
    assert "<code>AAAAB</code>" in notice and "2025-06-28 19:52 → 2026-01-05 10:00" in notice
    assert "calibrationDocumentationUrl visp/v2.0.0 → &lt;b&gt;visp/v3&lt;/b&gt;" in notice
    assert "lightLevel changed" in notice and "<b>Invert again</b> makes a new attempt" in notice
    listing = html.split('id="inversions-heading"')[1].split("</section>")[0]
    assert f'<code>{inversion.id}</code> <b class="stale">' in listing and "<code>0123abcd</code>" in listing
    assert f"archive <code>/data/{program.proposal_id}/inv_FIRST1/</code>" in listing
    assert f"scratch <code>/{program.proposal_id}/inv_X/</code>" in listing
    assert "INV_FIRST1_L2_metadata.asdf" in listing and "<code>AAAAA</code>, <code>AAAAB</code>" in listing


@pytest.mark.parametrize("htmx", [False, True])
def test_invert_again_from_the_page_queues_a_new_attempt_listed_first(client, inverter, htmx):
    program, first = published_and_stale()
    client.force_login(inverter)
    page = client.get(reverse("program-detail", args=[program.pk])).content.decode()
    assert 'name="invert-again-expected_state" value="published"' in page and "Invert again</button>" in page
    response = client.post(
        reverse("inversions:program-action", args=[program.pk, "invert-again"]),
        {"invert-again-expected_state": "published", "invert-again-note": "new calibration"},
        headers={"HX-Request": "true"} if htmx else {},
        follow=not htmx,
    )
    assert response.status_code == 200
    html = response.content.decode()
    program.refresh_from_db()
    assert program.state == State.QUEUED and not program.is_stale
    second = program.inversions.get(ended_at__isnull=True)
    assert events_of(program)[-1].details["again_after"] == first.id
    assert "stale-notice" not in html
    listing = html.split('id="inversions-heading"')[1].split("</section>")[0]
    assert listing.index(second.id) < listing.index(first.id)
    panel = html.split('id="work-panel"')[1].split("</section>")[0]
    assert f"<code>{second.id}</code>" in panel  # the open attempt, not the published one


def test_invert_again_posted_twice_from_the_same_page_queues_once_and_says_who(client, inverter, publisher):
    program, _ = published_and_stale()
    url = reverse("inversions:program-action", args=[program.pk, "invert-again"])
    client.force_login(publisher)
    client.post(url, {"invert-again-expected_state": "published"})
    client.force_login(inverter)
    response = client.post(url, {"invert-again-expected_state": "published"}, follow=True)
    assert "no longer published: it is queued since" in response.content.decode()
    assert "by publisher." in response.content.decode()
    assert program.inversions.count() == 2


@pytest.mark.parametrize("expected", ["invertible", "queued", "archived"])
def test_invert_again_from_a_state_it_does_not_act_from_is_refused(client, inverter, expected):
    program, _ = published_and_stale()
    client.force_login(inverter)
    response = client.post(
        reverse("inversions:program-action", args=[program.pk, "invert-again"]),
        {"invert-again-expected_state": expected},
        follow=True,
    )
    assert f"Invert again is not possible on a program that is {expected}." in response.content.decode()
    assert program.inversions.count() == 1


@pytest.mark.parametrize(
    ("program_id", "data"),
    [
        ("..", {"invert-again-expected_state": "published"}),
        ("no-such-op", {"invert-again-expected_state": "published"}),
        ("%2e%2e%2fetc", {"invert-again-expected_state": "published"}),
        (None, {"invert-again-expected_state": "javascript:alert(1)"}),
        (None, {}),
    ],
)
def test_invert_again_with_odd_input_is_a_4xx_or_a_message_never_a_500(client, inverter, program_id, data):
    program, _ = published_and_stale()
    client.force_login(inverter)
    url = f"/programs/{program_id}/actions/invert-again/" if program_id else None
    url = url or reverse("inversions:program-action", args=[program.pk, "invert-again"])
    response = client.post(url, data)
    assert response.status_code in {302, 404}
    assert program.inversions.count() == 1
    program.refresh_from_db()
    assert program.state == State.PUBLISHED


def test_a_viewer_sees_no_invert_again_and_cannot_post_it(client):
    program, _ = published_and_stale()
    client.force_login(UserFactory(username="reader", groups=["viewers"]))
    html = client.get(reverse("program-detail", args=[program.pk])).content.decode()
    assert "Invert again</button>" not in html and "Level 1 changed since" in html
    response = client.post(
        reverse("inversions:program-action", args=[program.pk, "invert-again"]),
        {"invert-again-expected_state": "published"},
    )
    assert response.status_code == 403
    assert program.inversions.count() == 1


def test_the_polled_status_reads_neither_the_stale_notice_nor_the_inversions(client, inverter):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    program, _ = published_and_stale()
    client.force_login(inverter)
    url = reverse("program-detail", args=[program.pk])
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{url}?part=status&seen=published", headers={"HX-Request": "true"})
    assert response.status_code == 200 and 'id="work-status"' in response.content.decode()
    statements = " ".join(query["sql"] for query in queries)
    assert (
        '"stale"' not in statements and 'ORDER BY "inversions_inversion"."created_at" DESC' not in statements
    )
    page = client.get(url).content.decode()
    assert "stale-notice" in page and 'id="inversions-heading"' in page
