"""Qualification service: runs the pure rules of ops.qualify and records verdict events.

After each scan, the scan task and ``manage.py scan`` call ``qualify_programs(program_ids=…)``
with the OPs the scan found new or changed; the beat task and ``manage.py qualify`` call it
without ids for every OP that is due. An OP is qualified only once settled; an event is added
only when its verdict or its report changed.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import datetime
from itertools import batched
from typing import Any

from django.db import transaction
from django.utils import timezone

from ops import selectors
from ops.history import Actor, EventRequest, record_events
from ops.models import Dataset, ObservingProgram, ProgramEvent
from ops.qualify import DatasetValues, Thresholds, qualify_program, summarise
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
    for chunk in batched(ids, chunk_size):
        _qualify_chunk(program_ids=chunk, now=now, thresholds=thresholds, summary=summary)
    log.info("qualification: %s", summary)
    return summary


def _qualify_chunk(
    *, program_ids: Collection[str], now: datetime, thresholds: Thresholds, summary: QualificationSummary
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
        for program_id, state in settled.items():
            report = qualify_program(datasets.get(program_id, []), thresholds=thresholds)
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


def _datasets_by_program(*, program_ids: Collection[str]) -> dict[str, list[DatasetValues]]:
    """The rules' view of every listed (not vanished) dataset of these OPs, in one query."""
    rows = (
        Dataset.objects.filter(program_id__in=list(program_ids), vanished_at__isnull=True)
        .order_by("program_id", "id")
        .values(
            "id",
            "program_id",
            "instrument_program_id",
            "instrument_program__instrument",
            "start_time",
            "bounding_box",
            "stokes_parameters",
            "wavelength_min",
            "wavelength_max",
            "spectral_lines",
            "frame_count",
            "health_good",
            "gos_open",
            "ao_locked",
        )
    )
    datasets: dict[str, list[DatasetValues]] = {}
    for row in rows:
        datasets.setdefault(row["program_id"], []).append(
            DatasetValues(
                dataset_id=row["id"],
                instrument_program_id=row["instrument_program_id"],
                instrument=row["instrument_program__instrument"],
                start_time=row["start_time"],
                bounding_box=row["bounding_box"],
                stokes_parameters=row["stokes_parameters"],
                wavelength_min=row["wavelength_min"],
                wavelength_max=row["wavelength_max"],
                spectral_lines=row["spectral_lines"],
                frame_count=row["frame_count"],
                health_good=row["health_good"],
                gos_open=row["gos_open"],
                ao_locked=row["ao_locked"],
            )
        )
    return datasets
