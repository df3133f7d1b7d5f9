"""Qualification service: runs the pure rules of ops.qualify and records verdict events.

A scan records the verdicts of the OPs new in each batch itself (``ops.scan.qualifying``, with
this module's ``Qualifier``); after it, the scan task and ``manage.py scan`` call
``qualify_after_scan``, which hands the other OPs the scan found new or changed to
``qualify_programs(program_ids=…)``; the beat task and ``manage.py qualify`` call that without
ids for every OP that is due. An OP is qualified only once settled; an event is added
only when its verdict or its report changed, and its score is written only when it changed.

Set-wise, a chunk of OPs at a time, so memory stays flat however many OPs there are: one
statement reads the datasets of the chunk's due OPs, and the rules run on them in a thread
while the chunk before is written. Then, in one transaction: one statement locks the chunk's
OPs and reads their states, one reads the previous reports of those already qualified,
``ops.history.record_events`` writes the chunk's events at once, and one statement the scores
that changed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from itertools import batched
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from ops import selectors
from ops.history import Actor, EventRequest, record_events
from ops.models import Dataset, InstrumentProgram, ObservingProgram, Scan
from ops.pipeline import bulk_work, one_ahead
from ops.qualify import DatasetValues, Thresholds, qualify_program, summarise
from ops.scoring import Term, program_score, terms_from_settings
from ops.states import WORK_STARTED_STATES, ActorKind, State

log = logging.getLogger(__name__)

VERDICT_STATES = frozenset({State.DISCOVERED, State.INVERTIBLE, State.NOT_INVERTIBLE})
# Archived OPs are out of the flow: staff bring them back first.
QUALIFIABLE_STATES = VERDICT_STATES | WORK_STARTED_STATES
# OPs per transaction: their rows stay locked while their reports are computed and recorded,
# and their datasets and reports are what the qualification holds in memory at a time.
CHUNK_SIZE = 1000

QUALIFIER = Actor(ActorKind.QUALIFIER)


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
    # Seconds spent on the rules (in a thread, beside the writes) and on recording.
    rules_s: float = 0.0
    recording_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def __add__(self, other: QualificationSummary) -> QualificationSummary:
        return QualificationSummary(
            **{name: value + getattr(other, name) for name, value in asdict(self).items()}
        )

    def labelled(self) -> list[tuple[str, str]]:
        """Each count and time as a label and its text: ("not settled", "3"), ("rules", "1.2 s")."""
        return [
            (name.removesuffix("_s"), f"{value:.1f} s")
            if isinstance(value, float)
            else (name.replace("_", " "), str(value))
            for name, value in asdict(self).items()
        ]

    def __str__(self) -> str:
        return ", ".join(f"{label} {text}" for label, text in self.labelled())


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
    ids: Iterable[str]
    if program_ids is None:
        ids = selectors.programs_due_for_qualification(now=now, states=QUALIFIABLE_STATES)
    else:
        ids = sorted(set(program_ids))
    summary = QualificationSummary()
    qualifier = Qualifier(now=now, summary=summary)
    # The rules of the next chunk run in a thread while this chunk's events are written: the
    # rules are Python, the writes mostly PostgreSQL's work.
    with bulk_work(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="qualification") as pool:
        for computed in one_ahead(pool, qualifier.compute, map(qualifier.read, batched(ids, chunk_size))):
            qualifier.record(computed)
    log.info("qualification: %s", summary)
    return summary


# What the rules give for one OP: its report, and its score (None unless invertible).
type Result = tuple[dict[str, Any], dict[str, Any] | None]


def qualify_after_scan(*, scan: Scan) -> QualificationSummary:
    """The qualification that follows a scan: the OPs it found new or changed that its batches
    did not qualify (``ops.scan.qualifying``); the summary of both."""
    left = set(scan.changed_program_ids) - scan.qualified_program_ids
    return QualificationSummary(**(scan.batch_qualification or {})) + qualify_programs(program_ids=left)


@dataclass
class ProgramDatasets:
    """An OP's datasets as the rules read them. Read from the database, the JSON blocks that
    only the score reads (``_SCORE_BLOCKS``) stay text, by dataset id, until an IP proves
    invertible: most do not, and decoding every dataset's blocks cost more than the rest of
    reading them. Datasets made from parsed records carry their blocks and have no text."""

    datasets: list[DatasetValues] = field(default_factory=list)
    score_blocks: dict[str, list[str | None]] = field(default_factory=dict)

    def for_score(self, report: dict[str, Any]) -> list[DatasetValues]:
        """The datasets, those of the report's invertible IPs with their blocks decoded."""
        invertible = {ip["id"] for ip in report["instrument_programs"] if ip["invertible"]}
        return [
            replace(
                dataset,
                **{
                    name: None if text is None else json.loads(text)
                    for name, text in zip(_SCORE_BLOCKS, self.score_blocks[dataset.dataset_id], strict=True)
                },
            )
            if dataset.instrument_program_id in invertible and dataset.dataset_id in self.score_blocks
            else dataset
            for dataset in self.datasets
        ]


