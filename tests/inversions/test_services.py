"""Every action of inversions.services, and every refusal."""

import dataclasses
import shutil
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone

from inversions import publication, services, tasks
from inversions.models import Inversion
from inversions.products.synthetic import write_results
from ops.history import Actor, StaleStateError, TransitionError, record_event
from ops.models import ProgramEvent
from ops.states import ActorKind, State
from tests.factories import UserFactory, events_of, program_in_state
from tests.inversions.conftest import demo_report, invertible_program

pytestmark = pytest.mark.django_db


def queued(inverter, **kwargs):
    program = invertible_program(**kwargs)
    services.queue_program(program_id=program.pk, user=inverter, note="next after the plage")
    return program


def move(program, *states):
    for state in states:
        record_event(program_id=program.pk, to_state=state, actor=Actor(ActorKind.WORKER))


def reported(program, inverter):
    """working → inverted with the OP's datasets on its attempt, without results to check."""
    Inversion.objects.filter(program=program).update(
        dataset_ids=list(program.datasets.values_list("id", flat=True))
    )
    record_event(program_id=program.pk, to_state=State.INVERTED, actor=Actor(ActorKind.INVERTER, inverter))


def test_work_on_this_next_queues_a_new_attempt_owned_by_the_user(inverter):
    program = invertible_program()
    inversion = services.queue_program(program_id=program.pk, user=inverter, note=" next ")
    program.refresh_from_db()
    event = events_of(program)[-1]
    assert program.state == State.QUEUED
    assert (event.actor_kind, event.actor_user, event.details["inversion"]) == (
        "inverter",
        inverter,
        inversion.id,
    )
    assert event.details["note"] == "next"
    assert inversion.owner == inverter and inversion.ended_at is None
    assert inversion.id.startswith("inv.") and len(inversion.id) == 10


def test_only_inverters_queue(db):
    program = invertible_program()
    with pytest.raises(PermissionDenied):
        services.queue_program(program_id=program.pk, user=UserFactory(groups=["publishers"]))
    program.refresh_from_db()
    assert program.state == State.INVERTIBLE and not Inversion.objects.exists()


def test_queueing_an_op_someone_took_says_who_and_when(inverter):
    program = queued(inverter)
    other = UserFactory(username="second", groups=["inverters"])
    with pytest.raises(StaleStateError, match=r"no longer invertible: it is queued since .* by lead"):
        services.queue_program(program_id=program.pk, user=other)
    assert Inversion.objects.count() == 1


def test_a_not_invertible_op_cannot_be_queued(inverter):
    program = program_in_state(State.NOT_INVERTIBLE)
    with pytest.raises(StaleStateError):
        services.queue_program(program_id=program.pk, user=inverter)


def test_start_from_preprocessed_only(inverter):
    program = queued(inverter)
    with pytest.raises(StaleStateError):
        services.start_work(program_id=program.pk, user=inverter)
    move(program, State.PREPROCESSING, State.PREPROCESSED)
    event = services.start_work(program_id=program.pk, user=inverter)
    assert (event.from_state, event.to_state) == ("preprocessed", "working")


@pytest.mark.parametrize("state", [State.QUEUED, State.PREPROCESSED, State.WORKING])
def test_put_back_ends_the_attempt_with_a_reason(inverter, state):
    program = queued(inverter)
    path = {
        State.QUEUED: [],
        State.PREPROCESSED: [State.PREPROCESSING, State.PREPROCESSED],
        State.WORKING: [State.PREPROCESSING, State.PREPROCESSED],
    }[state]
    move(program, *path)
    if state == State.WORKING:
        services.start_work(program_id=program.pk, user=inverter)
    with pytest.raises(TransitionError, match="Say why"):
        services.put_back(program_id=program.pk, user=inverter, reason=" ", expected_state=state)
    event = services.put_back(
        program_id=program.pk, user=inverter, reason="seeing too poor", expected_state=state
    )
    assert event.to_state == State.INVERTIBLE and event.details["reason"] == "seeing too poor"
    inversion = Inversion.objects.get()
    assert inversion.end_reason == "put_back" and inversion.ended_at == event.created_at
    # A new attempt may start: several attempts of one OP are kept.
    services.queue_program(program_id=program.pk, user=inverter)
    assert Inversion.objects.filter(program=program).count() == 2


