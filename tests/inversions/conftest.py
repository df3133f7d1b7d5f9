import pytest

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
