"""The qualification service: verdict events, settling, re-qualification, no duplicates."""

import datetime as dt
import json
import re
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

import ops.qualification
from ops.models import Dataset, ObservingProgram, ProgramEvent
from ops.qualification import qualify_programs
from ops.states import ActorKind, State
from ops.tasks import qualify_settled_programs
from tests.factories import (
    DatasetFactory,
    ExperimentFactory,
    InstrumentProgramFactory,
    ProposalFactory,
    events_of,
    program_in_state,
)

pytestmark = pytest.mark.django_db

CREATED = dt.datetime(2025, 4, 2, 22, 24, tzinfo=dt.UTC)
SETTLED = CREATED + dt.timedelta(days=7)
LATER = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
# ../shared beside the project root, when this checkout has it.
SAMPLE = (
    Path(__file__).resolve().parents[3] / "shared" / "metadata-store" / "dataset_inventories_pid_3_54.json"
)


def op_with_datasets(state=State.DISCOVERED, *, ips=(("VISP", {}),), created=CREATED):
    """An OP in ``state`` with one IP per (instrument, dataset fields) and three datasets each."""
    program = program_in_state(state, newest_dataset_created_at=created)
    for instrument, fields in ips:
        ip = InstrumentProgramFactory(program=program, instrument=instrument)
        for _ in range(3):
            DatasetFactory(instrument_program=ip, create_date=created, **fields)
    return program


def qualifier_events(program):
    return [event for event in events_of(program) if event.actor_kind == ActorKind.QUALIFIER]


@time_machine.travel(LATER, tick=False)
def test_a_settled_discovered_op_becomes_invertible_with_its_report():
    program = op_with_datasets()
    summary = qualify_programs(program_ids=[program.pk])
    program.refresh_from_db()
    assert program.state == State.INVERTIBLE
    event = program.current_event
    assert (event.from_state, event.actor_kind) == ("discovered", "qualifier")
    report = event.details["report"]
    assert report["invertible"] is True
    (ip,) = report["instrument_programs"]
    assert len(ip["dataset_ids"]) == 3
    assert {rule["name"] for rule in ip["rules"]} == {
        "instrument",
        "on_disk",
        "stokes",
        "health",
        "gos",
        "ao",
        "fe_i_630",
    }
    assert event.details["summary"] == "invertible: 1 of 1 instrument programs pass every rule"
    assert (summary.considered, summary.verdict_events, summary.invertible) == (1, 1, 1)


@time_machine.travel(LATER, tick=False)
def test_running_twice_adds_nothing():
    program = op_with_datasets()
    qualify_programs(program_ids=[program.pk])
    before = events_of(program)
    summary = qualify_programs(program_ids=[program.pk])
    assert events_of(program) == before
    assert (summary.unchanged, summary.verdict_events, summary.information_events) == (1, 0, 0)
    assert qualify_programs().considered == 0  # nothing is due either