@dataclass
class _Chunk:
    """A chunk's OPs and the datasets of those due when they were read (unlocked); then the
    reports and scores of the rules."""

    program_ids: tuple[str, ...]
    datasets: dict[str, ProgramDatasets]
    results: dict[str, Result] = field(default_factory=dict)


class Qualifier:
    """One run of the rules and of the recording of their verdicts (the thresholds, the score
    terms and the time read once); used by ``qualify_programs`` and by the scan's batches."""

    def __init__(self, *, now: datetime, summary: QualificationSummary):
        self.now = now
        self.summary = summary
        self.thresholds = Thresholds.from_settings()
        self.terms: dict[str, Term] = terms_from_settings()
        self.settle = timedelta(days=settings.LEVEL2_SETTLE_DAYS)

    def is_settled(self, newest_created_at: datetime | None) -> bool:
        """Whether an OP whose newest dataset was created then has settled by now."""
        return newest_created_at is not None and newest_created_at + self.settle <= self.now

    def read(self, program_ids: tuple[str, ...]) -> _Chunk:
        """The datasets of the chunk's OPs that are due now, before they are locked: what
        changes meanwhile is seen again under the lock (``record``)."""
        datasets = _datasets_by_program(
            program_ids=program_ids, states=QUALIFIABLE_STATES, settled_before=self.now - self.settle
        )
        return _Chunk(program_ids, datasets)

    def compute(self, chunk: _Chunk) -> _Chunk:
        """The rules and the score of each OP read (pure: runs in the pipeline's thread)."""
        started = time.perf_counter()
        for program_id, datasets in chunk.datasets.items():
            chunk.results[program_id] = self.rules(datasets)
        chunk.datasets = {}
        self.summary.rules_s += time.perf_counter() - started
        return chunk

    def rules(self, program: ProgramDatasets) -> Result:
        report = qualify_program(program.datasets, thresholds=self.thresholds)
        return report, program_score(report=report, datasets=program.for_score(report), terms=self.terms)

    def record(self, chunk: _Chunk) -> None:
        """The chunk's events and scores, under the OPs' locks, in one transaction."""
        started = time.perf_counter()
        try:
            self._record(chunk)
        finally:
            self.summary.recording_s += time.perf_counter() - started

    def _record(self, chunk: _Chunk) -> None:
        with transaction.atomic():
            # Lock first, then read the states: nobody moves these OPs until the events are
            # in, so two qualifications at once cannot both record the same new report.
            settled = self._lock_settled(chunk.program_ids)
            if not settled:
                return
            # An OP that became due after the chunk was read (rare: its state or datasets
            # moved meanwhile) is read and run here.
            unread = [program_id for program_id in settled if program_id not in chunk.results]
            if unread:
                datasets = _datasets_by_program(program_ids=unread)
                for program_id in unread:
                    chunk.results[program_id] = self.rules(datasets.get(program_id, ProgramDatasets()))
            self.record_results(settled=settled, results=chunk.results)

    def record_results(self, *, settled: dict[str, State], results: dict[str, Result]) -> None:
        """The events and scores that the rules' results call for, for these OPs (locked by
        the caller, in its transaction, in id order, each with its state)."""
        record_events(requests=self.record_scores(settled=settled, results=results), actor=QUALIFIER)

    def record_scores(self, *, settled: dict[str, State], results: dict[str, Result]) -> list[EventRequest]:
        """Write the scores that the rules' results change, for these OPs (as for
        ``record_results``), and count them in the summary; the events the results call for,
        for the caller to record in the same transaction (a scan batch records them after its
        own, in one call)."""
        # An OP still discovered was never qualified: only the others have a report.
        earlier = [program_id for program_id, state in settled.items() if state != State.DISCOVERED]
        previous_reports = selectors.latest_reports(program_ids=earlier) if earlier else {}
        requests = []
        scores: list[dict[str, Any]] = []
        for program_id, state in settled.items():
            report, score = results[program_id]
            scores.append({"id": program_id, "score": score["score"] if score else None, "parts": score})
            request = _event_request(
                program_id=program_id,
                state=state,
                report=report,
                previous=previous_reports.get(program_id),
            )
            if request is not None:
                requests.append(request)
            self._count(state=state, request=request, invertible=report["invertible"])
        _write_changed_scores(scores)
        return requests

    def _lock_settled(self, program_ids: Collection[str]) -> dict[str, State]:
        """Lock the OPs (in id order, as record_events does) and read their states; the
        settled qualifiable ones, with their states, in id order. The state is the locked
        row's own column, read again in its new version when someone moved the OP while this
        waited for the lock (see ``ops.scan.events``)."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT id, newest_dataset_created_at, nullif(state, '')
                FROM {ObservingProgram._meta.db_table}
                WHERE id = ANY(%s)
                ORDER BY id
                FOR UPDATE
                """,
                [list(program_ids)],
            )
            rows = cursor.fetchall()
        self.summary.considered += len(rows)
        settled: dict[str, State] = {}
        for program_id, newest_created_at, state in rows:
            if state not in QUALIFIABLE_STATES:
                self.summary.not_qualifiable += 1
            elif not self.is_settled(newest_created_at):
                self.summary.not_settled += 1
            else:
                settled[program_id] = State(state)
        return settled

    def _count(self, *, state: State, request: EventRequest | None, invertible: bool) -> None:
        summary = self.summary
        if request is None:
            summary.unchanged += 1
            return
        if request.to_state == state:
            summary.information_events += 1
        else:
            summary.verdict_events += 1
        if invertible:
            summary.invertible += 1
        else:
            summary.not_invertible += 1


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
        return EventRequest(program_id, verdict, details, expected_state=state, actor=QUALIFIER)
    if report == previous:
        return None
    if state in WORK_STARTED_STATES:
        details["note"] = f"datasets changed while work is under way: the program stays {state.label}"
    else:
        details["note"] = "datasets changed: the verdict is the same, the report is new"
    return EventRequest(program_id, state, details, expected_state=state, actor=QUALIFIER)


