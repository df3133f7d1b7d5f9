"""Raw metadata-store records → typed records, one at a time.

A record that cannot be stored raises RecordError naming the dataset and the field, so the
scan records that one error and saves the others. Absent optional fields parse; null counts
mean 0. The store's datetimes are naive ISO strings in UTC.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

import msgspec

# Ids that the service joins into paths (Level 1 folders, scratch, the archive's keys): one
# safe path part each, so that a record cannot point a path elsewhere ("/etc", "..").
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


# The largest values the columns hold (PostgreSQL integer, bigint): a record beyond them is
# that record's error, not a failed write of its whole batch.
MAX_COUNT = 2**31 - 1
MAX_SIZE = 2**63 - 1


def is_safe_id(value: str) -> bool:
    """Whether ``value`` may be one part of a path: SAFE_ID, and never ``..``."""
    return SAFE_ID.fullmatch(value) is not None and ".." not in value


class RecordError(ValueError):
    """One record that cannot be stored as it is."""

    def __init__(self, dataset_id: str, field: str, problem: str):
        self.dataset_id = dataset_id
        self.field = field
        super().__init__(f"dataset {dataset_id}: {field} {problem}")


# The scan makes one of these per dataset: msgspec Structs, made in C, cost a tenth of a
# frozen dataclass, whose __init__ sets each field through object.__setattr__.
class ListedDataset(msgspec.Struct, frozen=True):
    """One row of the cheap list: enough to tell whether the full record is needed."""

    dataset_id: str
    proposal_id: str
    update_date: dt.datetime | None


class DatasetRecord(msgspec.Struct, frozen=True):
    """One full dataset record, typed for the Dataset model (plus the raw record)."""

    dataset_id: str
    proposal_id: str
    experiment_id: str
    program_id: str
    instrument_program_id: str
    instrument_name: str
    create_date: dt.datetime
    # None when the store has never updated the record; the compare key of the scan.
    update_date: dt.datetime | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    bounding_box: str
    stokes_parameters: str
    wavelength_min: float | None
    wavelength_max: float | None
    spectral_lines: list[str] | None
    frame_count: int
    health_good: int
    gos_open: int
    ao_locked: int
    light_level: dict[str, Any] | None
    fried_parameter: dict[str, Any] | None
    polarimetric_accuracy: dict[str, Any] | None
    exposure_time: float | None
    dataset_size: int | None
    is_embargoed: bool
    embargo_end_date: dt.datetime | None
    bucket: str
    product_id: str
    browse_movie_url: str
    raw: dict[str, Any]


class _Reader:
    """Typed access to one raw record's fields, raising RecordError on a bad one."""

    def __init__(self, raw: Any):
        if isinstance(raw, RecordError):
            # A record that the client could not read comes as its error (client.RecordList).
            raise raw
        if not isinstance(raw, dict):
            raise RecordError("?", "record", f"is {type(raw).__name__}, not an object")
        self.raw = raw
        dataset_id = raw.get("datasetId")
        # Cut: the id names the scan's error (a column of 200), whatever length the store sent.
        self.dataset_id = dataset_id[:100] if isinstance(dataset_id, str) and dataset_id else "?"

    def error(self, field: str, problem: str) -> RecordError:
        return RecordError(self.dataset_id, field, problem)

    def text(self, field: str, *, max_length: int, required: bool = False) -> str:
        value = self.raw.get(field)
        if value is None or value == "":
            if required:
                raise self.error(field, "is missing")
            return ""
        if not isinstance(value, str):
            raise self.error(field, f"is {value!r}, not text")
        if len(value) > max_length:
            raise self.error(field, f"is {len(value)} characters long, more than {max_length}")
        return value

    def path_id(self, field: str, *, max_length: int, required: bool = False) -> str:
        """Text that becomes a path part: is_safe_id or empty."""
        value = self.text(field, max_length=max_length, required=required)
        if value and not is_safe_id(value):
            raise self.error(
                field,
                f"is {value[:80]!r}, not an id (letters, digits and _ . -, no '..', not starting with them)",
            )
        return value

    def datetime(self, field: str, *, required: bool = False) -> dt.datetime | None:
        value = self.raw.get(field)
        if value is None:
            if required:
                raise self.error(field, "is missing")
            return None
        try:
            return _in_utc(value)
        except (TypeError, ValueError):
            raise self.error(field, f"is {value!r}, not an ISO date and time") from None
        except OverflowError:
            raise self.error(field, f"is {value!r}, not an ISO date and time in UTC's range") from None

    def number(self, field: str) -> float | None:
        value = self.raw.get(field)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(field, f"is {value!r}, not a number")
        try:
            return float(value)
        except OverflowError:  # an integer (the JSON had no exponent) beyond a float
            raise self.error(field, f"is {value!r}, beyond a float's range") from None

    def count(self, field: str) -> int:
        """A frame count: null means 0."""
        return self._count(field, self.raw.get(field))

    def _count(self, field: str, value: Any) -> int:
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            raise self.error(field, f"is {value!r}, not a count")
        return value

    def size(self, field: str) -> int | None:
        """A size in whole units: a finite number the column holds."""
        value = self.number(field)
        if value is None:
            return None
        if not math.isfinite(value) or not 0 <= round(value) <= MAX_SIZE:
            raise self.error(field, f"is {value!r}, not a size")
        return round(value)

    def mapping(self, field: str) -> dict[str, Any] | None:
        """A JSON scalar block (health, lightLevel …); some servers send it as a JSON string."""
        value = self.raw.get(field)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise self.error(field, f"is {value[:40]!r}, not JSON") from None
        if value is not None and not isinstance(value, dict):
            raise self.error(field, f"is {value!r}, not an object")
        return value

    def block_count(self, field: str, key: str) -> int:
        """One count of a block like ``health`` (keys GOOD or good: both are seen)."""
        block = self.mapping(field) or {}
        value = next((v for k, v in block.items() if k.lower() == key), None)
        return self._count(f"{field}.{key}", value)

    def flag(self, field: str) -> bool:
        value = self.raw.get(field)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.error(field, f"is {value!r}, not true or false")
        return value

    def text_list(self, field: str, *, max_length: int) -> list[str] | None:
        value = self.raw.get(field)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.error(field, f"is {value!r}, not a list of text")
        if any(len(item) > max_length for item in value):
            raise self.error(field, f"has an item longer than {max_length} characters")
        return value