def row_versions(programs):
    """Each OP row's xmin: a write to the row (a score, say) changes it, a row lock does not."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, xmin::text FROM ops_observingprogram WHERE id = ANY(%s)", [[p.pk for p in programs]]
        )
        return dict(cursor.fetchall())


@time_machine.travel(LATER, tick=False)
def test_an_unchanged_verdict_writes_nothing():
    programs = [
        op_with_datasets(ips=[("VISP", {"fried_parameter": {"med": 0.09}})]),
        op_with_datasets(ips=[("VISP", {"ao_locked": 10})]),
        op_with_datasets(State.WORKING),
    ]
    qualify_programs(program_ids=[program.pk for program in programs])
    events, versions = ProgramEvent.objects.count(), row_versions(programs)

    with CaptureQueriesContext(connection) as queries:
        summary = qualify_programs(program_ids=[program.pk for program in programs])

    assert (summary.unchanged, summary.verdict_events, summary.information_events) == (3, 0, 0)
    assert ProgramEvent.objects.count() == events
    assert row_versions(programs) == versions
    assert not [query for query in queries if query["sql"].startswith("INSERT")]


@time_machine.travel(LATER, tick=False)
def test_one_good_and_one_bad_visp_ip_make_an_invertible_op():
    program = op_with_datasets(ips=[("VISP", {}), ("VISP", {"ao_locked": 10})])
    qualify_programs(program_ids=[program.pk])
    program.refresh_from_db()
    assert program.state == State.INVERTIBLE
    verdicts = sorted(
        (ip["invertible"], ip["failed_rules"])
        for ip in program.current_event.details["report"]["instrument_programs"]
    )
    assert verdicts == [(False, ["ao"]), (True, [])]


@time_machine.travel(LATER, tick=False)
def test_a_vbi_only_op_is_not_invertible():
    program = op_with_datasets(ips=[("VBI", {"stokes_parameters": "I"})])
    summary = qualify_programs(program_ids=[program.pk])
    program.refresh_from_db()
    assert program.state == State.NOT_INVERTIBLE
    (ip,) = program.current_event.details["report"]["instrument_programs"]
    assert (ip["instrument"], ip["failed_rules"]) == ("VBI", ["instrument"])
    assert summary.not_invertible == 1


def test_an_op_stays_discovered_until_it_settles_then_the_beat_qualifies_it():
    program = op_with_datasets()
    with time_machine.travel(SETTLED - dt.timedelta(minutes=1), tick=False):
        summary = qualify_programs(program_ids=[program.pk])
        assert (summary.considered, summary.not_settled) == (1, 1)
        assert qualify_programs().considered == 0
        program.refresh_from_db()
        assert program.state == State.DISCOVERED
    with time_machine.travel(SETTLED, tick=False):
        summary = qualify_settled_programs()
        assert summary.pop("rules_s") >= 0 and summary.pop("recording_s") > 0
        assert summary == {
            "considered": 1,
            "not_settled": 0,
            "not_qualifiable": 0,
            "unchanged": 0,
            "verdict_events": 1,
            "information_events": 0,
            "invertible": 1,
            "not_invertible": 0,
        }
    program.refresh_from_db()
    assert program.state == State.INVERTIBLE


def test_settle_days_come_from_settings(settings):
    settings.LEVEL2_SETTLE_DAYS = 30
    program = op_with_datasets()
    with time_machine.travel(SETTLED, tick=False):
        assert qualify_programs(program_ids=[program.pk]).not_settled == 1
    with time_machine.travel(CREATED + dt.timedelta(days=30), tick=False):
        assert qualify_programs().verdict_events == 1


def test_a_dataset_that_arrives_later_requalifies_the_op_once_it_settles():
    program = op_with_datasets()
    with time_machine.travel(LATER, tick=False):
        qualify_programs()
    # A bad dataset arrives on 1 August; the scan moves the OP's newest createDate.
    arrived = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)
    ip = program.instrument_programs.get()
    DatasetFactory(instrument_program=ip, create_date=arrived, stokes_parameters="I")
    program.newest_dataset_created_at = arrived
    program.save()
    with time_machine.travel(arrived + dt.timedelta(hours=1), tick=False):
        assert qualify_programs(program_ids=[program.pk]).not_settled == 1
        assert qualify_programs().considered == 0
    with time_machine.travel(arrived + dt.timedelta(days=7), tick=False):
        summary = qualify_programs()
        assert (summary.considered, summary.verdict_events) == (1, 1)
        assert qualify_programs().considered == 0
    program.refresh_from_db()
    assert program.state == State.NOT_INVERTIBLE
    assert [event.to_state for event in qualifier_events(program)] == ["invertible", "not_invertible"]


@time_machine.travel(LATER, tick=False)
def test_requalification_after_a_changed_dataset_adds_one_event_and_keeps_the_old_one():
    program = op_with_datasets()
    qualify_programs(program_ids=[program.pk])
    first = program.events.get(to_state=State.INVERTIBLE)
    Dataset.objects.filter(program=program).update(ao_locked=100)
    qualify_programs(program_ids=[program.pk])
    old, new = qualifier_events(program)
    assert old == first and old.details == first.details
    assert (new.from_state, new.to_state) == ("invertible", "not_invertible")
    assert old.details["report"]["invertible"] is True
    assert new.details["report"]["instrument_programs"][0]["failed_rules"] == ["ao"]
    assert new.details["previous_invertible"] is True
    # Fixed again: back to invertible, three verdicts in the history.
    Dataset.objects.filter(program=program).update(ao_locked=444)
    qualify_programs(program_ids=[program.pk])
    assert [e.to_state for e in qualifier_events(program)] == ["invertible", "not_invertible", "invertible"]


@time_machine.travel(LATER, tick=False)
def test_a_changed_report_with_the_same_verdict_is_an_information_event():
    program = op_with_datasets(ips=[("VISP", {}), ("VISP", {})])
    qualify_programs(program_ids=[program.pk])
    Dataset.objects.filter(pk=program.datasets.order_by("pk").first().pk).update(health_good=0)
    summary = qualify_programs(program_ids=[program.pk])
    assert (summary.information_events, summary.verdict_events) == (1, 0)
    event = qualifier_events(program)[-1]
    assert (event.from_state, event.to_state, event.is_information) == ("invertible", "invertible", True)
    assert sorted(ip["invertible"] for ip in event.details["report"]["instrument_programs"]) == [False, True]
    assert qualify_programs(program_ids=[program.pk]).unchanged == 1


@time_machine.travel(LATER, tick=False)
def test_vanished_datasets_leave_the_report():
    program = op_with_datasets()
    qualify_programs(program_ids=[program.pk])
    gone = program.datasets.order_by("pk").first()
    Dataset.objects.filter(pk=gone.pk).update(vanished_at=LATER)
    qualify_programs(program_ids=[program.pk])
    event = qualifier_events(program)[-1]
    assert event.is_information
    assert gone.pk not in event.details["report"]["instrument_programs"][0]["dataset_ids"]


@time_machine.travel(LATER, tick=False)
def test_a_changed_report_after_work_started_adds_information_and_keeps_the_state():
    program = op_with_datasets(State.QUEUED)
    qualify_programs(program_ids=[program.pk])
    Dataset.objects.filter(program=program).update(stokes_parameters="I")
    summary = qualify_programs(program_ids=[program.pk])
    program.refresh_from_db()
    assert program.state == State.QUEUED
    event = program.current_event
    assert (event.from_state, event.to_state, event.actor_kind) == ("queued", "queued", "qualifier")
    assert event.details["report"]["invertible"] is False
    assert "work is under way" in event.details["note"]
    assert summary.information_events == 1
    assert qualify_programs(program_ids=[program.pk]).unchanged == 1


@time_machine.travel(LATER, tick=False)
def test_archived_ops_are_left_alone():
    program = op_with_datasets(State.ARCHIVED)
    summary = qualify_programs(program_ids=[program.pk])
    assert (summary.not_qualifiable, qualifier_events(program)) == (1, [])
    assert qualify_programs().considered == 0


@time_machine.travel(LATER, tick=False)
def test_queries_do_not_grow_with_the_number_of_ops():
    def queries_for(count):
        programs = [op_with_datasets(ips=[("VISP", {}), ("VBI", {})]) for _ in range(count)]
        with CaptureQueriesContext(connection) as queries:
            summary = qualify_programs(program_ids=[program.pk for program in programs])
        assert summary.verdict_events == count
        return len(queries)

    assert queries_for(2) == queries_for(9)


@time_machine.travel(LATER, tick=False)
def test_chunks_cover_every_op():
    programs = [op_with_datasets() for _ in range(5)]
    summary = qualify_programs(chunk_size=2)
    assert (summary.considered, summary.verdict_events) == (5, 5)
    assert {p.pk for p in programs} == set(
        ProgramEvent.objects.filter(to_state=State.INVERTIBLE).values_list("program_id", flat=True)
    )


@time_machine.travel(LATER, tick=False)
def test_qualify_command_prints_the_summary():
    op_with_datasets()
    op_with_datasets(ips=[("VBI", {})])
    out = StringIO()
    call_command("qualify", stdout=out)
    assert "considered: 2" in out.getvalue()
    assert "invertible: 1" in out.getvalue()
    assert "not invertible: 1" in out.getvalue()
    assert re.search(r"^recording: \d+\.\d s$", out.getvalue(), re.MULTILINE)


def _load_sample(records):
    """The sample's records as Dataset rows (the fields the rules read)."""
    proposal = ProposalFactory(id=records[0]["primaryProposalId"])
    experiment = ExperimentFactory(id=records[0]["primaryExperimentId"])
    programs, ips = {}, {}
    for record in records:
        program_id = record["observingProgramExecutionId"]
        created = dt.datetime.fromisoformat(record["createDate"]).replace(tzinfo=dt.UTC)
        if program_id not in programs:
            programs[program_id] = program_in_state(
                State.DISCOVERED, id=program_id, proposal=proposal, experiment=experiment
            )
        program = programs[program_id]
        program.newest_dataset_created_at = max(program.newest_dataset_created_at, created)
        program.save()
        ip_id = record["instrumentProgramExecutionId"]
        if ip_id not in ips:
            ips[ip_id] = InstrumentProgramFactory(
                id=ip_id, program=program, instrument=record["instrumentName"]
            )
        DatasetFactory(
            id=record["datasetId"],
            instrument_program=ips[ip_id],
            create_date=created,
            start_time=dt.datetime.fromisoformat(record["startTime"]).replace(tzinfo=dt.UTC),
            bounding_box=record["boundingBox"],
            stokes_parameters=record["stokesParameters"],
            wavelength_min=record["wavelengthMin"],
            wavelength_max=record["wavelengthMax"],
            spectral_lines=record.get("spectralLines"),
            frame_count=record["frameCount"] or 0,
            health_good=(record["health"] or {}).get("good") or 0,
            gos_open=(record["gosStatus"] or {}).get("open") or 0,
            ao_locked=record["aoLocked"] or 0,
        )
    return programs, ips


