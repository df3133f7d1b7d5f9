"""The work board at /: its sections, their order and empty texts, the counts, the live partial,
the "Work on this next" button, and a number of queries that does not grow with the OPs."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from inversions import selectors, services
from inversions.models import Inversion
from ops.history import Actor, record_event
from ops.models import ObservingProgram, Scan
from ops.states import ActorKind, State
from tests.factories import (
    DatasetFactory,
    InstrumentProgramFactory,
    InversionFactory,
    ScanFactory,
    TransferFactory,
    UserFactory,
    program_in_state,
)
from tests.inversions.conftest import invertible_program

pytestmark = pytest.mark.django_db

BOARD = "/"


def scored(program, score, *, seen_days_ago=0):
    """The program with a score (as the qualifier sets it) and first seen ``seen_days_ago``."""
    parts = None
    if score is not None:
        parts = {
            "score": score,
            "instrument_program_id": f"id.{program.pk}",
            "parts": {"ao": {"value": 0.9, "scaled": 0.6, "weight": 3.0}},
        }
    ObservingProgram.objects.filter(pk=program.pk).update(
        score=score, score_parts=parts, first_seen_at=timezone.now() - timedelta(days=seen_days_ago)
    )
    return program


def at_work(state, *, owner=None, **inversion_fields):
    """An OP in ``state`` of the work, with its open attempt."""
    program = program_in_state(state)
    inversion = InversionFactory(program=program, **({"owner": owner} if owner else {}), **inversion_fields)
    return program, inversion


def in_error(*, message):
    program = program_in_state(State.PREPROCESSING)
    InversionFactory(program=program)
    record_event(
        program_id=program.pk,
        to_state=State.ERROR,
        actor=Actor(ActorKind.WORKER),
        details={"step": "preprocessing", "message": message},
    )
    return program


def published_by_inversion():
    program = program_in_state(State.PUBLISHED)
    inversion = InversionFactory(program=program, ended_at=timezone.now(), end_reason="published")
    return program, inversion


def stale(published, *, to_state=State.PUBLISHED):
    """The scanner's event that the Level 1 data of the published attempt changed."""
    program, inversion = published
    record_event(
        program_id=program.pk,
        to_state=to_state,
        actor=Actor(ActorKind.SCANNER),
        details={"stale": {"inversion": inversion.id, "datasets": {"AAAAA": {}}}},
    )
    return program, inversion


def section(html: str, name: str) -> str:
    match = re.search(rf'<section[^>]* id="{name}".*?</section>', html, re.DOTALL)
    assert match, f"no section {name}"
    return match[0]


def order_in(text: str, programs) -> list[int]:
    return sorted(range(len(programs)), key=lambda n: text.index(programs[n].pk))


def board_html(client) -> str:
    response = client.get(BOARD)
    assert response.status_code == 200
    return response.content.decode()


def test_candidates_are_ranked_by_score_nulls_last_then_the_oldest_first(viewer_client):
    newer_50 = scored(program_in_state(State.INVERTIBLE), 50.0, seen_days_ago=1)
    best = scored(program_in_state(State.INVERTIBLE), 80.0, seen_days_ago=0)
    unscored = scored(program_in_state(State.INVERTIBLE), None, seen_days_ago=9)
    older_50 = scored(program_in_state(State.INVERTIBLE), 50.0, seen_days_ago=2)
    queued = program_in_state(State.QUEUED)

    candidates = section(board_html(viewer_client), "candidates")

    expected = [best, older_50, newer_50, unscored]
    assert order_in(candidates, expected) == [0, 1, 2, 3]
    assert queued.pk not in candidates
    # The score, with its terms on hover.
    assert 'title="80 of 100 from id.' in candidates and ">80.0<" in candidates


def test_candidates_show_the_first_ten_and_a_link_to_all_of_them(viewer_client):
    programs = [scored(program_in_state(State.INVERTIBLE), float(n)) for n in range(12)]

    candidates = section(board_html(viewer_client), "candidates")

    shown = [program for program in programs if program.pk in candidates]
    assert shown == programs[2:]
    assert '<a href="/programs/?state=invertible&amp;sort=score">all 12 candidates</a>' in candidates