# How parse_dataset reads each field: the kind of value, and its maximum length (text),
# its key (a count in a block) or whether it is required. One entry per DatasetRecord field,
# in the dataclass's order (raw, the last, is added as it is).
_TEXT, _DATETIME, _NUMBER, _SIZE, _COUNT, _BLOCK_COUNT, _MAPPING, _FLAG, _TEXT_LIST, _PATH_ID = range(10)
_DATASET_FIELDS: tuple[tuple[str, int, Any, bool], ...] = (
    ("datasetId", _PATH_ID, 64, True),
    ("primaryProposalId", _PATH_ID, 64, True),
    ("primaryExperimentId", _PATH_ID, 64, False),
    ("observingProgramExecutionId", _PATH_ID, 128, True),
    ("instrumentProgramExecutionId", _TEXT, 128, True),
    ("instrumentName", _TEXT, 32, False),
    ("createDate", _DATETIME, None, True),
    ("updateDate", _DATETIME, None, False),
    ("startTime", _DATETIME, None, False),
    ("endTime", _DATETIME, None, False),
    ("boundingBox", _TEXT, 200, False),
    ("stokesParameters", _TEXT, 16, False),
    ("wavelengthMin", _NUMBER, None, False),
    ("wavelengthMax", _NUMBER, None, False),
    ("spectralLines", _TEXT_LIST, 64, False),
    ("frameCount", _COUNT, None, False),
    ("health", _BLOCK_COUNT, "good", False),
    ("gosStatus", _BLOCK_COUNT, "open", False),
    ("aoLocked", _COUNT, None, False),
    ("lightLevel", _MAPPING, None, False),
    ("friedParameter", _MAPPING, None, False),
    ("polarimetricAccuracy", _MAPPING, None, False),
    ("exposureTime", _NUMBER, None, False),
    # The store reports GB as a float; the column keeps whole GB.
    ("datasetSize", _SIZE, None, False),
    ("isEmbargoed", _FLAG, None, False),
    ("embargoEndDate", _DATETIME, None, False),
    ("bucket", _PATH_ID, 64, False),
    ("productId", _TEXT, 128, False),
    ("browseMovieUrl", _TEXT, 500, False),
)
assert len(_DATASET_FIELDS) + 1 == len(DatasetRecord.__struct_fields__)

