"""Upserting: the rows of a batch written set-wise (proposals, experiments, OPs, IPs, datasets),
datasets no longer listed marked vanished, and the OPs' totals brought up to date.

Plain SQL where the ORM would build one model instance (or 30 parameters) per row: for the
100,000 datasets of a first scan, that cost more than the database's own work.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple

import msgspec
import psycopg
from django.db import connection
from psycopg import adapters, sql
from psycopg._copy_base import format_row_binary
from psycopg.adapt import Transformer
from psycopg.pq import Format

from ops.metadata.records import DatasetRecord, RecordError
from ops.models import Dataset, Experiment, InstrumentProgram, ObservingProgram, Proposal, key_numbers

# Dataset columns that a record sets, in the order of ``dataset_row``; the writes add
# first_seen_at and vanished_at.
RECORD_COLUMNS = [
    field.column
    for field in Dataset._meta.concrete_fields
    if field.column not in ("first_seen_at", "vanished_at")
]

# The type of each record column as binary COPY sends it, in the order of RECORD_COLUMNS.
# Binary COPY hands each value over as it is (text COPY escapes the kilobytes of each raw
# record, byte by byte, in the scan's writing thread), so each type must be the column's own;
# the jsonb columns get their binary form as bytes (``_jsonb``), which bytea sends unchanged.
COPY_TYPES = {
    "id": "varchar",
    "instrument_program_id": "varchar",
    "program_id": "varchar",
    "proposal_id": "varchar",
    "experiment_id_text": "varchar",
    "instrument_name": "varchar",
    "create_date": "timestamptz",
    "update_date": "timestamptz",
    "start_time": "timestamptz",
    "end_time": "timestamptz",
    "bounding_box": "varchar",
    "stokes_parameters": "varchar",
    "wavelength_min": "float8",
    "wavelength_max": "float8",
    "spectral_lines": "varchar[]",
    "frame_count": "int4",
    "health_good": "int4",
    "gos_open": "int4",
    "ao_locked": "int4",
    "light_level": "bytea",
    "fried_parameter": "bytea",
    "polarimetric_accuracy": "bytea",
    "exposure_time": "float8",
    "dataset_size": "int8",
    "is_embargoed": "bool",
    "embargo_end_date": "timestamptz",
    "bucket": "varchar",
    "product_id": "varchar",
    "browse_movie_url": "varchar",
    "raw": "bytea",
}
assert list(COPY_TYPES) == RECORD_COLUMNS and RECORD_COLUMNS[0] == "id"

# Binary COPY's header (its signature, no flags, no header extension) and trailer: the
# writing thread sends each batch's tuples, made beforehand (``CopyEncoder``), in one piece.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"

# JSON blocks that are in the raw record too, by column. Each column gets the block's JSON
# text as the store wrote it (an object in the record, or the JSON text sent as a string):
# serialising the parsed blocks again cost the scan more than raw itself.
BLOCKS_IN_RAW = {
    "light_level": "lightLevel",
    "fried_parameter": "friedParameter",
    "polarimetric_accuracy": "polarimetricAccuracy",
}

# Reads only the blocks' texts out of a record's JSON text (the rest is skipped, not built);
# a block that is absent or null reads as ``null``.
_BlockTexts = msgspec.defstruct(
    "_BlockTexts",
    [(column, msgspec.Raw, msgspec.Raw(b"null")) for column in BLOCKS_IN_RAW],
    rename=BLOCKS_IN_RAW,
)
_read_block_texts = msgspec.json.Decoder(_BlockTexts).decode
# Checks a JSON text without building its values.
_check_json = msgspec.json.Decoder(msgspec.Raw).decode


@contextmanager
def _binding_cursor() -> Iterator[psycopg.Cursor]:
    """A cursor of the database connection (in its transaction) that sends the parameters
    apart from the SQL, those written %(name)b in binary. Django's cursors write each
    parameter into the SQL text, which for the arrays of a batch's hundreds of OPs cost more
    than running the statement."""
    with connection.cursor() as django_cursor, psycopg.Cursor(django_cursor.cursor.connection) as cursor:
        yield cursor


def insert_proposals(proposal_ids: Iterable[str]) -> None:
    Proposal.objects.bulk_create(
        [
            Proposal(id=pid, cycle=key_numbers(pid)[0], number=key_numbers(pid)[1])
            for pid in sorted(proposal_ids)
        ],
        ignore_conflicts=True,
    )


def insert_experiments(records: list[DatasetRecord], *, descriptions: Callable[[], dict[str, str]]) -> None:
    """Make the experiments not yet known; ``descriptions`` is asked only when there are some."""
    experiment_ids = {r.experiment_id for r in records if r.experiment_id}
    unknown = experiment_ids - set(
        Experiment.objects.filter(pk__in=experiment_ids).values_list("pk", flat=True)
    )
    if not unknown:
        return
    described = descriptions()
    Experiment.objects.bulk_create(
        [
            Experiment(
                id=experiment_id,
                cycle=key_numbers(experiment_id)[0],
                number=key_numbers(experiment_id)[1],
                description=described.get(experiment_id, ""),
            )
            for experiment_id in sorted(unknown)
        ],
        ignore_conflicts=True,
    )


def insert_programs(records: list[DatasetRecord], *, now: datetime) -> set[str]:
    """Make the OPs and IPs of these records not yet stored (bulk_create(ignore_conflicts=True)
    as plain SQL); the ids of the OPs made. New OPs start as the model's defaults make them
    (no event, no state), with their totals over these records: an OP not yet stored has no
    other datasets, so the totals' UPDATE can skip it. Rows go in id order (the order locks
    are taken in)."""
    first_of_program = sorted({r.program_id: r for r in reversed(records)}.items())
    first_of_ip = sorted({r.instrument_program_id: r for r in reversed(records)}.items())
    dataset_counts: Counter[str] = Counter()
    newest_created: dict[str, datetime] = {}
    for r in records:
        dataset_counts[r.program_id] += 1
        if r.program_id not in newest_created or r.create_date > newest_created[r.program_id]:
            newest_created[r.program_id] = r.create_date
    with _binding_cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {ObservingProgram._meta.db_table} (id, proposal_id, experiment_id,
                first_seen_at, newest_dataset_created_at, dataset_count, current_event_id, state)
            SELECT id, proposal_id, experiment_id, %(now)b, newest_created_at, dataset_count, NULL, ''
            FROM unnest(%(ids)b::text[], %(proposal_ids)b::text[], %(experiment_ids)b::text[],
                    %(newest_created_at)b::timestamptz[], %(dataset_counts)b::integer[])
                WITH ORDINALITY AS program (id, proposal_id, experiment_id, newest_created_at,
                    dataset_count, position)
            ORDER BY position
            ON CONFLICT DO NOTHING
            RETURNING id
            """,
            {
                "now": now,
                "ids": [program_id for program_id, _ in first_of_program],
                "proposal_ids": [r.proposal_id for _, r in first_of_program],
                "experiment_ids": [r.experiment_id or None for _, r in first_of_program],
                "newest_created_at": [newest_created[program_id] for program_id, _ in first_of_program],
                "dataset_counts": [dataset_counts[program_id] for program_id, _ in first_of_program],
            },
        )
        new_program_ids = {program_id for (program_id,) in cursor.fetchall()}
        cursor.execute(
            f"""
            INSERT INTO {InstrumentProgram._meta.db_table} (id, program_id, instrument)
            SELECT id, program_id, instrument
            FROM unnest(%(ids)b::text[], %(program_ids)b::text[], %(instruments)b::text[])
                WITH ORDINALITY AS ip (id, program_id, instrument, position)
            ORDER BY position
            ON CONFLICT DO NOTHING
            """,
            {
                "ids": [ip_id for ip_id, _ in first_of_ip],
                "program_ids": [r.program_id for _, r in first_of_ip],
                "instruments": [r.instrument_name for _, r in first_of_ip],
            },
        )
    return new_program_ids


