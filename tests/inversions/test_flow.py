"""The whole flow on the local backend, as the demo runs it: work on this next → preprocessed →
start → report done (the form) → generating → generated → publish → published."""

import json

import dkist
import pytest
from django.urls import reverse

from demo import files as demo_files
from demo import team as demo_team
from inversions import pipeline, services
from inversions.models import Inversion
from ops.states import State
from tests.factories import events_of
from tests.inversions.conftest import invertible_program, write_demo_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_program(local_collections):
    program = invertible_program(datasets=3)
    write_demo_files(program)
    return program


def test_an_op_goes_from_work_on_this_next_to_published(
    client,
    inverter,
    publisher,
    demo_program,
    local_collections,
    eager_tasks,
    metadata_store,
    settings,
    django_capture_on_commit_callbacks,
):
    program = demo_program
    settings.LEVEL2_GENERATION_PROCESSES = 1
    client.force_login(inverter)
    detail = reverse("program-detail", args=[program.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("inversions:program-action", args=[program.pk, "queue"]),
            {"queue-expected_state": "invertible", "queue-note": "first light"},
        )
    assert response.status_code == 302
    program.refresh_from_db()
    assert program.state == State.PREPROCESSED

    client.post(
        reverse("inversions:program-action", args=[program.pk, "start"]),
        {"start-expected_state": "preprocessed"},
    )
    form_page = client.get(reverse("inversions:report-done", args=[program.pk]))
    assert form_page.status_code == 200
    dataset_ids = sorted(program.datasets.values_list("id", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("inversions:report-done", args=[program.pk]),
            {
                "software_commit": "0123abcd",
                "result_collection": "team",
                "result_path": demo_team.result_path(program.pk),
                "dataset_ids": dataset_ids,
                "notes": "DeSIRe run 1",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    program.refresh_from_db()
    assert program.state == State.GENERATED, events_of(program)[-1].details
    inversion = Inversion.objects.get(program=program)
    assert inversion.frames_done == inversion.frames_total == demo_files.DEMO_FRAMES
    products = pipeline.scratch_folder(inversion)
    asdf = next(products.glob("*.asdf"))
    loaded = dkist.load_dataset(asdf)
    assert loaded is not None
    page = client.get(detail).content.decode()
    assert "Quicklook" in page and "dkist.load_dataset" in page
    assert "B/s)" in page  # each transfer's mean rate

    client.force_login(publisher)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("inversions:program-action", args=[program.pk, "publish"]),
            {"publish-expected_state": "generated"},
        )
    program.refresh_from_db()
    assert program.state == State.PUBLISHED, events_of(program)[-1].details
    published = local_collections / "publish" / "data" / program.proposal_id / inversion.directory
    assert len(list(published.glob("*.fits"))) == demo_files.DEMO_FRAMES
    assert len(metadata_store.inventories) == 1
    assert metadata_store.inventories[0]["inversionId"] == inversion.id
    # Publishing again is refused: a published OP is final.
    with pytest.raises(services.TransitionError):
        services.publish(program_id=program.pk, user=publisher)
    json.dumps(events_of(program)[-1].details)
