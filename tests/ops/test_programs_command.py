"""``manage.py programs --json``: the operators' export (docs/programs-export.md)."""

import datetime as dt
import json
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ops import selectors
from ops.history import Actor, record_event
from ops.models import Dataset
from ops.qualification import qualify_programs
from ops.states import ActorKind, State
from tests.factories import DatasetFactory, InstrumentProgramFactory, program_in_state

pytestmark = pytest.mark.django_db

CREATED = dt.datetime(2025, 4, 2, 22, 24, tzinfo=dt.UTC)


def export(*args) -> list[dict]:
    out = StringIO()
    call_command("programs", "--json", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def op(state=State.DISCOVERED, *, ips=(("VISP", {}),), **fields):
    program = program_in_state(state, newest_dataset_created_at=CREATED, **fields)
    for instrument, dataset_fields in ips:
        ip = InstrumentProgramFactory(program=program, instrument=instrument)
        for _ in range(2):
            DatasetFactory(instrument_program=ip, create_date=CREATED, **dataset_fields)
    return program


@time_machine.travel(dt.datetime(2025, 7, 1, tzinfo=dt.UTC), tick=False)
def test_each_op_is_one_json_line_with_its_ips_verdicts():
    program = op(ips=[("VISP", {}), ("VISP", {"ao_locked": 1}), ("VBI", {})])
    qualify_programs()
    (row,) = export()
    assert row["program_id"] == program.pk
    assert row["proposal_id"] == program.proposal_id
    assert row["experiment_id"] == program.experiment_id
    assert row["state"] == "invertible"
    assert row["settles_at"] == "2025-04-09T22:24:00+00:00"
    assert row["invertible"] is True
    assert row["qualified_at"] == "2025-07-01T00:00:00+00:00"
    assert row["dataset_count"] == 6
    ips = {ip.instrument_program_id for ip in Dataset.objects.all()}
    assert [ip["id"] for ip in row["instrument_programs"]] == sorted(ips)
    summary = sorted(
        (ip["instrument"], ip["invertible"], ip["failed_rules"], len(ip["dataset_ids"]))
        for ip in row["instrument_programs"]
    )
    assert summary == [
        ("VBI", False, ["instrument"], 2),
        ("VISP", False, ["ao"], 2),
        ("VISP", True, [], 2),
    ]
    datasets = {ip["id"]: ip["dataset_ids"] for ip in row["instrument_programs"]}
    for ip_id, dataset_ids in datasets.items():
        expected = (
            Dataset.objects.filter(instrument_program_id=ip_id).order_by("pk").values_list("pk", flat=True)
        )
        assert dataset_ids == list(expected)


def test_ops_never_qualified_have_null_verdicts_and_no_failed_rules():
    op()
    (row,) = export()
    assert row["state"] == "discovered"
    assert (row["invertible"], row["qualified_at"]) == (None, None)
    assert [(ip["invertible"], ip["failed_rules"]) for ip in row["instrument_programs"]] == [(None, [])]


def test_the_export_reads_the_stored_report_not_the_current_datasets():
    with time_machine.travel(dt.datetime(2025, 7, 1, tzinfo=dt.UTC), tick=False):
        op()
        qualify_programs()
    Dataset.objects.update(stokes_parameters="I")  # not yet re-qualified
    (row,) = export()
    assert row["invertible"] is True
    assert row["instrument_programs"][0]["failed_rules"] == []
    # Later events without a report (the lead queues it) keep the report's verdict.
    record_event(program_id=row["program_id"], to_state=State.QUEUED, actor=Actor(ActorKind.INVERTER))
    (row,) = export()
    assert (row["state"], row["invertible"]) == ("queued", True)


def test_state_filter():
    discovered = op()
    queued = op(State.QUEUED)
    op(State.NOT_INVERTIBLE)
    assert [row["program_id"] for row in export("--state", "queued")] == [queued.pk]
    assert [row["program_id"] for row in export("--state", "discovered")] == [discovered.pk]
    assert export("--state", "published") == []
    assert len(export()) == 3


def test_an_unknown_state_is_refused():
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("programs", "--json", "--state", "nonsense", stdout=StringIO())


def test_plain_output_without_json():
    program = op()
    out = StringIO()
    call_command("programs", stdout=out)
    assert out.getvalue().splitlines() == [f"{program.pk}  discovered  not qualified"]


def test_the_export_streams_in_chunks_with_constant_queries():
    programs = sorted(op().pk for _ in range(7))

    def run(chunk_size):
        with CaptureQueriesContext(connection) as queries:
            rows = list(selectors.program_export(chunk_size=chunk_size))
        assert [row["program_id"] for row in rows] == programs
        return len(queries)

    # Four queries per chunk of OPs, plus the empty read that ends the stream.
    assert run(chunk_size=100) == 4 + 1
    assert run(chunk_size=3) == 3 * 4 + 1