def upsert_datasets(rows: list[CopyRow], *, stored_ids: Container[str]) -> None:
    """Insert or update the datasets, ``rows`` as ``CopyEncoder`` makes them.

    Those not in ``stored_ids`` (all of a first scan) are new: COPY puts them straight into
    the table. The scan holds the scan lock, so nobody else adds datasets meanwhile. The
    others go by COPY into a scratch table, then one INSERT … ON CONFLICT. (bulk_create
    builds one SQL text with 30 parameters per row, which costs the scan more than the
    database's own work; COPY sends rows as they are.)
    """
    new_rows: list[CopyRow] = []
    stored_rows: list[CopyRow] = []
    for row in rows:
        (stored_rows if row.dataset_id in stored_ids else new_rows).append(row)
    table = sql.Identifier(Dataset._meta.db_table)
    columns = sql.SQL(", ").join(map(sql.Identifier, [*RECORD_COLUMNS, "first_seen_at"]))
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        if new_rows:
            _copy(cursor, sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, columns), new_rows)
        if not stored_rows:
            return
        # A stored dataset keeps its first_seen_at; a listed one is not vanished.
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(column))
            for column in [*RECORD_COLUMNS, "vanished_at"]
            if column != "id"
        )
        cursor.execute(
            sql.SQL("CREATE TEMP TABLE scan_dataset_upsert AS SELECT {} FROM {} WITH NO DATA").format(
                columns, table
            )
        )
        _copy(
            cursor,
            sql.SQL("COPY scan_dataset_upsert ({}) FROM STDIN (FORMAT BINARY)").format(columns),
            stored_rows,
        )
        cursor.execute(
            sql.SQL(
                "INSERT INTO {table} ({columns}, vanished_at)"
                " SELECT {columns}, NULL FROM scan_dataset_upsert"
                " ON CONFLICT (id) DO UPDATE SET {updates}"
            ).format(table=table, columns=columns, updates=updates)
        )
        cursor.execute("DROP TABLE scan_dataset_upsert")


