"""Planner statistics refreshed while a scan fills the tables.

A first scan into an empty database otherwise plans its per-batch and qualification queries
for empty tables (whole-table reads where an index lookup is right, each batch slower than
the one before).
"""

from __future__ import annotations

from django.db import connection, transaction

from ops.models import Dataset, InstrumentProgram, ObservingProgram, ProgramEvent
from ops.scan.listing import BATCH_DATASETS

# The statistics are refreshed each time the scan has written as many datasets as were
# stored when they were last refreshed, once at least this many are stored.
ANALYZE_FROM_DATASETS = 2 * BATCH_DATASETS
# The sample's size (300 rows per unit): what these lookups need is the tables' sizes and
# how many datasets an OP has, not fine histograms; the default (100) reads 30,000 rows of
# datasets, each time more of the table. Autovacuum's own ANALYZE later uses the default.
STATISTICS_TARGET = 10
# The tables and the columns their lookups use: sampling the JSON columns (raw, details)
# would cost more than the statistics save.
ANALYZED_COLUMNS = {
    Dataset: ["id", "program_id", "vanished_at"],
    ObservingProgram: ["id", "current_event_id"],
    InstrumentProgram: ["id", "program_id"],
    ProgramEvent: ["id", "program_id"],
}


class Statistics:
    """Counts the datasets a scan stores and refreshes the statistics as they double."""

    def __init__(self, *, stored: int):
        self.datasets = stored
        self.when_analyzed = stored

    def written(self, count: int) -> None:
        self.datasets += count
        if self.datasets < max(ANALYZE_FROM_DATASETS, 2 * self.when_analyzed):
            return
        tables = ", ".join(
            f"{model._meta.db_table} ({', '.join(columns)})" for model, columns in ANALYZED_COLUMNS.items()
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL default_statistics_target = {STATISTICS_TARGET}")
            cursor.execute(f"ANALYZE {tables}")
        self.when_analyzed = self.datasets
