"""Raw metadata-store records → typed records, one at a time.

A record that cannot be stored raises RecordError naming the dataset and the field, so the
scan records that one error and saves the others. Absent optional fields parse; null counts
mean 0. The store's datetimes are naive ISO strings in UTC.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any


class RecordError(ValueError):
    """One record that cannot be stored as it is."""

    def __init__(self, dataset_id: str, field: str, problem: str):
        self.dataset_id = dataset_id
        self.field = field
        super().__init__(f"dataset {dataset_id}: {field} {problem}")


@dataclass(frozen=True, slots=True)
class ListedDataset:
    """One row of the cheap list: enough to tell whether the full record is needed."""

    dataset_id: str
    proposal_id: str
    update_date: dt.datetime | None


@dataclass(frozen=True, slots=True)
class DatasetRecord:
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
        if not isinstance(raw, dict):
            raise RecordError("?", "record", f"is {type(raw).__name__}, not an object")
        self.raw = raw
        dataset_id = raw.get("datasetId")
        self.dataset_id = dataset_id if isinstance(dataset_id, str) and dataset_id else "?"

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

    def datetime(self, field: str, *, required: bool = False) -> dt.datetime | None:
        value = self.raw.get(field)
        if value is None:
            if required:
                raise self.error(field, "is missing")
            return None
        try:
            parsed = dt.datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise self.error(field, f"is {value!r}, not an ISO date and time") from None
        return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)

    def number(self, field: str) -> float | None:
        value = self.raw.get(field)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(field, f"is {value!r}, not a number")
        return float(value)

    def count(self, field: str) -> int:
        """A frame count: null means 0."""
        return self._count(field, self.raw.get(field))

    def _count(self, field: str, value: Any) -> int:
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(field, f"is {value!r}, not a count")
        return value

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


def parse_listed(raw: Any) -> ListedDataset:
    """One row of the cheap list ``{datasetId primaryProposalId updateDate}``."""
    reader = _Reader(raw)
    return ListedDataset(
        dataset_id=reader.text("datasetId", max_length=64, required=True),
        proposal_id=reader.text("primaryProposalId", max_length=64, required=True),
        update_date=reader.datetime("updateDate"),
    )


def parse_dataset(raw: Any) -> DatasetRecord:
    """One full ``datasetInventories`` record. Lengths match the Dataset model's columns."""
    reader = _Reader(raw)
    dataset_size = reader.number("datasetSize")
    return DatasetRecord(
        dataset_id=reader.text("datasetId", max_length=64, required=True),
        proposal_id=reader.text("primaryProposalId", max_length=64, required=True),
        experiment_id=reader.text("primaryExperimentId", max_length=64),
        program_id=reader.text("observingProgramExecutionId", max_length=128, required=True),
        instrument_program_id=reader.text("instrumentProgramExecutionId", max_length=128, required=True),
        instrument_name=reader.text("instrumentName", max_length=32),
        create_date=reader.datetime("createDate", required=True),
        update_date=reader.datetime("updateDate"),
        start_time=reader.datetime("startTime"),
        end_time=reader.datetime("endTime"),
        bounding_box=reader.text("boundingBox", max_length=200),
        stokes_parameters=reader.text("stokesParameters", max_length=16),
        wavelength_min=reader.number("wavelengthMin"),
        wavelength_max=reader.number("wavelengthMax"),
        spectral_lines=reader.text_list("spectralLines", max_length=64),
        frame_count=reader.count("frameCount"),
        health_good=reader.block_count("health", "good"),
        gos_open=reader.block_count("gosStatus", "open"),
        ao_locked=reader.count("aoLocked"),
        light_level=reader.mapping("lightLevel"),
        fried_parameter=reader.mapping("friedParameter"),
        polarimetric_accuracy=reader.mapping("polarimetricAccuracy"),
        exposure_time=reader.number("exposureTime"),
        # The store reports GB as a float; the column keeps whole GB.
        dataset_size=round(dataset_size) if dataset_size is not None else None,
        is_embargoed=reader.flag("isEmbargoed"),
        embargo_end_date=reader.datetime("embargoEndDate"),
        bucket=reader.text("bucket", max_length=64),
        product_id=reader.text("productId", max_length=128),
        browse_movie_url=reader.text("browseMovieUrl", max_length=500),
        raw=raw,
    )