def _copy(cursor: psycopg.Cursor, statement: sql.Composed, rows: list[CopyRow]) -> None:
    """Binary COPY of ``rows`` (their tuples made beforehand) in one piece."""
    data = b"".join([_COPY_HEADER, *(row.data for row in rows), _COPY_TRAILER])
    with cursor.copy(statement) as copy:
        # A view: psycopg sends a large buffer in slices, which then are not copies.
        copy.write(memoryview(data))


def mark_vanished(dataset_ids: list[str], *, now: datetime) -> None:
    Dataset.objects.filter(pk__in=dataset_ids, vanished_at__isnull=True).update(vanished_at=now)


def update_program_totals(program_ids: list[str]) -> None:
    """dataset_count and newest createDate of each OP, over its datasets still listed
    (those of OPs made in this batch are set by ``insert_programs``).

    One aggregate over the OPs' datasets, joined to the OPs (0 and NULL for an OP with
    none left), rather than two correlated subqueries per OP.
    """
    with _binding_cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {ObservingProgram._meta.db_table} AS program
            SET dataset_count = coalesce(live.dataset_count, 0),
                newest_dataset_created_at = live.newest_created_at
            FROM unnest(%(ids)b::text[]) AS changed(program_id)
            LEFT JOIN (
                SELECT program_id, count(*) AS dataset_count, max(create_date) AS newest_created_at
                FROM {Dataset._meta.db_table}
                WHERE program_id = ANY(%(ids)b::text[]) AND vanished_at IS NULL
                GROUP BY program_id
            ) AS live USING (program_id)
            WHERE program.id = changed.program_id
            """,
            {"ids": program_ids},
        )


def _has_nul(value: Any) -> bool:
    """Whether a parsed JSON value holds a NUL character (jsonb refuses them) in a string or key."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _checked_json(r: DatasetRecord, field: str, text: str, value: Any, *, read: Callable[[str], Any]) -> Any:
    """``read(text)``; the record's RecordError where jsonb would refuse ``text`` (``value``
    parsed): Python's parser also takes NaN, Infinity, lone surrogates and NUL characters,
    which would fail the whole batch's write."""
    try:
        result = read(text)
    except msgspec.DecodeError:
        raise RecordError(r.dataset_id, field, "is not JSON that the database can store") from None
    if "\\u0000" in text and _has_nul(value):
        raise RecordError(r.dataset_id, field, "holds a NUL character, which the database cannot store")
    return result