def test_report_done_records_the_facts_on_the_attempt_and_the_event(working, inverter):
    report = demo_report(working)
    event = services.report_done(program_id=working.pk, user=inverter, report=report, via_api=True)
    assert (event.to_state, event.actor_kind) == ("inverted", "api")
    assert event.details["software_commit"] == "0123abcd"
    assert event.details["dataset_ids"] == list(report.dataset_ids)
    inversion = Inversion.objects.get()
    assert (inversion.result_collection, inversion.result_path, inversion.reported_by) == (
        "team",
        report.result_path,
        inverter,
    )


def test_a_result_folder_reported_for_another_op_is_refused_naming_it(working, inverter):
    other = invertible_program(datasets=1)
    services.queue_program(program_id=other.pk, user=inverter)
    move(other, State.PREPROCESSING, State.PREPROCESSED)
    services.start_work(program_id=other.pk, user=inverter)
    Inversion.objects.filter(program=other).update(
        result_collection="team", result_path=demo_report(working).result_path, reported_at=timezone.now()
    )

    with pytest.raises(services.ReportRefused, match=f"holds the results of {other.pk}") as refused:
        services.report_done(program_id=working.pk, user=inverter, report=demo_report(working))

    assert refused.value.field == "result_path"
    working.refresh_from_db()
    assert working.state == State.WORKING


def test_a_result_collection_not_configured_is_refused(working, inverter, settings, local_collections):
    # The same files in the Level 1 collection: the service's client is never pointed there.
    demo_results = local_collections / "team" / demo_report(working).result_path.strip("/")
    copy = local_collections / "level1" / "runs" / "1"
    shutil.copytree(demo_results, copy)
    report = dataclasses.replace(demo_report(working), result_collection="level1", result_path="/runs/1/")

    with pytest.raises(services.ReportRefused, match="level1 is not a result collection") as refused:
        services.report_done(program_id=working.pk, user=inverter, report=report)

    assert refused.value.field == "result_collection"
    settings.LEVEL2_RESULT_COLLECTIONS = ["team", "level1"]
    assert services.report_done(program_id=working.pk, user=inverter, report=report).to_state == "inverted"


@pytest.mark.parametrize("where", ["results", "level1"])
def test_results_or_level1_files_that_link_out_are_refused_before_anything_reads_them(
    working, inverter, local_collections, tmp_path, where
):
    secret = tmp_path / "secret.fits"
    secret.write_bytes(b"SIMPLE  =                    T")  # readable as a FITS header
    if where == "results":
        folder = local_collections / "team" / demo_report(working).result_path.strip("/")
        (folder / "per_ori.fits").unlink()
        (folder / "per_ori.fits").symlink_to(secret)
    else:
        dataset = local_collections / "scratch" / working.proposal_id / working.datasets.first().id
        (dataset / "VISP_extra.fits").symlink_to(secret)

    with pytest.raises(services.ReportRefused, match=r"outside|leaves") as refused:
        services.report_done(program_id=working.pk, user=inverter, report=demo_report(working))

    assert refused.value.field == "result_path"
    working.refresh_from_db()
    assert working.state == State.WORKING


