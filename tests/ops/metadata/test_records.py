"""Parsing store records: typed values, absent optional fields, one clear error per bad record."""

import datetime as dt

import pytest

from ops.metadata.records import RecordError, parse_dataset, parse_listed
from tests.ops.metadata.store import dataset_record

OPTIONAL = ["spectralLines", "bucket", "productId", "browseMovieUrl"]


def test_a_full_record_parses_to_typed_values():
    raw = dataset_record("RVMDLI")

    record = parse_dataset(raw)

    assert record.dataset_id == "RVMDLI"
    assert record.proposal_id == "pid_3_54" and record.experiment_id == "eid_3_54"
    assert record.program_id == "eid_3_54_opolDyXQ_R001.1185321.14023005"
    assert record.instrument_program_id == "id.1189737.1073625"
    assert record.create_date == dt.datetime(2025, 4, 2, 22, 24, 25, 724505, tzinfo=dt.UTC)
    assert record.update_date == dt.datetime(2025, 6, 28, 19, 52, 46, 460870, tzinfo=dt.UTC)
    assert (record.frame_count, record.health_good, record.gos_open, record.ao_locked) == (444, 444, 444, 400)
    assert record.spectral_lines == ["Fe I (630.25 nm)"]
    assert record.fried_parameter["med"] == 0.039 and record.polarimetric_accuracy is None
    assert (record.bucket, record.product_id, record.dataset_size) == ("data", "L1-ABCDEFGHIJ", 27)
    assert record.raw is raw


def test_an_older_record_without_optional_fields_parses():
    raw = dataset_record("BLKGA")
    for name in [*OPTIONAL, "health", "gosStatus", "lightLevel", "friedParameter", "aoLocked", "updateDate"]:
        del raw[name]

    record = parse_dataset(raw)

    assert (record.spectral_lines, record.bucket, record.product_id, record.browse_movie_url) == (
        None,
        "",
        "",
        "",
    )
    assert (record.health_good, record.gos_open, record.ao_locked) == (0, 0, 0)
    assert record.light_level is None and record.update_date is None


def test_null_counts_mean_zero():
    raw = dataset_record(
        frameCount=None,
        aoLocked=None,
        health={"good": None, "bad": 3},
        gosStatus={"open": None, "closed": 444},
    )

    record = parse_dataset(raw)

    assert (record.frame_count, record.ao_locked, record.health_good, record.gos_open) == (0, 0, 0, 0)


def test_upper_case_block_keys_and_json_string_blocks_parse():
    record = parse_dataset(
        dataset_record(health={"GOOD": 40, "BAD": 4}, lightLevel='{"min": 1.0, "med": 2.0}')
    )

    assert record.health_good == 40 and record.light_level == {"min": 1.0, "med": 2.0}


def test_aware_datetimes_become_utc():
    record = parse_dataset(dataset_record(startTime="2025-03-27T16:03:42-06:00"))

    assert record.start_time == dt.datetime(2025, 3, 27, 22, 3, 42, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("2025-03-27T16:03:42.5", dt.datetime(2025, 3, 27, 16, 3, 42, 500000, tzinfo=dt.UTC)),
        ("2025-03-27T16:03:42Z", dt.datetime(2025, 3, 27, 16, 3, 42, tzinfo=dt.UTC)),
        ("2025-03-27", dt.datetime(2025, 3, 27, tzinfo=dt.UTC)),
        ("2025-03-27+00:00", dt.datetime(2025, 3, 27, tzinfo=dt.UTC)),
        ("2025-W13-4T16", dt.datetime(2025, 3, 27, 16, tzinfo=dt.UTC)),
    ],
)
def test_datetimes_are_read_as_fromisoformat_reads_them_and_naive_ones_are_utc(value, parsed):
    for read in [
        parse_dataset(dataset_record(startTime=value)).start_time,
        parse_listed({"datasetId": "B", "primaryProposalId": "p", "updateDate": value}).update_date,
    ]:
        assert read == parsed and read.tzinfo is dt.UTC


