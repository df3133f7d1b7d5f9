"""``manage.py demo_reprocess``: the demo store reprocesses a published OP's datasets, and the
next scan of it marks the OP stale."""

import json
from datetime import datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from demo.store.generator import generate_store
from demo.store.server import DemoStoreServer
from ops.models import ObservingProgram, Scan
from ops.scan import run_scan
from ops.states import State
from tests.factories import (
    DatasetFactory,
    InstrumentProgramFactory,
    InversionFactory,
    program_in_state,
    walk_to,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 11, 28, 12, 0)


def published(*, dataset_ids=()):
    program = program_in_state(State.PUBLISHED)
    ip = InstrumentProgramFactory(program=program)
    datasets = [DatasetFactory(instrument_program=ip) for _ in range(2)]
    InversionFactory(
        program=program,
        dataset_ids=list(dataset_ids) or [dataset.id for dataset in datasets],
        ended_at=program.state_since,
        end_reason="published",
    )
    return program, sorted(dataset.id for dataset in datasets)


def test_it_reprocesses_the_datasets_the_latest_published_inversion_used(tmp_path):
    older, _ = published()
    _, dataset_ids = published()
    followed = tmp_path / "reprocessed.json"
    call_command("demo_reprocess", reprocessed_file=followed, datasets=0)
    changes = json.loads(followed.read_text())
    assert sorted(changes) == dataset_ids
    assert all(change["updateDate"] > "2026" for change in changes.values())

    call_command("demo_reprocess", "--program", older.pk, reprocessed_file=followed)
    assert len(json.loads(followed.read_text())) == 3  # added to the earlier ones


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--program", "../etc"], "No such observing program: ../etc."),
        (["--published", "-1"], "0 or more"),
        ([], "No published program to reprocess"),
    ],
)
def test_odd_arguments_are_refused_with_a_reason(tmp_path, arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("demo_reprocess", *arguments, reprocessed_file=tmp_path / "reprocessed.json")


def test_a_file_that_is_not_json_is_named(tmp_path):
    published()
    followed = tmp_path / "reprocessed.json"
    followed.write_text("{")
    with pytest.raises(CommandError, match="is not JSON"):
        call_command("demo_reprocess", reprocessed_file=followed)


def test_the_next_scan_of_the_demo_store_marks_the_reprocessed_op_stale(tmp_path, settings):
    store = generate_store(seed=5, datasets=60, now=NOW)
    followed = tmp_path / "reprocessed.json"
    with DemoStoreServer(
        store=store, clock=lambda: NOW + timedelta(days=30), reprocessed_path=followed
    ) as server:
        settings.LEVEL2_METADATA_URL = server.url
        run_scan(trigger=Scan.Trigger.COMMAND)
        program = ObservingProgram.objects.filter(state=State.INVERTIBLE).order_by("id").first()
        event = walk_to(program.pk, State.PUBLISHED)
        InversionFactory(program=program, ended_at=event.created_at, end_reason="published")

        call_command("demo_reprocess", "--program", program.pk, reprocessed_file=followed)
        scan = run_scan(trigger=Scan.Trigger.COMMAND)

    program.refresh_from_db()
    assert scan.changed_count == 1 and program.is_stale
    (event,) = program.events.filter(details__has_key="stale")
    (change,) = event.details["stale"]["datasets"].values()
    assert change["update_date"]["new"] > "2026"