def test_candidates_show_what_a_lead_chooses_by(viewer_client):
    program = invertible_program(datasets=2)
    cryo = InstrumentProgramFactory(program=program, instrument="CRYO-NIRSP")
    long_ago = timezone.now() - timedelta(days=900)
    DatasetFactory(instrument_program=cryo, start_time=long_ago, vanished_at=timezone.now())
    ObservingProgram.objects.filter(pk=program.pk).update(dataset_count=2)

    candidates = section(board_html(viewer_client), "candidates")

    assert "CRYO-NIRSP, VISP" in candidates
    assert f"proposal {program.proposal_id}" in candidates
    assert "2 datasets" in candidates
    # The first start of its datasets still listed (a vanished one does not count).
    assert '<time datetime="2025-03-27T22:03:00+00:00">2025-03-27</time>' in candidates


def test_up_next_is_in_queue_order_with_the_transfer_s_progress(viewer_client):
    preprocessing, transferring = at_work(State.PREPROCESSING, queue_position=1)
    preprocessed, _ = at_work(State.PREPROCESSED, queue_position=3)
    queued, _ = at_work(State.QUEUED, queue_position=2)
    TransferFactory(inversion=transferring, files_done=1, files_total=9)
    TransferFactory(inversion=transferring, files_done=3, files_total=6)  # the retry: the newest counts
    # An earlier attempt that was put back adds neither a row nor its transfer.
    put_back = InversionFactory(program=queued, ended_at=timezone.now(), end_reason="put_back")
    TransferFactory(inversion=put_back, files_done=7, files_total=7)

    up_next = section(board_html(viewer_client), "up-next")

    assert order_in(up_next, [preprocessing, queued, preprocessed]) == [0, 1, 2]
    assert up_next.count('class="board-row"') == 3
    assert "3 of 6 files" in up_next and 'aria-valuenow="50"' in up_next
    assert "7 of 7" not in up_next
    assert '<a class="state state-queued" href="/programs/?state=queued">queued <b>1</b></a>' in up_next


def test_in_progress_shows_the_owner_and_the_days_in_the_state(viewer_client):
    program, _ = at_work(State.WORKING, owner=UserFactory(username="maria"))

    in_progress = section(board_html(viewer_client), "in-progress")
    assert program.pk in in_progress and "maria" in in_progress

    later = program.state_since + timedelta(days=3)
    [row] = selectors.board(now=later, user=UserFactory()).in_progress.rows
    assert (row.program.pk, row.owner, row.days_in_state) == (program.pk, "maria", 3.0)


def test_to_publish_holds_the_finished_inversions_with_the_frames_generated(viewer_client):
    generating, _ = at_work(State.GENERATING, frames_done=5, frames_total=20)
    others = [at_work(state)[0] for state in (State.INVERTED, State.GENERATED, State.PUBLISHING)]
    published = program_in_state(State.PUBLISHED)

    to_publish = section(board_html(viewer_client), "to-publish")

    assert all(program.pk in to_publish for program in [generating, *others])
    assert published.pk not in to_publish
    assert "5 of 20 frames" in to_publish and 'aria-valuenow="25"' in to_publish


def test_errors_overdue_ops_and_recent_failed_scans_need_attention(viewer_client, settings):
    settings.LEVEL2_EXPECTED_DAYS = {**settings.LEVEL2_EXPECTED_DAYS, "working": 0}
    failed = in_error(message="The Level 1 collection refused the transfer")
    overdue, _ = at_work(State.WORKING, owner=UserFactory(username="maria"))
    on_time, _ = at_work(State.QUEUED)
    ScanFactory(status=Scan.Status.FAILED, message="old failure, recovered since")
    ScanFactory(status=Scan.Status.SUCCEEDED)
    recent = ScanFactory(status=Scan.Status.FAILED, message="metadata store: HTTP 500", error_count=3)
    long_ago = ScanFactory(status=Scan.Status.FAILED, message="a failure long ago")
    Scan.objects.filter(pk=long_ago.pk).update(started_at=timezone.now() - timedelta(days=8))

    attention = section(board_html(viewer_client), "needs-attention")

    assert failed.pk in attention and "preprocessing failed" in attention
    assert "The Level 1 collection refused the transfer" in attention
    assert overdue.pk in attention and "maria" in attention
    assert on_time.pk not in attention
    assert f"Scan {recent.pk}" in attention and "HTTP 500" in attention and "3 errors" in attention
    assert "recovered since" not in attention and "long ago" not in attention
    assert "Nothing needs attention" not in attention