def _jsonb(text: bytes | msgspec.Raw) -> bytes:
    """The binary form of jsonb (its version, 1, then the JSON text in UTF-8), which
    PostgreSQL parses as it parses the JSON text alone."""
    return b"\x01" + text


def _block_value(r: DatasetRecord, column: str, texts: Any) -> bytes | None:
    """A JSON block's column value (``_jsonb``): its text as the store wrote it, or None
    (SQL NULL) when it is absent or null (also the JSON text "null")."""
    sent = r.raw.get(BLOCKS_IN_RAW[column])
    if type(sent) is dict:
        return _jsonb(getattr(texts, column))
    if getattr(r, column) is None:
        return None
    # Sent as JSON text (parse_dataset took nothing else).
    _checked_json(r, BLOCKS_IN_RAW[column], sent, getattr(r, column), read=_check_json)
    return _jsonb(sent.encode())


# The values of RECORD_COLUMNS that are the record's fields as they are, in one C call: a
# scan makes 100,000 rows. dataset_row then sets update_date (createDate where the store
# never updated the record), the JSON blocks and raw.
_record_values = attrgetter(
    *[
        {"id": "dataset_id", "experiment_id_text": "experiment_id"}.get(column, column)
        for column in RECORD_COLUMNS
    ]
)
_UPDATE_DATE = RECORD_COLUMNS.index("update_date")
_BLOCK_INDEXES = [(RECORD_COLUMNS.index(column), column) for column in BLOCKS_IN_RAW]
_RAW = RECORD_COLUMNS.index("raw")


class CopyRow(NamedTuple):
    """A dataset's row as one binary COPY tuple (``CopyEncoder``), with the dataset's id."""

    dataset_id: str
    data: bytes | bytearray


class CopyEncoder:
    """Rows as ``dataset_row`` makes them, as binary COPY tuples of RECORD_COLUMNS and
    first_seen_at (``COPY_TYPES``, then timestamptz): made in the read-ahead thread with the
    rest of the row, so that the writing thread only sends them. Encoding a batch's rows
    (psycopg's own C encoder, as ``Copy.write_row`` runs it) there used to take a quarter of
    the writing thread's time, and held the GIL while the database waited for the rows.
    One per batch and thread: psycopg's Transformer keeps state of its own.
    """

    def __init__(self, *, first_seen_at: datetime):
        self.first_seen_at = first_seen_at
        self._transformer = Transformer()
        self._transformer.set_dumper_types(
            [adapters.types.get_oid(name) for name in [*COPY_TYPES.values(), "timestamptz"]], Format.BINARY
        )

    def encode(self, row: list[Any]) -> CopyRow:
        """A row that ``dataset_row`` made (its id first), as a COPY tuple."""
        data = bytearray()
        format_row_binary([*row, self.first_seen_at], self._transformer, data)
        return CopyRow(row[0], data)


def dataset_row(r: DatasetRecord, raw_text: str | None = None) -> list[object]:
    """A record as the values of RECORD_COLUMNS, ready for binary COPY (COPY_TYPES);
    RecordError for a record that the jsonb columns cannot hold.

    Made in the read-ahead thread, so that the write only sends it. ``raw_text`` is the
    record's JSON as the store sent it, which the client has checked as jsonb would; without
    it, raw is serialised and checked here.
    """
    if raw_text is None:
        raw_text = json.dumps(r.raw)
        _checked_json(r, "record", raw_text, r.raw, read=_check_json)
    row = list(_record_values(r))
    if r.update_date is None:
        row[_UPDATE_DATE] = r.create_date
    block_texts = _read_block_texts(raw_text)
    for index, column in _BLOCK_INDEXES:
        row[index] = _block_value(r, column, block_texts)
    row[_RAW] = _jsonb(raw_text.encode())
    return row