@pytest.mark.parametrize(
    ("frames", "slit_bins", "binning", "problem"),
    [
        (6, 12, 5, "has 4 Stokes I frames but the inversion has 6 raster steps"),
        (2, 12, 5, "has 4 Stokes I frames but the inversion has 2 raster steps"),
        (4, 13, 5, "13 slit positions of 5 pixels (65 pixels) but Level 1 dataset"),
        (4, 12, 6, "12 slit positions of 6 pixels (72 pixels) but Level 1 dataset"),
    ],
)
def test_results_that_do_not_fit_the_level1_data_are_refused_before_inverted(
    working, inverter, local_collections, frames, slit_bins, binning, problem
):
    folder = local_collections / "team" / "runs" / "other"
    write_results(folder, frames=frames, slit_bins=slit_bins, binning=binning, fiducial_arm=1, seed=1)
    report = dataclasses.replace(demo_report(working), result_path="/runs/other/")

    with pytest.raises(services.ReportRefused, match="do not fit this program's Level 1 data") as refused:
        services.report_done(program_id=working.pk, user=inverter, report=report)

    assert refused.value.field == "result_path" and problem in str(refused.value)
    working.refresh_from_db()
    assert working.state == State.WORKING


def test_report_done_is_refused_before_work_started(working, inverter):
    services.put_back(program_id=working.pk, user=inverter, reason="wrong OP", expected_state=State.WORKING)
    with pytest.raises(TransitionError):
        services.report_done(program_id=working.pk, user=inverter, report=demo_report(working))


@pytest.mark.parametrize(
    ("failed", "back_to", "role"),
    [(State.PREPROCESSING, State.QUEUED, "inverters"), (State.GENERATING, State.INVERTED, "inverters")],
)
def test_retry_goes_back_to_the_state_before_the_failed_step(inverter, failed, back_to, role):
    program = queued(inverter)
    steps = {
        State.PREPROCESSING: [State.PREPROCESSING],
        State.GENERATING: [State.PREPROCESSING, State.PREPROCESSED],
    }[failed]
    move(program, *steps)
    if failed == State.GENERATING:
        services.start_work(program_id=program.pk, user=inverter)
        reported(program, inverter)
        move(program, State.GENERATING)
    move(program, State.ERROR)
    with pytest.raises(PermissionDenied):
        services.retry(program_id=program.pk, user=UserFactory(groups=["publishers"]))
    event = services.retry(program_id=program.pk, user=inverter)
    assert (event.from_state, event.to_state) == ("error", back_to)


def test_a_failed_publication_is_retried_by_a_publisher_and_publishes_again(inverter, publisher):
    program = generated(inverter)
    services.publish(program_id=program.pk, user=publisher)
    move(program, State.ERROR)
    with pytest.raises(PermissionDenied):
        services.retry(program_id=program.pk, user=inverter)
    event = services.retry(program_id=program.pk, user=publisher)
    assert [e.to_state for e in events_of(program)][-3:] == ["error", "generated", "publishing"]
    assert event.to_state == State.PUBLISHING


def test_retry_after_a_note_still_knows_the_failed_step(inverter):
    program = queued(inverter)
    move(program, State.PREPROCESSING, State.ERROR)
    services.add_note(
        program_id=program.pk, user=inverter, text="checked the collection", expected_state=State.ERROR
    )
    event = services.retry(program_id=program.pk, user=inverter)
    assert (event.from_state, event.to_state) == ("error", "queued")


def test_restore_after_a_note_goes_back_to_the_state_archived_from(inverter):
    staff = UserFactory(is_staff=True)
    program = queued(inverter)
    services.archive(
        program_id=program.pk, user=staff, reason="duplicate of another OP", expected_state=State.QUEUED
    )
    services.add_note(program_id=program.pk, user=staff, text="kept for later", expected_state=State.ARCHIVED)
    event = services.restore(program_id=program.pk, user=staff)
    assert (event.from_state, event.to_state) == ("archived", "queued")


def test_retry_needs_an_error(inverter):
    program = queued(inverter)
    with pytest.raises(TransitionError, match="not in error"):
        services.retry(program_id=program.pk, user=inverter)


