"""The scan's dataset rows and their write: new datasets by COPY, stored ones by upsert; the
JSON blocks as the store wrote them; records that jsonb cannot hold are their own errors."""

import datetime as dt
import json

import pytest
from django.db import connection
from django.db.models.fields.json import KeyTransform
from psycopg import sql

from ops.metadata.records import RecordError, parse_dataset
from ops.models import Dataset, Scan
from ops.scan import run_scan
from ops.scan.upserting import COPY_TYPES, RECORD_COLUMNS, CopyEncoder, dataset_row, upsert_datasets
from tests.factories import DatasetFactory, InstrumentProgramFactory
from tests.ops.metadata.store import dataset_record

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture
def store(metadata_store):
    metadata_store.add(*(dataset_record(dataset_id) for dataset_id in ["AAAAA", "AAAAB", "AAAAC"]))
    return metadata_store


def row_of(raw, **overrides):
    raw = {**raw, **overrides}
    return dataset_row(parse_dataset(raw), json.dumps(raw))


def copy_rows(rows):
    """The rows as the read-ahead thread sends them, first seen at NOW."""
    encoder = CopyEncoder(first_seen_at=NOW)
    return [encoder.encode(row) for row in rows]


def test_new_and_stored_datasets_in_one_batch_are_inserted_and_updated(db):
    ip = InstrumentProgramFactory()
    stored = DatasetFactory(id="STORED", instrument_program=ip, frame_count=1)
    vanished = DatasetFactory(id="GONE", instrument_program=ip, vanished_at=NOW - dt.timedelta(days=1))
    record = dataset_record(
        observingProgramExecutionId=ip.program_id,
        instrumentProgramExecutionId=ip.pk,
        primaryProposalId=ip.program.proposal_id,
        primaryExperimentId=ip.program.experiment_id,
        frameCount=7,
    )
    rows = [row_of(record, datasetId=dataset_id) for dataset_id in ["STORED", "NEW", "GONE"]]

    upsert_datasets(copy_rows(rows), stored_ids={"STORED", "GONE"})

    datasets = {d.pk: d for d in Dataset.objects.all()}
    assert set(datasets) == {"STORED", "NEW", "GONE"}
    assert {d.frame_count for d in datasets.values()} == {7}
    assert datasets["STORED"].first_seen_at == stored.first_seen_at
    assert datasets["GONE"].first_seen_at == vanished.first_seen_at
    assert datasets["NEW"].first_seen_at == NOW
    assert {d.vanished_at for d in datasets.values()} == {None}
    assert datasets["NEW"].raw == {**record, "datasetId": "NEW"}
    assert datasets["NEW"].light_level == record["lightLevel"]


def test_binary_copy_stores_what_text_copy_of_the_same_values_stored(db):
    """The rows go by binary COPY, jsonb as bytes; stored, each column is what text COPY of
    the JSON texts and values stored (as the scan wrote them before), new or upserted."""
    ip = InstrumentProgramFactory()
    program = ip.program
    record = dataset_record(
        observingProgramExecutionId=program.pk,
        instrumentProgramExecutionId=ip.pk,
        primaryProposalId=program.proposal_id,
        primaryExperimentId=program.experiment_id,
    )
    raws = [
        {**record, "datasetId": "PLAIN"},
        {
            **record,
            "datasetId": "ODD",
            "boundingBox": 'ä \\N \t\n"€ 😀',
            "productId": "\\N",
            "spectralLines": ["Fe I", 'a,"b"}{', "", "NULL", "ü\\"],
            "headerVersion": "é \\u00e9 \\ \u2028",
            "lightLevel": '{"max": 474.70000000000000000001, "med": 1e400, "min": -0, "é": "\\t"}',
            "friedParameter": {"ß": [1, {"x": None}], "big": 12345678901234567890123},
            "wavelengthMin": -0.0,
            "wavelengthMax": 1.7976931348623157e308,
            "exposureTime": 5e-324,
            "datasetSize": 2**63 - 1,
            "frameCount": 2**31 - 1,
            "isEmbargoed": True,
        },
        {
            **record,
            "datasetId": "NULLS",
            **dict.fromkeys(
                [
                    "instrumentName",
                    "updateDate",
                    "startTime",
                    "endTime",
                    "spectralLines",
                    "lightLevel",
                    "friedParameter",
                    "exposureTime",
                    "datasetSize",
                    "embargoEndDate",
                    "wavelengthMin",
                    "health",
                    "gosStatus",
                    "aoLocked",
                    "bucket",
                    "browseMovieUrl",
                ]
            ),
        },
    ]
    rows = [dataset_row(parse_dataset(raw), json.dumps(raw, ensure_ascii=False)) for raw in raws]
    DatasetFactory(id="ODD", instrument_program=ip)

    upsert_datasets(copy_rows(rows), stored_ids={"ODD"})

    columns = sql.SQL(", ").join(map(sql.Identifier, RECORD_COLUMNS))
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        cursor.execute(
            sql.SQL("CREATE TEMP TABLE text_copied AS SELECT {} FROM ops_dataset WITH NO DATA").format(
                columns
            )
        )
        with cursor.copy(sql.SQL("COPY text_copied ({}) FROM STDIN").format(columns)) as copy:
            for row in rows:
                copy.write_row(
                    [
                        str(value.removeprefix(b"\x01"), "utf-8")
                        if kind == "bytea" and value is not None
                        else value
                        for kind, value in zip(COPY_TYPES.values(), row, strict=True)
                    ]
                )
        stored = {}
        for table in ["ops_dataset", "text_copied"]:
            cursor.execute(
                sql.SQL("SELECT id, {} FROM {} ORDER BY id").format(columns, sql.Identifier(table))
            )
            stored[table] = cursor.fetchall()
        # Compared as PostgreSQL prints them too (jsonb's numbers as stored, floats' digits).
        texts = {}
        for table in ["ops_dataset", "text_copied"]:
            cursor.execute(
                sql.SQL("SELECT ({})::text FROM {} ORDER BY id").format(columns, sql.Identifier(table))
            )
            texts[table] = cursor.fetchall()
    assert [values[0] for values in stored["ops_dataset"]] == ["NULLS", "ODD", "PLAIN"]
    assert stored["ops_dataset"] == stored["text_copied"]
    assert texts["ops_dataset"] == texts["text_copied"]
    assert "474.70000000000000000001" in texts["ops_dataset"][1][0]


