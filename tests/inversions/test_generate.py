"""The generation step: the results copied in, the products written, progress kept; bad inputs
are an error that names the problem, and Retry generates again."""

import pytest
from django.core import mail
from django.core.management import call_command

from demo import files as demo_files
from demo import team as demo_team
from inversions import overdue, pipeline, services
from inversions.models import Inversion
from ops.states import State
from tests.factories import events_of
from tests.inversions.conftest import demo_report

pytestmark = pytest.mark.django_db


def test_results_that_do_not_fit_are_an_error_naming_the_file_and_retry_generates_again(
    working, inverter, local_collections, django_capture_on_commit_callbacks
):
    results = local_collections / "team" / demo_team.result_path(working.pk).strip("/")
    good = (results / "per_ori.fits").read_bytes()
    with django_capture_on_commit_callbacks() as generation:
        services.report_done(program_id=working.pk, user=inverter, report=demo_report(working))
    # Spoilt after "Report done" checked them, before the worker copies them in.
    (results / "per_ori.fits").write_bytes(b"not a FITS file")
    with django_capture_on_commit_callbacks(execute=True):
        for callback in generation:
            callback()
    working.refresh_from_db()
    error = events_of(working)[-1]
    assert (working.state, error.details["step"]) == (State.ERROR, "generating")
    assert "per_ori.fits" in error.details["message"]

    (results / "per_ori.fits").write_bytes(good)
    with django_capture_on_commit_callbacks(execute=True):
        services.retry(program_id=working.pk, user=inverter)
    working.refresh_from_db()
    generated = events_of(working)[-1]
    assert working.state == State.GENERATED
    inversion = Inversion.objects.get(program=working)
    assert generated.details["frames"] == inversion.frames_done == demo_files.DEMO_FRAMES
    assert generated.details["files"] == demo_files.DEMO_FRAMES + 1
    assert all((local_collections / "scratch" / path).is_file() for path in generated.details["quicklooks"])
    assert len(list(pipeline.scratch_folder(inversion).glob("INV_*_L2.fits"))) == demo_files.DEMO_FRAMES


@pytest.mark.parametrize("where", ["results", "level1", "products"])
def test_a_link_out_of_scratch_is_an_error_and_nothing_is_read_or_written_through_it(
    working, inverter, local_collections, tmp_path, django_capture_on_commit_callbacks, where
):
    """Scratch is the team's space too: a link planted there must not lead the worker elsewhere."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("the worker's secrets")
    with django_capture_on_commit_callbacks() as generation:
        services.report_done(program_id=working.pk, user=inverter, report=demo_report(working))
    # Planted after "Report done" checked the files, before the worker reads them.
    inversion = Inversion.objects.get(program=working)
    scratch = local_collections / "scratch" / working.proposal_id
    if where == "results":
        # The team's results arrive by the transfer; a link put beside them afterwards.
        (scratch / inversion.directory / "input").mkdir(parents=True)
        (scratch / inversion.directory / "input" / "extra.fits").symlink_to(outside / "secret")
    elif where == "level1":
        dataset = next(path for path in scratch.iterdir() if path.is_dir())
        (dataset / "VISP_extra_I_L1.fits").symlink_to(outside / "secret")
    else:
        scratch.joinpath(f"{inversion.directory}_quicklook").symlink_to(outside)
    with django_capture_on_commit_callbacks(execute=True):
        for callback in generation:
            callback()
    working.refresh_from_db()
    error = events_of(working)[-1]
    assert (working.state, error.details["step"]) == (State.ERROR, "generating")
    assert "outside scratch/" in error.details["message"] or "leaves scratch/" in error.details["message"]
    assert [path.name for path in outside.iterdir()] == ["secret"]


def test_overdue_programs_are_printed_and_emailed_to_their_owners_and_the_lead(
    working, inverter, settings, capsys
):
    settings.LEVEL2_EXPECTED_DAYS = {**settings.LEVEL2_EXPECTED_DAYS, "working": 0}
    settings.LEVEL2_LEAD_EMAILS = ["lead-of-team@nso.example"]
    [item] = overdue.overdue_programs()
    assert (item.program_id, item.state, item.owner) == (working.pk, "working", inverter.username)

    call_command("overdue")
    assert f"{working.pk}: working for" in capsys.readouterr().out

    assert overdue.email_overdue() == 2
    assert sorted(message.to[0] for message in mail.outbox) == ["lead-of-team@nso.example", inverter.email]
    assert all(working.pk in message.body for message in mail.outbox)


def test_nothing_overdue_sends_nothing(working):
    assert overdue.email_overdue() == 0
    assert mail.outbox == []
