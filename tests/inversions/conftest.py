from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from demo import files as demo_files
from demo import team as demo_team
from inversions import services
from inversions.models import Inversion
from ops.history import Actor, record_event
from ops.models import ObservingProgram
from ops.qualification import qualify_programs
from ops.states import ActorKind, State
from tests.factories import (
    DatasetFactory,
    InstrumentProgramFactory,
    InversionFactory,
    UserFactory,
    program_in_state,
)


@pytest.fixture
def inverter(db):
    return UserFactory(username="lead", groups=["inverters"])


@pytest.fixture
def publisher(db):
    return UserFactory(username="publisher", groups=["publishers"])


def invertible_program(*, datasets: int = 2, **fields) -> ObservingProgram:
    """An invertible OP whose qualification report names one invertible ViSP IP with
    ``datasets`` datasets, as the qualifier recorded it."""
    program = program_in_state(State.DISCOVERED, **fields)
    ip = InstrumentProgramFactory(program=program)
    for _ in range(datasets):
        DatasetFactory(instrument_program=ip)
    qualify_programs(program_ids=[program.pk])
    program.refresh_from_db()
    assert program.state == State.INVERTIBLE
    return program


def write_demo_files(program: ObservingProgram) -> None:
    """The demo data center's files of a factory-made OP: its datasets' Level 1 folders and the
    demo team's results, as the demo store writes them for its records."""
    records = [
        {
            "datasetId": dataset.id,
            "primaryProposalId": dataset.proposal_id,
            "primaryExperimentId": dataset.experiment_id_text,
            "observingProgramExecutionId": program.pk,
            "instrumentProgramExecutionId": dataset.instrument_program_id,
            "instrumentName": dataset.instrument_name,
            "bucket": dataset.bucket,
            "createDate": "2025-04-02T22:24:00.000000",
        }
        for dataset in program.datasets.order_by("id")
    ]
    assert demo_files.StoreFiles(records, root=Path(settings.LEVEL2_LOCAL_TRANSFER_ROOT)).write()


def demo_report(program: ObservingProgram) -> services.DoneReport:
    """The team's report of the demo results that ``write_demo_files`` wrote."""
    dataset_ids = list(program.datasets.values_list("id", flat=True))
    return services.DoneReport("0123abcd", "team", demo_team.result_path(program.pk), dataset_ids)


@pytest.fixture
def working(inverter, local_collections, eager_tasks, settings, django_capture_on_commit_callbacks):
    """A demo OP with its Level 1 and result files, walked through the services to ``working``."""
    settings.LEVEL2_GENERATION_PROCESSES = 1
    program = invertible_program(datasets=2)
    write_demo_files(program)
    with django_capture_on_commit_callbacks(execute=True):
        services.queue_program(program_id=program.pk, user=inverter)
    services.start_work(program_id=program.pk, user=inverter)
    return program


def published_and_stale(**fields) -> tuple[ObservingProgram, Inversion]:
    """A published OP whose attempt has its products, its store record, and a stale event."""
    program = program_in_state(State.PUBLISHED, **fields)
    inversion = InversionFactory(
        program=program,
        software_commit="0123abcd",
        dataset_ids=["AAAAA", "AAAAB"],
        reported_at=timezone.now(),
        ended_at=timezone.now(),
        end_reason="published",
        products={"asdf": f"{program.proposal_id}/inv_X/INV_X_L2_metadata.asdf"},
        store_record={
            "record": {
                "inversionId": "inv.FIRST1",
                "bucket": "data",
                "asdfObjectKey": f"{program.proposal_id}/inv_FIRST1/INV_FIRST1_L2_metadata.asdf",
            },
            "created": True,
        },
    )
    record_event(
        program_id=program.pk,
        to_state=State.PUBLISHED,
        actor=Actor(ActorKind.SCANNER),
        details={
            "note": f"Level 1 changed since {inversion.id}: dataset AAAAB reprocessed.",
            "stale": {
                "inversion": inversion.id,
                "datasets": {
                    "AAAAB": {
                        "update_date": {
                            "old": "2025-06-28T19:52:46+00:00",
                            "new": "2026-01-05T10:00:00+00:00",
                        },
                        "fields": {
                            "calibrationDocumentationUrl": {"old": "visp/v2.0.0", "new": "<b>visp/v3</b>"},
                            "lightLevel": {},
                        },
                    }
                },
            },
        },
    )
    program.refresh_from_db()
    return program, inversion