def generated(inverter):
    program = queued(inverter)
    move(program, State.PREPROCESSING, State.PREPROCESSED)
    services.start_work(program_id=program.pk, user=inverter)
    reported(program, inverter)
    move(program, State.GENERATING, State.GENERATED)
    return program


def test_regenerate_goes_back_to_inverted(inverter, publisher):
    program = generated(inverter)
    with pytest.raises(PermissionDenied):
        services.regenerate(program_id=program.pk, user=UserFactory())
    event = services.regenerate(program_id=program.pk, user=publisher)
    assert (event.to_state, event.actor_kind, event.details["regenerate"]) == ("inverted", "publisher", True)


def test_publish_is_for_publishers_only(inverter, publisher):
    program = generated(inverter)
    with pytest.raises(PermissionDenied):
        services.publish(program_id=program.pk, user=inverter)
    event = services.publish(program_id=program.pk, user=publisher)
    assert (event.to_state, event.details["bucket"]) == ("publishing", "data")


def test_publish_is_refused_under_embargo_with_its_end_date(inverter, publisher):
    program = generated(inverter)
    program.datasets.update(is_embargoed=True, embargo_end_date="2099-01-31T00:00:00Z")
    with pytest.raises(publication.PublishRefused, match="under embargo until 2099-01-31"):
        services.publish(program_id=program.pk, user=publisher)
    program.refresh_from_db()
    assert program.state == State.GENERATED


def test_an_embargo_that_ended_does_not_hold_publication(inverter, publisher):
    program = generated(inverter)
    program.datasets.update(is_embargoed=True, embargo_end_date="2020-01-31T00:00:00Z")
    assert services.publish(program_id=program.pk, user=publisher).to_state == State.PUBLISHING


def test_datasets_in_two_buckets_cannot_be_published_together(inverter, publisher):
    program = generated(inverter)
    first = program.datasets.order_by("id").first()
    program.datasets.exclude(pk=first.pk).update(bucket="other")
    with pytest.raises(publication.PublishRefused, match="different buckets"):
        services.publish(program_id=program.pk, user=publisher)


def test_archive_and_restore_are_for_staff(staff_user, inverter):
    program = queued(inverter)
    with pytest.raises(PermissionDenied):
        services.archive(
            program_id=program.pk, user=inverter, reason="duplicate", expected_state=State.QUEUED
        )
    with pytest.raises(TransitionError, match="Say why"):
        services.archive(program_id=program.pk, user=staff_user, reason="", expected_state=State.QUEUED)
    services.archive(program_id=program.pk, user=staff_user, reason="duplicate", expected_state=State.QUEUED)
    event = services.restore(program_id=program.pk, user=staff_user)
    assert (event.from_state, event.to_state, event.actor_kind) == ("archived", "queued", "staff")
    with pytest.raises(TransitionError, match="not archived"):
        services.restore(program_id=program.pk, user=staff_user)


def test_notes_are_information_events_for_inverters_and_staff(inverter):
    program = queued(inverter)
    staff_user = UserFactory(username="desk", is_staff=True)
    event = services.add_note(
        program_id=program.pk, user=inverter, text="waiting for the cluster", expected_state=State.QUEUED
    )
    assert event.is_information and event.details == {"note": "waiting for the cluster"}
    assert (
        services.add_note(
            program_id=program.pk, user=staff_user, text="ok", expected_state=State.QUEUED
        ).actor_kind
        == "staff"
    )
    with pytest.raises(PermissionDenied):
        services.add_note(
            program_id=program.pk, user=UserFactory(), text="hello", expected_state=State.QUEUED
        )
    with pytest.raises(TransitionError, match="needs some text"):
        services.add_note(program_id=program.pk, user=inverter, text="  ", expected_state=State.QUEUED)