@pytest.mark.skipif(not SAMPLE.exists(), reason="the shared metadata-store sample is not here")
@time_machine.travel(dt.datetime(2025, 10, 1, tzinfo=dt.UTC), tick=False)
def test_verdicts_on_the_pid_3_54_sample():
    records = json.loads(SAMPLE.read_text())["data"]["datasetInventories"]
    programs, ips = _load_sample(records)
    summary = qualify_programs()
    print(f"\npid_3_54: {summary}")
    reported_ips = set()
    for program in sorted(programs.values(), key=lambda program: program.pk):
        program.refresh_from_db()
        report = program.current_event.details["report"]
        print(f"{program.pk}: {program.state} ({program.current_event.details['summary']})")
        for ip in report["instrument_programs"]:
            reported_ips.add(ip["id"])
            failed = ", ".join(ip["failed_rules"]) or "none"
            print(f"  {ip['id']} {ip['instrument']} datasets={len(ip['dataset_ids'])} failed: {failed}")
            (iron,) = [rule for rule in ip["rules"] if rule["name"] == "fe_i_630"]
            print(f"    {iron['message']}")
            # The sample names its lines: Fe I is found by name, in the 630 nm arm's dataset.
            assert iron["passed"] and "Fe I (630.15 nm)" in iron["message"]
            assert all(
                rule["measured"] < rule["threshold"] for rule in ip["rules"] if rule["name"] == "on_disk"
            )
        assert program.state == (State.INVERTIBLE if report["invertible"] else State.NOT_INVERTIBLE)
    assert summary.considered == len(programs) == summary.verdict_events
    assert reported_ips == set(ips)
    assert sum(len(ip.datasets.all()) for ip in ips.values()) == len(records)