def test_stale_ops_need_attention_longest_stale_first_naming_the_inversion(viewer_client):
    older, older_inversion = stale(published_by_inversion())
    newer, newer_inversion = stale(published_by_inversion())
    fresh, _ = published_by_inversion()

    attention = section(board_html(viewer_client), "needs-attention")

    assert "Level 1 changed <small>2</small>" in attention
    assert attention.index(older.pk) < attention.index(newer.pk) and fresh.pk not in attention
    assert f"Level 1 changed since <code>{older_inversion.id}</code>" in attention
    assert f"Level 1 changed since <code>{newer_inversion.id}</code>" in attention
    assert "Nothing needs attention" not in attention


def test_a_note_on_an_op_in_error_leaves_the_failed_step_and_its_message(viewer_client):
    program = in_error(message="The Level 1 collection refused the transfer")
    record_event(
        program_id=program.pk,
        to_state=State.ERROR,
        actor=Actor(ActorKind.INVERTER, UserFactory()),
        details={"note": "asked the archive"},
    )

    attention = section(board_html(viewer_client), "needs-attention")

    assert program.pk in attention and "preprocessing failed" in attention and "error failed" not in attention
    assert "The Level 1 collection refused the transfer" in attention


def test_an_empty_board_says_what_would_fill_each_section(viewer_client):
    html = board_html(viewer_client)

    assert "No candidates: OPs appear here once qualified invertible." in section(html, "candidates")
    assert "Nothing up next" in section(html, "up-next")
    assert "Nobody is working on an inversion" in section(html, "in-progress")
    assert "Nothing to publish" in section(html, "to-publish")
    assert "Nothing needs attention" in section(html, "needs-attention")


def test_the_counts_link_to_the_programs_table_of_each_state(viewer_client):
    program_in_state(State.INVERTIBLE)
    program_in_state(State.INVERTIBLE)
    program_in_state(State.NOT_INVERTIBLE)

    html = board_html(viewer_client)
    counts = re.search(r'<nav class="board-counts".*?</nav>', html, re.DOTALL)[0]

    assert (
        '<a class="state state-invertible" href="/programs/?state=invertible">invertible <b>2</b></a>'
        in counts
    )
    assert 'href="/programs/?state=not_invertible">not invertible <b>1</b></a>' in counts
    assert 'href="/programs/?state=published">published <b>0</b></a>' in counts
    assert counts.count("<li>") == len(State)


def test_the_page_has_its_title_heading_styles_and_refreshes_itself(viewer_client):
    html = board_html(viewer_client)

    assert "<title>Board · Level 2</title>" in html and "<h1>Work board</h1>" in html
    assert "level2/board.css" in html
    assert 'hx-trigger="every 5s" data-poll="visible unfocused"' in html