_UTC = dt.UTC
_safe_id_match = SAFE_ID.fullmatch
_fromisoformat = dt.datetime.fromisoformat


def _in_utc(value: str) -> dt.datetime:
    """An ISO date and time in UTC, a naive one taken as UTC; ValueError if it is none,
    OverflowError if it is beyond datetime's range in UTC (year 1 at +05:00).

    A naive value is parsed again with "+00:00" appended: both parses cost a fifth of
    replace(tzinfo=UTC). Only after it parsed alone ("2025-04-02T22:" parses appended) and
    if the zone came back (a date alone comes back naive)."""
    parsed = _fromisoformat(value)
    if parsed.tzinfo is not None:
        return parsed.astimezone(_UTC)
    try:
        in_utc = _fromisoformat(value + "+00:00")
    except ValueError:
        return parsed.replace(tzinfo=_UTC)
    return in_utc if in_utc.tzinfo is _UTC else parsed.replace(tzinfo=_UTC)


def _read_slowly(reader: _Reader, key: str, kind: int, argument: Any, required: bool) -> Any:
    """One field that parse_dataset's quick checks did not accept: the _Reader's full
    conversion, which gives the same value or raises the field's RecordError."""
    if kind == _TEXT:
        return reader.text(key, max_length=argument, required=required)
    if kind == _PATH_ID:
        return reader.path_id(key, max_length=argument, required=required)
    if kind == _DATETIME:
        return reader.datetime(key, required=required)
    if kind == _NUMBER:
        return reader.number(key)
    if kind == _SIZE:
        return reader.size(key)
    if kind == _COUNT:
        return reader.count(key)
    if kind == _BLOCK_COUNT:
        return reader.block_count(key, argument)
    if kind == _MAPPING:
        return reader.mapping(key)
    if kind == _FLAG:
        return reader.flag(key)
    return reader.text_list(key, max_length=argument)


def parse_listed(raw: Any) -> ListedDataset:
    """One row of the cheap list ``{datasetId primaryProposalId updateDate}``."""
    if type(raw) is dict:
        dataset_id = raw.get("datasetId")
        proposal_id = raw.get("primaryProposalId")
        update_date = raw.get("updateDate")
        if (
            type(dataset_id) is str
            and 0 < len(dataset_id) <= 64
            and type(proposal_id) is str
            and 0 < len(proposal_id) <= 64
            and is_safe_id(dataset_id)
            and is_safe_id(proposal_id)
        ):
            if update_date is None:
                return ListedDataset(dataset_id, proposal_id, None)
            if type(update_date) is str:
                try:
                    return ListedDataset(dataset_id, proposal_id, _in_utc(update_date))
                except (ValueError, OverflowError):
                    pass
    reader = _Reader(raw)
    return ListedDataset(
        dataset_id=reader.path_id("datasetId", max_length=64, required=True),
        proposal_id=reader.path_id("primaryProposalId", max_length=64, required=True),
        update_date=reader.datetime("updateDate"),
    )


def _fields_of(*kinds: int) -> tuple[tuple[int, str, Any, bool], ...]:
    """The fields of these kinds, each with its position in _DATASET_FIELDS."""
    return tuple(
        (index, key, argument, required)
        for index, (key, kind, argument, required) in enumerate(_DATASET_FIELDS)
        if kind in kinds
    )


# parse_dataset's passes, one per kind of field (text and path ids in one: is_path tells).
_TEXT_FIELDS = tuple(
    (index, key, argument, required, _DATASET_FIELDS[index][1] == _PATH_ID)
    for index, key, argument, required in _fields_of(_TEXT, _PATH_ID)
)
_DATETIME_FIELDS = _fields_of(_DATETIME)
_NUMBER_FIELDS = _fields_of(_NUMBER)
_SIZE_FIELDS = _fields_of(_SIZE)
_COUNT_FIELDS = _fields_of(_COUNT)
_BLOCK_COUNT_FIELDS = _fields_of(_BLOCK_COUNT)
_MAPPING_FIELDS = _fields_of(_MAPPING)
_FLAG_FIELDS = _fields_of(_FLAG)
_TEXT_LIST_FIELDS = _fields_of(_TEXT_LIST)