def test_json_blocks_hold_what_raw_holds_whether_sent_as_objects_or_as_json_text(db, store):
    # Numbers beyond a float's precision: the columns keep them as the store wrote them.
    text = '{"max": 474.70000000000000000001, "med": 1e400, "min": -0}'
    store.records["AAAAA"]["lightLevel"] = text
    store.records["AAAAB"]["friedParameter"] = json.dumps({"med": 0.039, "nested": {"a": [1, "b"]}})
    store.records["AAAAB"]["lightLevel"] = "null"

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.new_count, scan.error_count) == (3, 0)
    by_id = {d.pk: d for d in Dataset.objects.all()}
    assert by_id["AAAAB"].fried_parameter == {"med": 0.039, "nested": {"a": [1, "b"]}}
    assert by_id["AAAAB"].light_level is None
    # Compared in the database (jsonb equality, not Python's floats): what the store wrote.
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM ops_dataset WHERE light_level = %s::jsonb", [text])
        assert cursor.fetchall() == [("AAAAA",)]
    # Sent as objects: the column is raw's object.
    assert set(
        Dataset.objects.filter(light_level=KeyTransform("lightLevel", "raw")).values_list("pk", flat=True)
    ) == {"AAAAC"}
    assert set(
        Dataset.objects.filter(fried_parameter=KeyTransform("friedParameter", "raw")).values_list(
            "pk", flat=True
        )
    ) == {"AAAAA", "AAAAC"}


# Records whose own JSON PostgreSQL refuses are the client's errors (tests/ops/test_scan.py);
# a block sent as JSON text is valid JSON text in a valid record, whatever it holds.
@pytest.mark.parametrize(
    "block", ['{"med": NaN}', '{"med": Infinity}', '{"med": "\\u0000"}', '{"\\ud800": 1}']
)
def test_a_block_sent_as_json_text_the_database_refuses_is_an_error_and_the_others_are_kept(db, store, block):
    store.records["AAAAB"]["friedParameter"] = block

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.status, scan.new_count, scan.error_count) == ("succeeded", 2, 1)
    (error,) = scan.errors.all()
    assert error.record == "AAAAB"
    assert error.message.startswith("dataset AAAAB: friedParameter ")
    assert not Dataset.objects.filter(pk="AAAAB").exists()


def test_a_backslash_before_u0000_is_text_not_a_nul(db, store):
    store.records["AAAAB"]["headerVersion"] = "C:\\u0000"
    store.records["AAAAB"]["lightLevel"] = '{"path": "C:\\\\u0000"}'

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert (scan.new_count, scan.error_count) == (3, 0)
    dataset = Dataset.objects.get(pk="AAAAB")
    assert dataset.raw["headerVersion"] == "C:\\u0000"
    assert dataset.light_level == {"path": "C:\\u0000"}


def test_a_row_without_the_stores_text_is_made_from_the_parsed_record():
    record = parse_dataset(dataset_record("AAAAA"))

    assert dataset_row(record) == dataset_row(record, json.dumps(record.raw))


def test_a_parsed_record_the_database_cannot_hold_raises_its_record_error():
    record = parse_dataset(dataset_record("AAAAA", exposureTime=float("nan")))

    with pytest.raises(RecordError, match="AAAAA"):
        dataset_row(record)


def test_raw_is_stored_without_compression(db, store):
    # Long enough for the row to be toasted, and easy to compress.
    store.records["AAAAA"]["calibrationDocumentationUrl"] = "https://docs.dkist.nso.edu/" + "a" * 3000

    run_scan(trigger=Scan.Trigger.COMMAND)

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_compression(raw), count(*) FROM ops_dataset GROUP BY 1")
        assert cursor.fetchall() == [(None, 3)]


def test_raw_stays_in_its_row_unless_the_row_outgrows_a_page(db, store):
    # Rows over the default 2 kB toast target, one of them over a page.
    store.records["AAAAA"]["calibrationDocumentationUrl"] = "https://docs.dkist.nso.edu/" + "a" * 3000
    store.records["AAAAB"]["calibrationDocumentationUrl"] = "https://docs.dkist.nso.edu/" + "b" * 10000

    run_scan(trigger=Scan.Trigger.COMMAND)

    with connection.cursor() as cursor:
        # The values moved out of line, counted in the table's toast table (PostgreSQL 15
        # has no pg_column_toast_chunk_id): AAAAB's raw only.
        cursor.execute(
            "SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'ops_dataset'::regclass"
        )
        (toast_table,) = cursor.fetchone()
        cursor.execute(f"SELECT count(DISTINCT chunk_id) FROM {toast_table}")
        assert cursor.fetchone() == (1,)
        cursor.execute("SELECT id, pg_column_compression(raw) FROM ops_dataset ORDER BY id")
        assert cursor.fetchall() == [("AAAAA", None), ("AAAAB", None), ("AAAAC", None)]
    assert Dataset.objects.get(pk="AAAAB").raw == store.records["AAAAB"]
