"""The verdicts of new OPs recorded in their scan batch, from the records (ops.scan.qualifying)."""

import json
import logging
import random
from datetime import datetime

import pytest

import ops.scan.listing
from demo.store.generator import generate_store
from ops.models import ObservingProgram, ProgramEvent, Scan
from ops.qualification import Qualifier, qualify_after_scan, qualify_programs
from ops.scan import run_scan
from ops.states import ActorKind, State
from tests.factories import program_in_state
from tests.ops.metadata.store import dataset_record

pytestmark = pytest.mark.django_db

# Values a store may send that the rules and the score must read as the database gives them.
ODD_VALUES = [
    ("friedParameter", lambda value: json.dumps(value)),  # a block sent as a JSON string
    ("polarimetricAccuracy", lambda value: json.dumps({"med": 0.004, "min": 1e-05, "max": 1})),
    ("friedParameter", lambda value: {"med": 1e22, "p25": 2**70}),
    ("friedParameter", lambda value: {"med": "0.04"}),
    ("boundingBox", lambda value: "(nan,1),(2,3)"),
    ("boundingBox", lambda value: " ( -10 , +20 ) , ( 30.5,-40 ) "),
    ("boundingBox", lambda value: None),
    ("stokesParameters", lambda value: "quiv"),
    ("stokesParameters", lambda value: None),
    ("spectralLines", lambda value: []),
    ("spectralLines", lambda value: [" ", "Fe  I ( 630.25 nm )"]),
    ("spectralLines", lambda value: None),
    ("wavelengthMin", lambda value: None),
    ("wavelengthMax", lambda value: 1e300),
    ("frameCount", lambda value: 0),
    ("frameCount", lambda value: None),
    ("health", lambda value: {"GOOD": 3}),
    ("aoLocked", lambda value: None),
    ("startTime", lambda value: None),
    ("startTime", lambda value: "2025-03-27T22:03:42+02:00"),
    ("instrumentName", lambda value: "visp"),
]


def odd_store(*, datasets: int, seed: int) -> list[dict]:
    """A generated store with an odd value in one record of three."""
    rng = random.Random(seed)
    records = generate_store(seed=seed, datasets=datasets, now=datetime(2026, 1, 1)).datasets
    for record in records:
        if rng.random() < 1 / 3:
            key, odd = rng.choice(ODD_VALUES)
            record[key] = odd(record.get(key))
    return records


def scores():
    return dict(ObservingProgram.objects.values_list("id", "score_parts"))


def test_verdicts_from_the_records_are_those_the_database_gives(metadata_store, monkeypatch):
    # Several batches, each with new OPs; then the qualification that reads the database runs
    # on every OP the batches qualified: a report or a score of its own would be recorded.
    monkeypatch.setattr(ops.scan.listing, "BATCH_DATASETS", 100)
    metadata_store.add(*odd_store(datasets=600, seed=7))

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    qualified = scan.qualified_program_ids
    assert scan.status == Scan.Status.SUCCEEDED and len(qualified) == ObservingProgram.objects.count()
    assert scan.batch_qualification["considered"] == len(qualified)
    verdicts = ProgramEvent.objects.filter(actor_kind=ActorKind.QUALIFIER)
    assert verdicts.count() == len(qualified)
    assert {state for (state,) in verdicts.values_list("to_state")} == {
        State.INVERTIBLE,
        State.NOT_INVERTIBLE,
    }
    scored = scores()
    assert sum(parts is not None for parts in scored.values()) > 0

    summary = qualify_programs(program_ids=qualified)

    assert (summary.unchanged, summary.verdict_events, summary.information_events) == (len(qualified), 0, 0)
    assert scores() == scored


def test_the_qualification_after_the_scan_has_only_the_rest(metadata_store, caplog):
    metadata_store.add(dataset_record("AAAAA"))
    with caplog.at_level(logging.INFO, logger="ops.scan.service"):
        scan = run_scan(trigger=Scan.Trigger.COMMAND)
    assert "new OPs with their verdicts recorded in its batches: 1" in caplog.text

    summary = qualify_after_scan(scan=scan)

    assert (summary.considered, summary.verdict_events, summary.unchanged) == (1, 1, 0)
    assert ProgramEvent.objects.filter(actor_kind=ActorKind.QUALIFIER).count() == 1


