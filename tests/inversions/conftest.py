import pytest

from inversions.transfers import _backend_for
from level2.celery import app
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


@pytest.fixture
def local_collections(tmp_path, settings):
    """The local transfer backend on folders under tmp_path (collections level1, scratch, publish, team)."""
    settings.LEVEL2_LOCAL_TRANSFER_ROOT = str(tmp_path / "collections")
    settings.LEVEL2_SCRATCH_DIR = str(tmp_path / "collections" / "scratch")
    _backend_for.cache_clear()
    yield tmp_path / "collections"
    _backend_for.cache_clear()


@pytest.fixture
def eager_tasks():
    """Celery tasks run in the caller, as soon as they are sent."""
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


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
