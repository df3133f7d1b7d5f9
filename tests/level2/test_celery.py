"""Tasks travel through the configured Redis broker to a real Celery worker."""

import datetime as dt
import time

import pytest
from celery.contrib.testing.worker import start_worker

from level2.celery import app
from ops.models import ObservingProgram
from ops.states import State
from ops.tasks import qualify_settled_programs
from tests.factories import DatasetFactory, program_in_state


@pytest.fixture
def worker(committed_db):
    # No ping check: it reads a result, and Level 2 keeps no task results.
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as running:
        yield running


@pytest.mark.slow
def test_a_queued_qualification_runs_in_the_worker(worker):
    program = program_in_state(
        State.DISCOVERED, newest_dataset_created_at=dt.datetime(2025, 4, 2, tzinfo=dt.UTC)
    )
    DatasetFactory(instrument_program__program=program)

    qualify_settled_programs.delay()

    deadline = time.monotonic() + 20
    while ObservingProgram.objects.get(pk=program.pk).state == State.DISCOVERED:
        assert time.monotonic() < deadline, "the worker did not qualify the OP in 20 s"
        time.sleep(0.1)
    assert ObservingProgram.objects.get(pk=program.pk).state == State.INVERTIBLE