def test_a_new_op_gets_its_discovered_event_then_its_verdict_each_by_its_actor(metadata_store):
    metadata_store.add(dataset_record("AAAAA"))

    run_scan(trigger=Scan.Trigger.COMMAND)

    program = ObservingProgram.objects.get()
    history = list(program.events.order_by("id"))
    assert [(e.from_state, e.actor_kind) for e in history] == [
        ("", ActorKind.SCANNER),
        (State.DISCOVERED, ActorKind.QUALIFIER),
    ]
    assert history[0].to_state == State.DISCOVERED and "report" in history[1].details
    assert (program.current_event_id, program.state, program.state_since) == (
        history[1].pk,
        history[1].to_state,
        history[1].created_at,
    )


def test_an_op_whose_ip_id_another_op_has_is_qualified_after_the_scan(metadata_store):
    metadata_store.add(dataset_record("AAAAA"))
    run_scan(trigger=Scan.Trigger.COMMAND)
    other = "eid_3_54_opOTHER_R001.1.2"
    # Its IP row stays the first OP's (VISP): the rules must read VISP, not the record's VBI.
    metadata_store.add(dataset_record("BBBBB", observingProgramExecutionId=other, instrumentName="VBI"))

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert other in scan.changed_program_ids and other not in scan.qualified_program_ids
    assert ObservingProgram.objects.get(pk=other).state == State.DISCOVERED
    qualify_after_scan(scan=scan)
    verdict = ProgramEvent.objects.filter(program_id=other, actor_kind=ActorKind.QUALIFIER).get()
    assert verdict.details["report"]["instrument_programs"][0]["instrument"] == "VISP"


def test_a_new_op_that_has_not_settled_gets_no_verdict(metadata_store, settings):
    settings.LEVEL2_SETTLE_DAYS = 100_000
    metadata_store.add(dataset_record("AAAAA"))

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert scan.qualified_program_ids == frozenset() and scan.batch_qualification["considered"] == 0
    assert qualify_after_scan(scan=scan).not_settled == 1
    assert ObservingProgram.objects.get().state == State.DISCOVERED


def test_an_archived_op_that_gets_its_first_datasets_gets_no_verdict(metadata_store):
    program = program_in_state(State.ARCHIVED)
    metadata_store.add(dataset_record("AAAAA", observingProgramExecutionId=program.pk))

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert program.pk in scan.changed_program_ids and not scan.qualified_program_ids
    assert qualify_after_scan(scan=scan).not_qualifiable == 1
    assert not ProgramEvent.objects.filter(program=program, actor_kind=ActorKind.QUALIFIER).exists()


def test_rules_that_fail_in_the_batch_are_run_again_after_the_scan(metadata_store, monkeypatch, caplog):
    metadata_store.add(dataset_record("AAAAA"))
    rules = Qualifier.rules

    def failing(self, program):
        raise ValueError("a rule met a value it cannot read")

    monkeypatch.setattr(Qualifier, "rules", failing)
    scan = run_scan(trigger=Scan.Trigger.COMMAND)
    monkeypatch.setattr(Qualifier, "rules", rules)

    assert scan.status == Scan.Status.SUCCEEDED and not scan.qualified_program_ids
    assert "qualifying" in caplog.text and "cannot read" in caplog.text
    assert qualify_after_scan(scan=scan).verdict_events == 1


@pytest.mark.parametrize("seed", [11, 12])
def test_a_rescan_qualifies_in_its_batches_only_the_ops_it_finds_new(metadata_store, seed):
    records = odd_store(datasets=100, seed=seed)
    metadata_store.add(*records[:60])
    first = run_scan(trigger=Scan.Trigger.COMMAND)
    metadata_store.records[records[0]["datasetId"]]["updateDate"] = "2026-02-01T00:00:00"
    metadata_store.add(*records[60:])

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    new = {record["observingProgramExecutionId"] for record in records[60:]} - set(first.changed_program_ids)
    assert scan.qualified_program_ids == new
    assert records[0]["observingProgramExecutionId"] not in scan.qualified_program_ids