def _write_changed_scores(scores: list[dict[str, Any]]) -> None:
    """One statement: each OP's score and its parts, written only where they changed."""
    if not scores:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {ObservingProgram._meta.db_table} AS program
            SET score = new.score, score_parts = new.parts
            FROM jsonb_to_recordset(%s) AS new (id text, score double precision, parts jsonb)
            WHERE program.id = new.id AND program.score_parts IS DISTINCT FROM new.parts
            """,
            [Jsonb(scores)],
        )


# DatasetValues' fields, each with the column it reads: the IP's instrument, the dataset's
# own columns (named alike but its id).
_DATASET_VALUE_COLUMNS = {
    field.name: {"dataset_id": "dataset.id", "instrument": "ip.instrument"}.get(
        field.name, f"dataset.{field.name}"
    )
    for field in fields(DatasetValues)
}
# The JSON blocks among them that only the score reads, and their positions: they arrive as
# text (see _dataset_rows) and are decoded for the OPs that get a score (ProgramDatasets).
_SCORE_BLOCKS = ("fried_parameter", "polarimetric_accuracy")
_SCORE_BLOCK_POSITIONS = [list(_DATASET_VALUE_COLUMNS).index(name) for name in _SCORE_BLOCKS]
_DATASET_ID_POSITION = list(_DATASET_VALUE_COLUMNS).index("dataset_id")


def _datasets_by_program(
    *,
    program_ids: Collection[str],
    states: Collection[str] | None = None,
    settled_before: datetime | None = None,
) -> dict[str, ProgramDatasets]:
    """The rules' view of every listed (not vanished) dataset of these OPs, in one query;
    with ``states`` and ``settled_before``, of those OPs only that are due."""
    datasets: dict[str, ProgramDatasets] = {}
    for program_id, values in _dataset_rows(
        program_ids=program_ids, states=states, settled_before=settled_before
    ):
        program = datasets.get(program_id) or datasets.setdefault(program_id, ProgramDatasets())
        program.score_blocks[values[_DATASET_ID_POSITION]] = [
            values[position] for position in _SCORE_BLOCK_POSITIONS
        ]
        for position in _SCORE_BLOCK_POSITIONS:
            values[position] = None
        # The columns are in the order of DatasetValues' fields.
        program.datasets.append(DatasetValues(*values))
    return datasets


def _dataset_rows(
    *, program_ids: Collection[str], states: Collection[str] | None, settled_before: datetime | None
) -> Iterator[tuple[str, list[Any]]]:
    due = ""
    if states is not None:
        due = f"""
            AND dataset.program_id IN (
                SELECT id FROM {ObservingProgram._meta.db_table}
                WHERE id = ANY(%(ids)s) AND state = ANY(%(states)s)
                    AND newest_dataset_created_at <= %(settled_before)s
            )"""
    # A plain cursor: the JSON blocks arrive as text, decoded only where a score needs them.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT dataset.program_id, {", ".join(_DATASET_VALUE_COLUMNS.values())}
            FROM {Dataset._meta.db_table} AS dataset
            JOIN {InstrumentProgram._meta.db_table} AS ip ON ip.id = dataset.instrument_program_id
            WHERE dataset.program_id = ANY(%(ids)s) AND dataset.vanished_at IS NULL{due}
            ORDER BY dataset.program_id, dataset.id
            """,
            {"ids": list(program_ids), "states": list(states or []), "settled_before": settled_before},
        )
        for program_id, *values in cursor.fetchall():
            yield program_id, values
