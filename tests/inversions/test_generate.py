"""The generation step: the results copied in, the products written, progress kept; bad inputs
are an error that names the problem, and Retry generates again."""

from pathlib import Path

import asdf
import astropy.units as u
import dkist
import pytest
from astropy.io import fits
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from dkist.dataset.inversion import Inversion as DkistInversion
from dkist.dataset.inversion import Profiles

from demo import files as demo_files
from demo import team as demo_team
from inversions import overdue, pipeline, products, services
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


FORMER_LINE_KEYS = {"NaID": "NaID589"}


def _former_format(folder: Path) -> None:
    """Rewrite the products in `folder` as they were written before header version 1.1.0: the
    sodium line named NaID589, profiles without a unit, meta of the inventory and headers alone."""
    for path in folder.glob("INV_*_L2.fits"):
        with fits.open(path) as hdul:
            hdul[0].header["HEADVERS"] = "1.0.0"
            del hdul[0].header["HEAD_URL"]
            for hdu in hdul[12:]:
                for key in ("BUNIT", "DATAMIN", "DATAMAX"):
                    del hdu.header[key]
            hdul.writeto(path, overwrite=True, checksum=True)
    [asdf_path] = folder.glob("*.asdf")
    current = dkist.load_dataset(asdf_path)
    inventory = {
        **current.meta["inventory"],
        "spectralLines": [
            FORMER_LINE_KEYS.get(line, line) for line in current.meta["inventory"]["spectralLines"]
        ],
    }
    items = {}
    for key in current.profiles:
        line, kind = key.rsplit("_", 1)
        items[f"{FORMER_LINE_KEYS.get(line, line)}_{kind}"] = profile = current.profiles[key]
        profile._unit = u.one
        profile.meta = {"inventory": inventory, "headers": profile.meta["headers"]}
    former = DkistInversion(
        {key: current[key] for key in current},
        aligned_axes="all",
        meta={"inventory": inventory, "headers": current.meta["headers"]},
        profiles=Profiles(items, aligned_axes=tuple((0, 1, 3) for _ in items), meta={"inventory": inventory}),
    )
    asdf.AsdfFile({"inversion": former}).write_to(asdf_path)


def test_products_of_the_former_format_stay_readable_and_regenerate_brings_them_up_to_date(
    working, inverter, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.report_done(program_id=working.pk, user=inverter, report=demo_report(working))
    inversion = Inversion.objects.get(program=working)
    folder = pipeline.scratch_folder(inversion)
    _former_format(folder)
    former_lines = [FORMER_LINE_KEYS.get(line, line) for line in inversion.products["spectral_lines"]]
    Inversion.objects.filter(pk=inversion.pk).update(
        products={**inversion.products, "spectral_lines": former_lines, "header_version": None}
    )
    [asdf_path] = folder.glob("*.asdf")
    assert "NaID589_orig" in dkist.load_dataset(asdf_path).profiles
    client.force_login(inverter)
    page = client.get(reverse("program-detail", args=[working.pk])).content.decode()
    assert f'inversion.profiles["{former_lines[0]}_orig"]' in page
    assert "earlier format" in page and "Regenerate" in page

    with django_capture_on_commit_callbacks(execute=True):
        services.regenerate(program_id=working.pk, user=inverter)

    working.refresh_from_db()
    inversion.refresh_from_db()
    assert working.state == State.GENERATED, events_of(working)[-1].details
    assert inversion.products["frames_written"] == demo_files.DEMO_FRAMES
    assert inversion.products["header_version"] == products.HEADER_VERSION
    assert "NaID" in inversion.products["spectral_lines"]
    regenerated = dkist.load_dataset(asdf_path)
    assert {"NaID_orig", "NaID_fit"} <= set(regenerated.profiles)
    assert {"axes", "gwcs", "l1gwcs"} <= set(regenerated.meta)
    assert all(regenerated.profiles[key].unit == u.ct for key in regenerated.profiles)
    for path in folder.glob("INV_*_L2.fits"):
        assert fits.getval(path, "HEADVERS") == products.HEADER_VERSION
        assert fits.getval(path, "BUNIT", ext=12) == "ct"
    page = client.get(reverse("program-detail", args=[working.pk])).content.decode()
    assert 'inversion.profiles["NaID_orig"]' in page and "earlier format" not in page


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
