import json
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pytest

from demo.store.generator import generate_store, iso, recalibrated, with_changes, with_reprocessed
from ops.metadata.records import parse_dataset
from ops.qualify import DatasetValues, qualify_program

NOW = datetime(2025, 11, 28, 12, 0)

# The keys of every record in the store's samples (older records have exactly these).
SAMPLE_KEYS = {
    "datasetId", "createDate", "updateDate", "startTime", "endTime", "exposureTime",
    "headerDataUnitCreationDate", "isEmbargoed", "embargoEndDate", "primaryExperimentId",
    "primaryProposalId", "observingProgramExecutionId", "instrumentProgramExecutionId",
    "instrumentName", "datasetSize", "frameCount", "headerVersion", "headerDocumentationUrl",
    "calibrationDocumentationUrl", "hasSpectralAxis", "hasTemporalAxis", "boundingBox",
    "stokesParameters", "wavelengthMax", "wavelengthMin", "health", "gosStatus", "aoLocked",
    "lightLevel", "polarimetricAccuracy", "friedParameter",
}  # fmt: skip
NEWER_KEYS = {"spectralLines", "bucket", "productId", "browseMovieUrl"}
ISO_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
NUMBER = r"-?\d+(?:\.\d{1,2})?"
BOUNDING_BOX = re.compile(rf"^\(({NUMBER}),({NUMBER})\),\(({NUMBER}),({NUMBER})\)$")


@pytest.fixture(scope="module")
def store():
    return generate_store(seed=7, datasets=5000, now=NOW)


def by_program(records):
    programs = defaultdict(list)
    for record in records:
        programs[record["observingProgramExecutionId"]].append(record)
    return programs


def dataset_values(record):
    parsed = parse_dataset(record)
    return DatasetValues(
        dataset_id=parsed.dataset_id,
        instrument_program_id=parsed.instrument_program_id,
        instrument=parsed.instrument_name,
        start_time=parsed.start_time,
        bounding_box=parsed.bounding_box,
        stokes_parameters=parsed.stokes_parameters,
        wavelength_min=parsed.wavelength_min,
        wavelength_max=parsed.wavelength_max,
        spectral_lines=parsed.spectral_lines,
        frame_count=parsed.frame_count,
        health_good=parsed.health_good,
        gos_open=parsed.gos_open,
        ao_locked=parsed.ao_locked,
    )


def test_same_seed_same_records_other_seed_other_records():
    first = generate_store(seed=3, datasets=500, now=NOW)
    again = generate_store(seed=3, datasets=500, now=NOW)
    other = generate_store(seed=4, datasets=500, now=NOW)

    assert json.dumps(first.datasets) == json.dumps(again.datasets)
    assert first.experiments == again.experiments
    assert json.dumps(first.datasets) != json.dumps(other.datasets)


def test_exact_counts_unique_ids_and_sorted_by_create_date(store):
    records = store.datasets

    assert len(records) == 5000
    assert len({r["datasetId"] for r in records}) == 5000
    assert len(by_program(records)) == 1000
    assert [r["createDate"] for r in records] == sorted(r["createDate"] for r in records)


def test_every_record_has_the_sample_shape_and_parses(store):
    for record in store.datasets:
        assert SAMPLE_KEYS <= record.keys() <= SAMPLE_KEYS | NEWER_KEYS, record["datasetId"]
        parse_dataset(record)
        assert re.fullmatch(r"pid_(\d+)_(\d+)", record["primaryProposalId"])
        assert re.fullmatch(r"eid_(\d+)_(\d+)", record["primaryExperimentId"])
        assert re.fullmatch(
            rf"{record['primaryExperimentId']}_op[A-Za-z0-9-]{{6}}_R\d{{3}}\.\d+\.\d+",
            record["observingProgramExecutionId"],
        )
        assert re.fullmatch(r"id\.\d+\.\d+", record["instrumentProgramExecutionId"])
        for key in ("createDate", "updateDate", "startTime", "endTime", "headerDataUnitCreationDate"):
            assert ISO_DATE.match(record[key]), (key, record[key])
        assert (
            record["startTime"] < record["endTime"] < record["createDate"] <= record["updateDate"] < iso(NOW)
        )
        assert BOUNDING_BOX.match(record["boundingBox"]), record["boundingBox"]
        health, gos = record["health"], record["gosStatus"]
        assert list(health) == ["bad", "ill", "good", "unknown"]
        assert list(gos) == ["open", "closed", "closing", "opening", "undefined"]
        assert sum(v or 0 for v in health.values()) == record["frameCount"]
        assert sum(v or 0 for v in gos.values()) == record["frameCount"]
        assert 0 not in health.values() and 0 not in gos.values(), "zero counts are null"
        assert set(record["friedParameter"]) == {"min", "p25", "med", "p75", "max"}


def test_older_records_lack_the_newer_fields_and_newer_ones_have_them(store):
    older = [r for r in store.datasets if not NEWER_KEYS & r.keys()]
    newer = [r for r in store.datasets if r.keys() >= NEWER_KEYS]

    assert len(older) + len(newer) == len(store.datasets)
    assert older and newer
    assert max(r["createDate"] for r in older) < min(r["createDate"] for r in newer)
    assert all(re.fullmatch(r"[A-Z]{5}", r["datasetId"]) for r in older)
    assert all(re.fullmatch(r"[A-Z]{6}", r["datasetId"]) for r in newer)
    assert all(r["bucket"] == "data" and r["productId"].startswith("L1-") for r in newer)