def test_move_to_top_puts_the_attempt_first(inverter):
    first, second, third = (queued(inverter) for _ in range(3))
    services.move_to_top(program_id=third.pk, user=inverter, expected_state=State.QUEUED)
    order = list(Inversion.objects.filter(ended_at__isnull=True).values_list("program_id", flat=True))
    assert order == [third.pk, first.pk, second.pk]
    with pytest.raises(PermissionDenied):
        services.move_to_top(program_id=first.pk, user=UserFactory(), expected_state=State.QUEUED)


def test_actions_from_a_stale_page_are_refused_naming_who_moved_the_program(inverter):
    """Move to top, Archive and Add note act only in the state the user saw (issue 15)."""
    staff = UserFactory(username="desk", is_staff=True)
    program = queued(inverter)
    services.put_back(program_id=program.pk, user=inverter, reason="wrong OP", expected_state=State.QUEUED)
    stale = [
        lambda: services.move_to_top(program_id=program.pk, user=inverter, expected_state=State.QUEUED),
        lambda: services.archive(
            program_id=program.pk, user=staff, reason="dup", expected_state=State.QUEUED
        ),
        lambda: services.add_note(
            program_id=program.pk, user=inverter, text="hi", expected_state=State.QUEUED
        ),
    ]
    for action in stale:
        with pytest.raises(StaleStateError, match=r"no longer queued: it is invertible since .* by lead"):
            action()
    assert [e.to_state for e in events_of(program)][-2:] == ["queued", "invertible"]


def test_a_note_is_allowed_in_every_state(inverter):
    staff = UserFactory(username="desk", is_staff=True)
    for state in State:
        program = program_in_state(state)
        event = services.add_note(program_id=program.pk, user=staff, text="seen", expected_state=state)
        assert (event.from_state, event.to_state) == (state, state)


def test_actions_without_an_attempt_say_so(inverter):
    program = program_in_state(State.PREPROCESSED)
    with pytest.raises(TransitionError, match="no inversion under way"):
        services.start_work(program_id=program.pk, user=inverter)


def published(inverter):
    """A published OP whose attempt ended as published, as the worker leaves it."""
    program = generated(inverter)
    publish_attempt(program)
    return program


def publish_attempt(program):
    """generated → published, and the open attempt ended as published."""
    record_event(program_id=program.pk, to_state=State.PUBLISHING, actor=Actor(ActorKind.PUBLISHER))
    event = record_event(program_id=program.pk, to_state=State.PUBLISHED, actor=Actor(ActorKind.WORKER))
    Inversion.objects.filter(program=program, ended_at__isnull=True).update(
        ended_at=event.created_at, end_reason=Inversion.EndReason.PUBLISHED
    )


@pytest.mark.parametrize(("role", "kind"), [("inverters", "inverter"), ("publishers", "publisher")])
def test_invert_again_queues_a_new_attempt_naming_the_published_one(inverter, role, kind):
    program = published(inverter)
    earlier = Inversion.objects.get(program=program)
    user = UserFactory(username="again", groups=[role])
    inversion = services.queue_program(
        program_id=program.pk, user=user, note="new calibration", expected_state=State.PUBLISHED
    )
    program.refresh_from_db()
    event = events_of(program)[-1]
    assert program.state == State.QUEUED
    assert (event.from_state, event.actor_kind, event.actor_user) == ("published", kind, user)
    assert event.details == {
        "inversion": inversion.id,
        "owner": "again",
        "note": "new calibration",
        "again_after": earlier.id,
    }
    assert inversion.id != earlier.id and inversion.owner == user and inversion.ended_at is None
    earlier.refresh_from_db()
    assert earlier.end_reason == Inversion.EndReason.PUBLISHED and earlier.ended_at is not None
    assert services.open_inversion(program_id=program.pk) == inversion


