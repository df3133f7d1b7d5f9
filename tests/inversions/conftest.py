import pytest

from demo import files as demo
from inversions import services
from ops.models import ObservingProgram
from ops.qualification import qualify_programs
from ops.states import State
from tests.factories import DatasetFactory, InstrumentProgramFactory, UserFactory, program_in_state


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


def demo_report(program: ObservingProgram) -> services.DoneReport:
    """The team's report of the demo results that ``demo.prepare_program`` wrote."""
    dataset_ids = list(program.datasets.values_list("id", flat=True))
    return services.DoneReport("0123abcd", "team", demo.demo_result_path(program.pk), dataset_ids)


@pytest.fixture
def working(inverter, local_collections, eager_tasks, settings, django_capture_on_commit_callbacks):
    """A demo OP with its Level 1 and result files, walked through the services to ``working``."""
    settings.LEVEL2_GENERATION_PROCESSES = 1
    program = invertible_program(datasets=2)
    demo.prepare_program(program)
    with django_capture_on_commit_callbacks(execute=True):
        services.queue_program(program_id=program.pk, user=inverter)
    services.start_work(program_id=program.pk, user=inverter)
    return program
