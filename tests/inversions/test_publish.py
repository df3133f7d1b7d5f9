"""Publication on the local backend: files to the archive, catalog messages, one store record."""

import pytest

from demo import files as demo_files
from inversions import pipeline, services
from inversions.models import Inversion
from ops.metadata.client import MetadataClient
from ops.metadata.inventory import ensure_l2_inversion_inventory
from ops.states import State
from tests.factories import events_of
from tests.inversions.conftest import demo_report
from tests.inversions.test_catalog import Listener

pytestmark = pytest.mark.django_db


@pytest.fixture
def generated(working, inverter, django_capture_on_commit_callbacks):
    """A demo OP walked through the services to ``generated``."""
    with django_capture_on_commit_callbacks(execute=True):
        services.report_done(program_id=working.pk, user=inverter, report=demo_report(working))
    working.refresh_from_db()
    assert working.state == State.GENERATED
    return working


@pytest.fixture
def bus(settings):
    listener = Listener("memory://")
    settings.LEVEL2_ISB_URL = "memory://"
    settings.LEVEL2_ISB_EXCHANGE = listener.exchange.name
    yield listener
    listener.close()


def test_publishing_announces_every_file_and_records_the_inversion_once(
    generated, publisher, metadata_store, bus, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.publish(program_id=generated.pk, user=publisher)
    generated.refresh_from_db()
    assert generated.state == State.PUBLISHED
    inversion = Inversion.objects.get(program=generated)
    messages = bus.received(expected=demo_files.DEMO_FRAMES + 1)
    keys = [message.delivery_info["routing_key"] for message in messages]
    assert keys == ["catalog.frame.m"] * demo_files.DEMO_FRAMES + ["catalog.object.m"]
    assert len(metadata_store.inventories) == 1
    assert metadata_store.inventories[0]["asdfObjectKey"] == pipeline.asdf_key(inversion)
    published = events_of(generated)[-1]
    assert published.details["asdf_key"] == pipeline.asdf_key(inversion)
    assert inversion.end_reason == "published"

    # The task again (a duplicate delivery): nothing more is sent or recorded.
    assert pipeline.publish(inversion_id=inversion.id) is None
    assert len(metadata_store.inventories) == 1
    assert bus.received() == []


def test_only_the_products_own_fits_and_asdf_reach_the_archive(
    generated, publisher, metadata_store, local_collections, django_capture_on_commit_callbacks
):
    inversion = Inversion.objects.get(program=generated)
    products = pipeline.scratch_folder(inversion)
    assert sorted(path.name for path in (products / "input").iterdir()) == sorted(
        ["inv_res_mod.fits", "inv_res_pre.fits", "per_ori.fits"]
    )
    (products / "notes.txt").write_text("left on scratch by the team")
    (products / "extra").mkdir()
    (products / "extra" / "old.fits").write_bytes(b"not a product")

    with django_capture_on_commit_callbacks(execute=True):
        services.publish(program_id=generated.pk, user=publisher)

    generated.refresh_from_db()
    assert generated.state == State.PUBLISHED
    archive = local_collections / "publish"
    published = archive / "data" / generated.proposal_id / inversion.directory
    names = sorted(path.relative_to(published).as_posix() for path in archive.rglob("*") if path.is_file())
    assert names == sorted(name for name, _size in inversion.products["file_list"])
    assert len([name for name in names if name.endswith(".fits")]) == demo_files.DEMO_FRAMES
    assert len([name for name in names if name.endswith(".asdf")]) == 1
    assert not any(path.name in ("input", "extra") or "quicklook" in path.name for path in archive.rglob("*"))


def test_a_publication_killed_after_the_store_record_does_not_make_a_second_one(
    generated, publisher, metadata_store, django_capture_on_commit_callbacks
):
    inversion = Inversion.objects.get(program=generated)
    # The worker died after the mutation and before keeping the store's answer.
    with MetadataClient() as client:
        ensure_l2_inversion_inventory(
            client=client,
            create_params={
                "inversionId": inversion.id,
                "primaryProposalId": generated.proposal_id,
                "instrumentProgramExecutionId": "id.1",
                "bucket": "data",
                "asdfObjectKey": pipeline.asdf_key(inversion),
                "datasetIds": inversion.dataset_ids,
                "spectralLines": [],
            },
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.publish(program_id=generated.pk, user=publisher)
    generated.refresh_from_db()
    assert generated.state == State.PUBLISHED
    assert len(metadata_store.inventories) == 1
    assert events_of(generated)[-1].details["created_in_store"] is False


def test_a_store_that_cannot_be_reached_is_an_error_that_retry_resumes(
    generated, publisher, metadata_store, settings, django_capture_on_commit_callbacks
):
    reachable = settings.LEVEL2_METADATA_URL
    settings.LEVEL2_METADATA_URL = "http://127.0.0.1:9/graphql"
    with django_capture_on_commit_callbacks(execute=True):
        services.publish(program_id=generated.pk, user=publisher)
    generated.refresh_from_db()
    error = events_of(generated)[-1]
    assert (generated.state, error.details["step"]) == (State.ERROR, "publishing")
    transfers = Inversion.objects.get(program=generated).transfers.filter(step="publish")
    assert [t.status for t in transfers] == ["succeeded"]

    settings.LEVEL2_METADATA_URL = reachable
    with django_capture_on_commit_callbacks(execute=True):
        services.retry(program_id=generated.pk, user=publisher)
    generated.refresh_from_db()
    assert generated.state == State.PUBLISHED
    # The files were not moved a second time: the transfer that succeeded is kept.
    assert [t.status for t in transfers.all()] == ["succeeded"]
    assert len(metadata_store.inventories) == 1