def test_htmx_polls_get_the_sections_alone(viewer_client):
    program_in_state(State.INVERTIBLE)

    response = viewer_client.get(BOARD, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="board-sections"')
    assert 'id="candidates"' in html and "board-counts" in html
    assert "<h1>" not in html and "<html" not in html
    assert "HX-Request" in response["Vary"]


def test_the_board_needs_a_login(client):
    response = client.get(BOARD)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def fill_every_section(per_section: int) -> None:
    owner = UserFactory(username="owner")
    for n in range(per_section):
        scored(program_in_state(State.INVERTIBLE), float(n))
        at_work((State.QUEUED, State.PREPROCESSED)[n % 2], owner=owner)
        _, inversion = at_work(State.PREPROCESSING, owner=owner)
        TransferFactory(inversion=inversion, files_done=n, files_total=per_section)
        at_work(State.WORKING, owner=owner)
        at_work((State.INVERTED, State.GENERATING, State.GENERATED, State.PUBLISHING)[n % 4], owner=owner)
        in_error(message=f"failure {n}")
        ScanFactory(status=Scan.Status.FAILED, message=f"scan failure {n}")
        stale(published_by_inversion())


def board_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        html = board_html(client)
    assert "Nothing" not in html  # every section has rows
    return len(queries)


def test_the_number_of_queries_does_not_grow_with_the_ops(inverter, client, settings):
    settings.LEVEL2_EXPECTED_DAYS = dict.fromkeys(settings.LEVEL2_EXPECTED_DAYS, 0)
    client.force_login(inverter)
    fill_every_section(2)
    few = board_queries(client)

    fill_every_section(10)
    many = board_queries(client)

    assert few == many <= 12


# --- "Work on this next" on a candidate --------------------------------------------------------


BUTTON = '<button type="submit">Work on this next'


def test_only_inverters_see_work_on_this_next(client, inverter, user):
    program_in_state(State.INVERTIBLE)
    client.force_login(user)
    assert BUTTON not in board_html(client)
    client.force_login(inverter)
    assert BUTTON in section(board_html(client), "candidates")


def test_work_on_this_next_without_javascript_queues_and_comes_back_to_the_board(client, inverter):
    client.force_login(inverter)
    program = program_in_state(State.INVERTIBLE)

    response = client.post(
        reverse("inversions:program-action", args=[program.pk, "queue"]),
        {"queue-expected_state": "invertible", "return_to": "board"},
        follow=True,
    )

    assert response.redirect_chain == [(reverse("board"), 302)]
    html = response.content.decode()
    assert "Work on this next: done." in html
    assert program.pk in section(html, "up-next") and program.pk not in section(html, "candidates")
    assert Inversion.objects.get(program=program, ended_at__isnull=True).owner == inverter


def test_work_on_this_next_with_htmx_swaps_the_sections_and_the_outcome(client, inverter):
    client.force_login(inverter)
    program = program_in_state(State.INVERTIBLE)
    other = program_in_state(State.INVERTIBLE)

    response = client.post(
        reverse("inversions:program-action", args=[program.pk, "queue"]),
        {"queue-expected_state": "invertible", "return_to": "board"},
        headers={"HX-Request": "true"},
    )

    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<div id="board-sections"')
    assert program.pk in section(html, "up-next") and program.pk not in section(html, "candidates")
    assert other.pk in section(html, "candidates")
    assert 'href="/programs/?state=queued">queued <b>1</b>' in html
    assert 'href="/programs/?state=invertible">invertible <b>1</b>' in html
    messages = re.search(r'<ul id="messages"[^>]* hx-swap-oob="beforeend">.*?</ul>', html, re.DOTALL)[0]
    assert "Work on this next: done." in messages


def test_a_refused_form_without_javascript_comes_back_to_the_board_with_the_reason(client, inverter):
    client.force_login(inverter)
    program = program_in_state(State.INVERTIBLE)

    response = client.post(
        reverse("inversions:program-action", args=[program.pk, "queue"]),
        {"queue-expected_state": "not-a-state", "return_to": "board"},
        follow=True,
    )

    assert response.redirect_chain == [(reverse("board"), 302)]
    assert "Select a valid choice" in response.content.decode()
    program.refresh_from_db()
    assert program.state == State.INVERTIBLE


def test_a_second_click_on_the_board_says_who_took_it(client, inverter):
    program = program_in_state(State.INVERTIBLE)
    services.queue_program(program_id=program.pk, user=UserFactory(username="maria", groups=["inverters"]))
    client.force_login(inverter)

    response = client.post(
        reverse("inversions:program-action", args=[program.pk, "queue"]),
        {"queue-expected_state": "invertible", "return_to": "board"},
        headers={"HX-Request": "true"},
    )

    assert "is no longer invertible: it is queued since" in response.content.decode()
    assert "by maria" in response.content.decode()
    assert Inversion.objects.filter(program=program).count() == 1