@pytest.mark.parametrize(
    "value", ["2025-03-27T16:", "2025-03-27T16:03:", "20250327T16034", "9999-12-31T23:00:00-05:00"]
)
def test_what_fromisoformat_refuses_or_utc_cannot_hold_is_not_a_datetime(value):
    with pytest.raises(RecordError, match=r"startTime is .*, not an ISO date and time"):
        parse_dataset(dataset_record(startTime=value))
    with pytest.raises(RecordError, match=r"updateDate is .*, not an ISO date and time"):
        parse_listed({"datasetId": "B", "primaryProposalId": "p", "updateDate": value})


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("frameCount", "many", "frameCount is 'many', not a count"),
        ("frameCount", -1, "frameCount is -1, not a count"),
        ("aoLocked", True, "aoLocked is True, not a count"),
        ("health", {"good": 1.5}, "health.good is 1.5, not a count"),
        ("health", [1, 2], "health is [1, 2], not an object"),
        ("createDate", "yesterday", "createDate is 'yesterday', not an ISO date and time"),
        (
            "startTime",
            "0001-01-01T00:00:00+05:00",
            "startTime is '0001-01-01T00:00:00+05:00', not an ISO date and time in UTC's range",
        ),
        ("createDate", None, "createDate is missing"),
        ("observingProgramExecutionId", None, "observingProgramExecutionId is missing"),
        ("instrumentProgramExecutionId", 12, "instrumentProgramExecutionId is 12, not text"),
        ("wavelengthMin", "630", "wavelengthMin is '630', not a number"),
        ("isEmbargoed", "no", "isEmbargoed is 'no', not true or false"),
        ("spectralLines", "Fe I", "spectralLines is 'Fe I', not a list of text"),
        ("stokesParameters", "IQUV" * 5, "stokesParameters is 20 characters long, more than 16"),
        ("frameCount", 2**31, "frameCount is 2147483648, not a count"),
        ("aoLocked", 10**30, f"aoLocked is {10**30}, not a count"),
        ("health", {"good": 2**40}, f"health.good is {2**40}, not a count"),
        ("datasetSize", 1e300, "datasetSize is 1e+300, not a size"),
        ("datasetSize", 2**70, f"datasetSize is {float(2**70)!r}, not a size"),
        ("datasetSize", float("nan"), "datasetSize is nan, not a size"),
        ("datasetSize", -3.0, "datasetSize is -3.0, not a size"),
        # An integer beyond a float, not 1e400 (which the client reads as infinity, as json does).
        ("wavelengthMax", 10**400, f"wavelengthMax is {10**400}, beyond a float's range"),
        ("datasetSize", -(10**400), f"datasetSize is {-(10**400)}, beyond a float's range"),
    ],
)
def test_a_bad_field_is_an_error_naming_the_dataset_and_the_field(field, value, problem):
    with pytest.raises(RecordError) as raised:
        parse_dataset(dataset_record("BADONE", **{field: value}))

    assert str(raised.value) == f"dataset BADONE: {problem}"
    assert raised.value.dataset_id == "BADONE" and raised.value.field.startswith(field)


def test_a_record_with_several_bad_fields_is_the_error_of_the_first_in_the_records_order():
    # Read by kind (text, then dates, then counts …): the error is still the first field's.
    record = dataset_record("BADONE", startTime="soon", boundingBox=12, frameCount=-1, health="{")

    with pytest.raises(RecordError) as raised:
        parse_dataset(record)

    assert raised.value.field == "startTime"
    with pytest.raises(RecordError) as raised:
        parse_dataset({**record, "datasetSize": "big"})
    assert raised.value.field == "datasetSize"


@pytest.mark.parametrize("field", ["datasetId", "primaryProposalId", "primaryExperimentId", "bucket",
                                   "observingProgramExecutionId"])  # fmt: skip
@pytest.mark.parametrize(
    "value", ["/tmp/evil", "..", "a..b", "../pid_1_2", "pid/1", ".hidden", "-x", "a\x00b", "é"]
)
def test_an_id_that_becomes_a_path_part_must_be_a_safe_id(field, value):
    with pytest.raises(RecordError) as raised:
        parse_dataset(
            dataset_record("BADONE", **{field: value}) if field != "datasetId" else dataset_record(value)
        )

    assert raised.value.field == field
    assert "not an id" in str(raised.value)


@pytest.mark.parametrize("value", ["/tmp/evil", "..", "pid_1_2/.."])
def test_a_listed_row_with_an_unsafe_id_is_an_error(value):
    with pytest.raises(RecordError, match=r"primaryProposalId is .*not an id"):
        parse_listed({"datasetId": "B", "primaryProposalId": value, "updateDate": None})
    with pytest.raises(RecordError, match=r"datasetId is .*not an id"):
        parse_listed({"datasetId": value, "primaryProposalId": "pid_1_2", "updateDate": None})


def test_real_ids_are_safe():
    record = parse_dataset(dataset_record("AB.C-D_1", bucket="data-2", primaryExperimentId="eid_3_54"))

    assert (record.dataset_id, record.bucket) == ("AB.C-D_1", "data-2")


def test_a_record_without_an_id_is_an_error():
    with pytest.raises(RecordError, match=r"dataset \?: datasetId is missing"):
        parse_dataset(dataset_record(datasetId=None))
    with pytest.raises(RecordError, match="not an object"):
        parse_dataset(["not", "a", "record"])


def test_a_listed_row_parses():
    row = parse_listed(
        {"datasetId": "AAAAA", "primaryProposalId": "pid_1_2", "updateDate": "2025-01-02T03:04:05"}
    )

    assert (row.dataset_id, row.proposal_id) == ("AAAAA", "pid_1_2")
    assert row.update_date == dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert parse_listed({"datasetId": "B", "primaryProposalId": "p", "updateDate": None}).update_date is None
    with pytest.raises(RecordError, match="dataset B: primaryProposalId is missing"):
        parse_listed({"datasetId": "B", "updateDate": None})
