"""Qualification service: runs the pure rules of ops.qualify and records verdict events.

After each scan, the scan task and ``manage.py scan`` call ``qualify_programs(program_ids=…)``
with the OPs the scan found new or changed; the beat task and ``manage.py qualify`` call it
without ids for every OP that is due. An OP is qualified only once settled; an event is added
only when its verdict or its report changed.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from itertools import batched
from typing import Any

from django.db import transaction
from django.utils import timezone

from ops import selectors
from ops.history import Actor, EventRequest, record_events
from ops.models import Dataset, ObservingProgram, ProgramEvent
from ops.qualify import DatasetValues, Thresholds, qualify_program, summarise
from ops.scoring import Term, program_score, terms_from_settings
from ops.states import WORK_STARTED_STATES, ActorKind, State

log = logging.getLogger(__name__)

VERDICT_STATES = frozenset({State.DISCOVERED, State.INVERTIBLE, State.NOT_INVERTIBLE})
# Archived OPs are out of the flow: staff bring them back first.
QUALIFIABLE_STATES = VERDICT_STATES | WORK_STARTED_STATES
# OPs per transaction: their rows stay locked while their reports are computed and recorded.
CHUNK_SIZE = 500


@dataclass
class QualificationSummary:
    considered: int = 0
    not_settled: int = 0
    not_qualifiable: int = 0
    unchanged: int = 0
    verdict_events: int = 0
    information_events: int = 0
    invertible: int = 0
    not_invertible: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def __str__(self) -> str:
        return ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in asdict(self).items())


def qualify_programs(
    *,
    program_ids: Collection[str] | None = None,
    now: datetime | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> QualificationSummary:
    """Qualify the given OPs, or (None) every OP that is due: settled and not qualified since.

    ``considered`` counts the OPs looked at; of them, ``not_settled`` wait for their settle
    date, ``not_qualifiable`` are archived or have no state, and the rest got a report:
    ``unchanged`` (no event), a ``verdict_events`` or an ``information_events`` event.
    ``invertible`` / ``not_invertible`` count the verdicts of the events recorded.
    """
    now = now or timezone.now()
    if program_ids is None:
        ids = list(selectors.programs_due_for_qualification(now=now, states=QUALIFIABLE_STATES))
    else:
        ids = sorted(set(program_ids))
    summary = QualificationSummary()
    thresholds = Thresholds.from_settings()
    terms = terms_from_settings()
    for chunk in batched(ids, chunk_size):
        _qualify_chunk(program_ids=chunk, now=now, thresholds=thresholds, terms=terms, summary=summary)
    log.info("qualification: %s", summary)
    return summary


def _qualify_chunk(
    *,
    program_ids: Collection[str],
    now: datetime,
    thresholds: Thresholds,
    terms: dict[str, Term],
    summary: QualificationSummary,
) -> None:
    with transaction.atomic():
        # Lock first, then read the states: nobody moves these OPs until the events are in,
        # so two qualifications at once cannot both record the same new report.
        programs = list(
            ObservingProgram.objects.select_for_update().filter(pk__in=program_ids).order_by("pk")
        )
        current_events = ProgramEvent.objects.only("to_state").in_bulk(
            [program.current_event_id for program in programs if program.current_event_id]
        )
        summary.considered += len(programs)
        settled: dict[str, State] = {}
        by_id = {program.pk: program for program in programs}
        for program in programs:
            current = current_events.get(program.current_event_id)
            if current is None or current.to_state not in QUALIFIABLE_STATES:
                summary.not_qualifiable += 1
            elif (settles_at := program.settles_at()) is None or settles_at > now:
                summary.not_settled += 1
            else:
                settled[program.pk] = State(current.to_state)
        if not settled:
            return
        datasets = _datasets_by_program(program_ids=settled.keys())
        previous_reports = selectors.latest_reports(program_ids=settled.keys())
        requests = []
        rescored = []
        for program_id, state in settled.items():
            report = qualify_program(datasets.get(program_id, []), thresholds=thresholds)
            score = program_score(report=report, datasets=datasets.get(program_id, []), terms=terms)
            program = by_id[program_id]
            if program.score_parts != score:
                program.score, program.score_parts = (score["score"] if score else None), score
                rescored.append(program)
            request = _event_request(
                program_id=program_id, state=state, report=report, previous=previous_reports.get(program_id)
            )
            if request is None:
                summary.unchanged += 1
                continue
            requests.append(request)
            if request.to_state == state:
                summary.information_events += 1
            else:
                summary.verdict_events += 1
            if report["invertible"]:
                summary.invertible += 1
            else:
                summary.not_invertible += 1
        ObservingProgram.objects.bulk_update(rescored, ["score", "score_parts"])
        record_events(requests=requests, actor=Actor(ActorKind.QUALIFIER))


def _event_request(
    *, program_id: str, state: State, report: dict[str, Any], previous: dict[str, Any] | None
) -> EventRequest | None:
    """The event that the new report calls for, or None when nothing changed."""
    verdict = State.INVERTIBLE if report["invertible"] else State.NOT_INVERTIBLE
    details: dict[str, Any] = {
        "report": report,
        "summary": summarise(report),
        "previous_invertible": previous["invertible"] if previous else None,
    }
    if state in VERDICT_STATES and verdict != state:
        return EventRequest(program_id, verdict, details, expected_state=state)
    if report == previous:
        return None
    if state in WORK_STARTED_STATES:
        details["note"] = f"datasets changed while work is under way: the program stays {state.label}"
    else:
        details["note"] = "datasets changed: the verdict is the same, the report is new"
    return EventRequest(program_id, state, details, expected_state=state)


# DatasetValues' fields, each with the Dataset column it reads (named alike but for two).
_DATASET_VALUE_COLUMNS = {
    field.name: {"dataset_id": "id", "instrument": "instrument_program__instrument"}.get(
        field.name, field.name
    )
    for field in fields(DatasetValues)
}


def _datasets_by_program(*, program_ids: Collection[str]) -> dict[str, list[DatasetValues]]:
    """The rules' view of every listed (not vanished) dataset of these OPs, in one query."""
    rows = (
        Dataset.objects.filter(program_id__in=list(program_ids), vanished_at__isnull=True)
        .order_by("program_id", "id")
        .values_list("program_id", *_DATASET_VALUE_COLUMNS.values())
    )
    datasets: dict[str, list[DatasetValues]] = {}
    for program_id, *values in rows:
        datasets.setdefault(program_id, []).append(
            DatasetValues(**dict(zip(_DATASET_VALUE_COLUMNS, values, strict=True)))
        )
    return datasets