@time_machine.travel(LATER, tick=False)
def test_the_qualification_scores_invertible_ops_and_clears_the_score_when_none_is_left():
    program = op_with_datasets(
        ips=(("VISP", {"fried_parameter": {"med": 0.09}}), ("VISP", {"stokes_parameters": "I"}))
    )
    qualify_programs(program_ids=[program.pk])
    program.refresh_from_db()
    invertible_ip = program.instrument_programs.filter(datasets__stokes_parameters="IQUV").distinct().get().pk
    assert program.score_parts["instrument_program_id"] == invertible_ip
    assert set(program.score_parts["parts"]) == {"ao", "health", "r0", "on_disk_margin"}
    assert 0 < program.score < 100

    Dataset.objects.filter(program=program).update(stokes_parameters="I")
    qualify_programs(program_ids=[program.pk])
    program.refresh_from_db()
    assert (program.score, program.score_parts) == (None, None)


@time_machine.travel(LATER, tick=False)
def test_an_op_that_becomes_due_after_its_chunk_was_read_is_qualified_under_the_lock(monkeypatch):
    # The datasets of a chunk are read before its OPs are locked (the rules of one chunk run
    # while the one before is written); the states are read again under the lock.
    program = op_with_datasets()
    read = ops.qualification.Qualifier.read

    def read_while_not_yet_settled(self, program_ids):
        ObservingProgram.objects.filter(pk=program.pk).update(newest_dataset_created_at=LATER)
        chunk = read(self, program_ids)
        ObservingProgram.objects.filter(pk=program.pk).update(newest_dataset_created_at=CREATED)
        return chunk

    monkeypatch.setattr(ops.qualification.Qualifier, "read", read_while_not_yet_settled)

    summary = qualify_programs(program_ids=[program.pk])

    assert (summary.considered, summary.verdict_events, summary.invertible) == (1, 1, 1)
    (ip,) = qualifier_events(program)[0].details["report"]["instrument_programs"]
    assert len(ip["dataset_ids"]) == 3


@time_machine.travel(LATER, tick=False)
def test_the_qualification_runs_with_fewer_garbage_collections(monkeypatch):
    import gc

    from ops.pipeline import BULK_GC_THRESHOLD

    program = op_with_datasets()
    thresholds_while_recording = []
    record_events = ops.qualification.record_events

    def recording(**kwargs):
        thresholds_while_recording.append(gc.get_threshold()[0])
        return record_events(**kwargs)

    monkeypatch.setattr(ops.qualification, "record_events", recording)
    before = gc.get_threshold()

    qualify_programs(program_ids=[program.pk])

    assert thresholds_while_recording == [BULK_GC_THRESHOLD]
    assert gc.get_threshold() == before
