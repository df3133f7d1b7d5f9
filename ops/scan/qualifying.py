"""Qualifying: the verdicts of the OPs that a batch finds new, from the records in memory.

A first scan finds thousands of new OPs. Reading their datasets back from the database once
the scan is over, only to run the rules on them, cost the qualification more than the rules
themselves. So the rules of the OPs that are new in a batch run in the read-ahead thread, on
the records as parsed, while the batch before is written (``compute``); their verdicts are
recorded in the batch's transaction, right after their ``discovered`` events, in the same
``record_events`` call (``record``, then ``ops.scan.events``).

The rules see the same values either way (``dataset_values``). A verdict is recorded only for
an OP that the batch itself made (so its datasets are the batch's records) and whose IPs' rows
have the instruments the rules read. An OP that existed without stored datasets, or one with
an IP id that another OP already had, is left to the qualification after the scan, which
reads the database. So is every OP that is not new, not settled yet, or whose rules failed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection

from ops.history import EventRequest
from ops.metadata.records import DatasetRecord
from ops.models import InstrumentProgram
from ops.qualification import ProgramDatasets, QualificationSummary, Qualifier, Result
from ops.qualify import DatasetValues
from ops.states import State

log = logging.getLogger(__name__)


@dataclass
class BatchVerdicts:
    """The rules' results for a batch's new, settled OPs, with what they were computed from."""

    results: dict[str, Result] = field(default_factory=dict)
    # Per IP of those OPs: the instrument the rules read.
    instruments: dict[str, str] = field(default_factory=dict)


def dataset_values(record: DatasetRecord, *, instrument: str) -> DatasetValues:
    """What the rules read of a record: the values its Dataset row gives them (see
    ``ops.qualification``), with the instrument of its IP's row."""
    # Positional, in DatasetValues' order: keywords cost the scan a third more.
    return DatasetValues(
        record.dataset_id,
        record.instrument_program_id,
        instrument,
        record.start_time,
        record.bounding_box,
        record.stokes_parameters,
        record.wavelength_min,
        record.wavelength_max,
        record.spectral_lines,
        record.frame_count,
        record.health_good,
        record.gos_open,
        record.ao_locked,
        record.fried_parameter,
        record.polarimetric_accuracy,
    )


class Qualifying:
    """The in-batch qualification of one scan: ``compute`` in the read-ahead thread (no
    database), ``record`` in the batch's transaction."""

    def __init__(self, *, known_program_ids: set[str], now: datetime):
        # OPs with a stored dataset are not new: the qualification after the scan reads them.
        self.known_program_ids = known_program_ids
        self.summary = QualificationSummary()
        self.qualifier = Qualifier(now=now, summary=self.summary)

    def compute(self, records: list[DatasetRecord]) -> BatchVerdicts:
        started = time.perf_counter()
        try:
            return self._compute(records)
        finally:
            self.summary.rules_s += time.perf_counter() - started

    def _compute(self, records: list[DatasetRecord]) -> BatchVerdicts:
        verdicts = BatchVerdicts()
        by_program: dict[str, list[DatasetRecord]] = {}
        # An IP's row takes the instrument of its first record (ops.scan.upserting).
        instruments: dict[str, str] = {}
        for record in records:
            instruments.setdefault(record.instrument_program_id, record.instrument_name)
            if record.program_id not in self.known_program_ids:
                by_program.setdefault(record.program_id, []).append(record)
        for program_id, program_records in by_program.items():
            newest = max(record.create_date for record in program_records)
            if not self.qualifier.is_settled(newest):
                continue
            program = ProgramDatasets(
                datasets=[
                    dataset_values(record, instrument=instruments[record.instrument_program_id])
                    for record in program_records
                ]
            )
            try:
                verdicts.results[program_id] = self.qualifier.rules(program)
            except Exception:
                # The qualification after the scan runs it again, and reports it there.
                log.exception("qualifying %s in its scan batch failed", program_id)
                continue
            for record in program_records:
                verdicts.instruments[record.instrument_program_id] = instruments[record.instrument_program_id]
        return verdicts

    def record(
        self, verdicts: BatchVerdicts, *, new_program_ids: set[str]
    ) -> tuple[list[str], list[EventRequest]]:
        """Record the scores of the OPs that this batch made (``new_program_ids``: their
        datasets are this batch's records; nobody else sees their rows before the batch is
        committed) and whose IPs' rows have the instruments the rules read; those OPs, and
        their verdict events, which ``record_scan_events`` records after their ``discovered``
        events (in the same call: each OP's row is then locked and updated once)."""
        if not verdicts.results:
            return [], []
        started = time.perf_counter()
        matching = self._matching(verdicts, new_program_ids=new_program_ids)
        requests = []
        if matching:
            self.summary.considered += len(matching)
            requests = self.qualifier.record_scores(
                settled=dict.fromkeys(matching, State.DISCOVERED),
                results={program_id: verdicts.results[program_id] for program_id in matching},
            )
        # Without the writing of the verdict events: it is part of the scan's events.
        self.summary.recording_s += time.perf_counter() - started
        return matching, requests

    def _matching(self, verdicts: BatchVerdicts, *, new_program_ids: set[str]) -> list[str]:
        """The OPs made in this batch, in id order, whose IPs' rows have the instruments the
        rules read (an IP id another OP had keeps that OP's row)."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, instrument FROM {InstrumentProgram._meta.db_table} WHERE id = ANY(%s)",
                [list(verdicts.instruments)],
            )
            stored_instruments = dict(cursor.fetchall())
        other_instrument = {
            ip_id
            for ip_id, instrument in verdicts.instruments.items()
            if stored_instruments.get(ip_id) != instrument
        }
        return sorted(
            program_id
            for program_id, (report, _) in verdicts.results.items()
            if program_id in new_program_ids
            and not any(ip["id"] in other_instrument for ip in report["instrument_programs"])
        )