def test_invert_again_names_the_attempt_published_last(inverter):
    program = published(inverter)
    first = Inversion.objects.get(program=program)
    services.queue_program(program_id=program.pk, user=inverter, expected_state=State.PUBLISHED)
    move(program, State.PREPROCESSING, State.PREPROCESSED)
    services.start_work(program_id=program.pk, user=inverter)
    reported(program, inverter)
    move(program, State.GENERATING, State.GENERATED)
    second = services.open_inversion(program_id=program.pk)
    publish_attempt(program)
    third = services.queue_program(program_id=program.pk, user=inverter, expected_state=State.PUBLISHED)
    assert events_of(program)[-1].details["again_after"] == second.id
    assert Inversion.objects.filter(program=program).count() == 3
    assert {first.id, second.id, third.id} == set(Inversion.objects.values_list("id", flat=True))


def test_viewers_and_staff_without_a_role_cannot_invert_again(inverter, staff_user):
    program = published(inverter)
    viewer = UserFactory(groups=["viewers"])
    for user in (viewer, UserFactory(is_staff=True)):
        with pytest.raises(PermissionDenied, match="inverters and publishers"):
            services.queue_program(program_id=program.pk, user=user, expected_state=State.PUBLISHED)
    program.refresh_from_db()
    assert program.state == State.PUBLISHED and Inversion.objects.count() == 1


def test_work_on_this_next_stays_for_inverters_only_and_from_invertible_only(inverter, publisher):
    program = invertible_program()
    with pytest.raises(PermissionDenied):
        services.queue_program(program_id=program.pk, user=publisher)
    with pytest.raises(StaleStateError, match="no longer published: it is invertible"):
        services.queue_program(program_id=program.pk, user=inverter, expected_state=State.PUBLISHED)
    assert not Inversion.objects.exists()


@pytest.mark.parametrize("state", [State.QUEUED, State.GENERATED, State.ERROR, State.ARCHIVED, "nonsense"])
def test_queueing_from_any_other_state_is_refused_clearly(inverter, state):
    program = program_in_state(State.PUBLISHED)
    with pytest.raises(TransitionError, match="cannot be queued: only invertible programs"):
        services.queue_program(program_id=program.pk, user=inverter, expected_state=state)
    assert not Inversion.objects.exists()


def test_invert_again_twice_from_the_same_page_queues_once_and_says_who(inverter, publisher):
    program = published(inverter)
    services.queue_program(program_id=program.pk, user=publisher, expected_state=State.PUBLISHED)
    with pytest.raises(StaleStateError, match=r"no longer published: it is queued since .* by publisher"):
        services.queue_program(program_id=program.pk, user=inverter, expected_state=State.PUBLISHED)
    assert Inversion.objects.filter(program=program, ended_at__isnull=True).count() == 1


def test_invert_again_of_an_unknown_program_is_a_clear_error(inverter):
    with pytest.raises(TransitionError, match="There is no observing program"):
        services.queue_program(program_id="../nope", user=inverter, expected_state=State.PUBLISHED)


def test_invert_again_clicked_at_once_by_several_people_queues_one_attempt(committed_db, monkeypatch):
    # The worker's step is only sent, never run: the OP stays queued, as the winner left it.
    monkeypatch.setattr(tasks.preprocess, "apply_async", lambda *args, **options: None)
    program = published(UserFactory(username="lead", groups=["inverters"]))
    users = [
        UserFactory(username=f"user{n}", groups=["inverters", "publishers"][n % 2 :][:1]) for n in range(6)
    ]
    start = Barrier(len(users))

    def again(user):
        start.wait()
        try:
            services.queue_program(program_id=program.pk, user=user, expected_state=State.PUBLISHED)
            return "won"
        except StaleStateError as refused:
            return str(refused)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        outcomes = list(pool.map(again, users))
    assert outcomes.count("won") == 1
    winner = Inversion.objects.get(program=program, ended_at__isnull=True).owner.username
    assert [o for o in outcomes if o != "won"] == [o for o in outcomes if o.endswith(f"by {winner}.")]
    assert (
        ProgramEvent.objects.filter(
            program=program, to_state=State.QUEUED, from_state=State.PUBLISHED
        ).count()
        == 1
    )