def parse_dataset(raw: Any) -> DatasetRecord:
    """One full ``datasetInventories`` record. Lengths match the Dataset model's columns.

    One pass per kind of field, with quick checks for the values the store sends (a pass
    over every field, asking each its kind, cost the scan twice as much). The fields that a
    quick check does not accept (absent required fields, JSON-string blocks, bad values) go
    to the _Reader afterwards, in _DATASET_FIELDS' order: it converts each or raises the
    field's RecordError, so a record with several bad fields names the first, as one pass
    in that order would. A field a quick check accepts is one the _Reader accepts too.
    """
    reader = None if type(raw) is dict else _Reader(raw)  # raises unless a dict
    get = raw.get
    size = get("datasetSize")
    if size is not None and type(size) is not float and type(size) is not int:
        # Checked first, as it always was: a record with several bad fields names this one.
        reader = _Reader(raw)
        reader.number("datasetSize")
    # In DatasetRecord's order, raw last; None is the value of absent optional dates,
    # numbers, sizes, mappings and text lists.
    values: list[Any] = [None] * len(_DATASET_FIELDS) + [raw]
    unread: list[int] = []
    for index, key, max_length, required, is_path in _TEXT_FIELDS:
        value = get(key)
        if (
            type(value) is str
            and 0 < len(value) <= max_length
            and (not is_path or (_safe_id_match(value) is not None and ".." not in value))
        ):
            values[index] = value
        elif value is None and not required:
            values[index] = ""
        else:
            unread.append(index)
    for index, key, _, required in _DATETIME_FIELDS:
        value = get(key)
        if type(value) is str:
            try:
                values[index] = _in_utc(value)
            except (ValueError, OverflowError):
                unread.append(index)
        elif value is not None or required:
            unread.append(index)
    for index, key, _, _ in _NUMBER_FIELDS:
        value = get(key)
        if type(value) is float or type(value) is int:
            try:
                values[index] = float(value)
            except OverflowError:  # the _Reader's error, in field order
                unread.append(index)
        elif value is not None:
            unread.append(index)
    for index, key, _, _ in _SIZE_FIELDS:
        value = get(key)
        if type(value) is int and 0 <= value <= MAX_SIZE:
            values[index] = value
        elif type(value) is float and 0 <= value < 9e18:  # NaN fails this too
            values[index] = round(value)
        elif value is not None:
            unread.append(index)
    for index, key, _, _ in _COUNT_FIELDS:
        value = get(key)
        if type(value) is int and 0 <= value <= MAX_COUNT:
            values[index] = value
        elif value is None:
            values[index] = 0
        else:
            unread.append(index)
    for index, key, block_key_sought, _ in _BLOCK_COUNT_FIELDS:
        value = get(key)
        if value is None:
            values[index] = 0
            continue
        if type(value) is dict:
            count = None
            for block_key, block_value in value.items():
                if block_key.lower() == block_key_sought:
                    count = block_value
                    break
            if count is None:
                values[index] = 0
                continue
            if type(count) is int and 0 <= count <= MAX_COUNT:
                values[index] = count
                continue
        unread.append(index)
    for index, key, _, _ in _MAPPING_FIELDS:
        value = get(key)
        if type(value) is dict:
            values[index] = value
        elif value is not None:
            unread.append(index)
    for index, key, _, _ in _FLAG_FIELDS:
        value = get(key)
        if type(value) is bool:
            values[index] = value
        elif value is None:
            values[index] = False
        else:
            unread.append(index)
    for index, key, max_length, _ in _TEXT_LIST_FIELDS:
        value = get(key)
        if type(value) is list:
            for item in value:
                if type(item) is not str or len(item) > max_length:
                    unread.append(index)
                    break
            else:
                values[index] = value
        elif value is not None:
            unread.append(index)
    if unread:
        if reader is None:
            reader = _Reader(raw)
        for index in sorted(unread):
            values[index] = _read_slowly(reader, *_DATASET_FIELDS[index])
    return DatasetRecord(*values)