def test_visp_ips_are_mostly_three_arms_on_different_lines_and_vbi_images_in_stokes_i(store):
    ips = defaultdict(list)
    for record in store.datasets:
        ips[record["instrumentProgramExecutionId"]].append(record)
    visp = [records for records in ips.values() if records[0]["instrumentName"] == "VISP"]
    vbi = [records for records in ips.values() if records[0]["instrumentName"] == "VBI"]

    assert len(visp) > 100 and len(vbi) > 100
    assert Counter(len(records) for records in visp).most_common(1)[0][0] == 3
    for records in visp:
        if len(records) == 3:
            assert len({r["wavelengthMin"] for r in records}) == 3
    assert {r["stokesParameters"] for records in vbi for r in records} == {"I"}
    assert all(r["wavelengthMin"] == r["wavelengthMax"] for records in vbi for r in records)
    lines = {line for r in store.datasets for line in r.get("spectralLines", [])}
    assert {"Fe I (630.15 nm)", "Fe I (630.25 nm)", "Ca II (854.21 nm)", "Na I D1 (589.59 nm)"} <= lines


def test_some_programs_are_invertible_by_the_project_rules_and_most_are_not(store):
    reports = {
        program_id: qualify_program([dataset_values(r) for r in records])
        for program_id, records in by_program(store.datasets).items()
    }
    invertible = sum(report["invertible"] for report in reports.values())
    failed_rules = Counter(
        rule
        for report in reports.values()
        for ip in report["instrument_programs"]
        if ip["instrument"] == "VISP"
        for rule in ip["failed_rules"]
    )

    assert 0.1 * len(reports) < invertible < 0.5 * len(reports)
    # Every rule is what keeps some ViSP IPs out.
    assert {"on_disk", "stokes", "health", "gos", "ao", "fe_i_630"} <= failed_rules.keys(), failed_rules


def test_newest_programs_are_still_arriving(store):
    newest = [max(r["createDate"] for r in records) for records in by_program(store.datasets).values()]
    settling = [created for created in newest if created > iso(NOW - timedelta(days=7))]

    assert 0.02 * len(newest) < len(settling) < 0.2 * len(newest)


def test_arriving_programs_come_after_now_on_their_schedule():
    store = generate_store(
        seed=7, datasets=100, now=NOW, arriving_programs=6, arrival_interval=timedelta(minutes=10)
    )
    arriving = [r for r in store.datasets if r["createDate"] > iso(NOW)]
    arriving_programs = by_program(arriving)

    assert len(store.datasets) - len(arriving) == 100
    assert len(arriving_programs) == 6
    firsts = sorted(min(r["createDate"] for r in records) for records in arriving_programs.values())
    assert firsts[0] > iso(NOW + timedelta(minutes=9))
    assert firsts[-1] < iso(NOW + timedelta(minutes=70))
    assert not set(arriving_programs) & set(by_program(store.datasets[:100]))


def test_with_changes_bumps_one_percent_and_leaves_the_store_as_it_was(store):
    before = json.dumps(store.datasets)
    at = NOW + timedelta(hours=1)

    changed_store = with_changes(store, fraction=0.01, at=at)

    assert json.dumps(store.datasets) == before
    changed = [
        (old, new) for old, new in zip(store.datasets, changed_store.datasets, strict=True) if old != new
    ]
    assert len(changed) == 50
    for old, new in changed:
        assert new["datasetId"] == old["datasetId"]
        assert new["updateDate"] == iso(at) > old["updateDate"]
        assert new["aoLocked"] != old["aoLocked"]


def test_a_recalibrated_dataset_has_a_newer_update_date_and_calibration_version(store):
    record = {
        **store.datasets[0],
        "calibrationDocumentationUrl": "https://docs.dkist.nso.edu/projects/visp/en/v2.3.1/",
    }
    at = NOW + timedelta(days=3)
    changes = recalibrated(record, at=at)
    assert changes == {
        "updateDate": iso(at),
        "headerDataUnitCreationDate": iso(at),
        "calibrationDocumentationUrl": "https://docs.dkist.nso.edu/projects/visp/en/v2.4.0/",
    }
    assert "calibrationDocumentationUrl" not in recalibrated({"calibrationDocumentationUrl": None}, at=at)

    reprocessed = with_reprocessed(store, {record["datasetId"]: changes})
    assert reprocessed.datasets[0] == {**store.datasets[0], **changes}
    assert reprocessed.datasets[1] is store.datasets[1] and store.datasets[0]["updateDate"] < iso(at)
    assert with_reprocessed(store, {}) is store


def test_scales_to_twenty_thousand_datasets_in_four_thousand_programs():
    store = generate_store(seed=42, datasets=20_000, now=NOW)

    assert len(store.datasets) == 20_000
    assert len({r["datasetId"] for r in store.datasets}) == 20_000
    assert len(by_program(store.datasets)) == 4000
    assert len({r["primaryProposalId"] for r in store.datasets}) == 200
    assert {e["experimentId"] for e in store.experiments} >= {
        r["primaryExperimentId"] for r in store.datasets
    }
