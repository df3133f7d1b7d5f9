"""What a scan lists (ops.scan.listing): a re-scan only what changed since the newest date
stored, every dataset when that could miss one; against a store over real HTTP."""

import datetime as dt

import pytest

import ops.scan.listing
from ops.models import Dataset, Scan, ScanError
from ops.scan import run_scan
from tests.ops.metadata.store import Failure, dataset_record

OLD_OP = "eid_2_7_opOld_R001.3.3"
NEW_OP = "eid_3_54_opNew_R001.1.1"
OLD_DATE = "2025-01-10T00:00:00.000000"
NEWEST_DATE = "2025-06-28T19:52:46.460870"
# The newest date stored, less the overlap of an hour (LEVEL2_SCAN_LISTING_OVERLAP_S).
SINCE = "2025-06-28T18:52:46.460870"


def old_record(dataset_id, **overrides):
    """A dataset of the older proposal, created and updated long before the newest."""
    fields = {
        "primaryProposalId": "pid_2_7",
        "primaryExperimentId": "eid_2_7",
        "observingProgramExecutionId": OLD_OP,
        "instrumentProgramExecutionId": "id.3.3",
        "createDate": "2025-01-01T00:00:00.000000",
        "updateDate": OLD_DATE,
    }
    return dataset_record(dataset_id, **{**fields, **overrides})


@pytest.fixture
def store(metadata_store, settings):
    settings.LEVEL2_SCAN_LISTING_OVERLAP_S = 3600
    settings.LEVEL2_SCAN_FULL_LISTING_S = 86400
    metadata_store.add(
        old_record("OLD01"),
        old_record("OLD02"),
        dataset_record(
            "NEW01",
            observingProgramExecutionId=NEW_OP,
            instrumentProgramExecutionId="id.1.1",
            updateDate=NEWEST_DATE,
        ),
    )
    return metadata_store


def counts(scan):
    return (scan.new_count, scan.changed_count, scan.unchanged_count, scan.vanished_count)


def listing_filters(store):
    """The filters of each DatasetList request sent (paging left out)."""
    return [
        {name: value for name, value in sent.variables.items() if not name.startswith("page")}
        for sent in store.sent
        if sent.operation == "DatasetList"
    ]


def test_a_rescan_lists_and_fetches_only_what_changed_since_the_newest_stored_date(db, store):
    first = run_scan(trigger=Scan.Trigger.COMMAND)
    store.sent.clear()
    store.records["OLD01"].update(updateDate="2025-06-29T00:00:00.000000", frameCount=500)

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert first.listed_since is None
    assert scan.listed_since == dt.datetime(2025, 6, 28, 18, 52, 46, 460870, tzinfo=dt.UTC)
    assert store.operations() == ["DatasetCount", "DatasetList", "DatasetList", "DatasetsById"]
    assert listing_filters(store) == [{"updateDateMin": SINCE}, {"createDateMin": SINCE}]
    # Only OLD01 of its proposal was listed: fetched by id, not the whole proposal.
    assert store.sent[3].variables["datasetIds"] == ["OLD01"]
    assert counts(scan) == (0, 1, 2, 0)
    assert Dataset.objects.get(pk="OLD01").frame_count == 500
    assert scan.changed_program_ids == (OLD_OP,)


def test_a_dataset_the_store_never_updated_is_listed_by_its_creation(db, store):
    run_scan(trigger=Scan.Trigger.COMMAND)
    store.add(old_record("OLD03", createDate="2025-06-30T00:00:00.000000", updateDate=None))

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert scan.listed_since is not None
    assert counts(scan) == (1, 0, 3, 0)
    assert Dataset.objects.filter(pk="OLD03").exists()


def test_a_vanished_dataset_makes_the_counts_differ_and_every_dataset_is_listed(db, store):
    run_scan(trigger=Scan.Trigger.COMMAND)
    store.sent.clear()
    del store.records["OLD02"]

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert store.operations()[:4] == ["DatasetCount", "DatasetList", "DatasetList", "DatasetList"]
    assert listing_filters(store)[2] == {}
    assert scan.listed_since is None
    assert counts(scan) == (0, 0, 2, 1)
    assert Dataset.objects.get(pk="OLD02").vanished_at is not None


def test_a_dataset_back_with_its_old_dates_is_seen(db, store):
    run_scan(trigger=Scan.Trigger.COMMAND)
    gone = store.records.pop("OLD02")
    run_scan(trigger=Scan.Trigger.COMMAND)
    store.add(gone)

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    # Neither listed (its dates are old) nor stored live: only the count tells.
    assert scan.listed_since is None
    assert counts(scan) == (0, 1, 2, 0)
    assert Dataset.objects.get(pk="OLD02").vanished_at is None


def test_an_unreadable_row_is_an_error_again_without_listing_every_dataset(db, store):
    store.add(old_record("BAD01", updateDate="whenever"))
    first = run_scan(trigger=Scan.Trigger.COMMAND)
    store.sent.clear()

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert first.error_count == scan.error_count == 1
    assert scan.errors.get().record == "BAD01"
    assert scan.listed_since is not None
    assert {"datasetIds": ["BAD01"]} in listing_filters(store)
    assert counts(scan) == (0, 0, 3, 0)


def test_a_record_that_failed_is_listed_again_by_id_and_stored_once_mended(db, store):
    store.add(old_record("BAD01", frameCount=-3))
    first = run_scan(trigger=Scan.Trigger.COMMAND)
    assert first.errors.get().record == "BAD01"
    # Mended without a newer date: only its error brings it back.
    store.records["BAD01"]["frameCount"] = 3

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert scan.listed_since is not None
    assert (scan.error_count, counts(scan)) == (0, (1, 0, 3, 0))
    assert Dataset.objects.get(pk="BAD01").frame_count == 3


def test_a_proposal_the_store_did_not_answer_for_is_listed_again(db, store, monkeypatch):
    # One proposal per batch; the first (pid_2_7, the older) fails on every attempt.
    monkeypatch.setattr(ops.scan.listing, "BATCH_DATASETS", 1)
    store.fail("DatasetsByProposal", *[Failure(status=500)] * 3)
    first = run_scan(trigger=Scan.Trigger.COMMAND)
    assert (first.status, first.errors.get().record) == ("succeeded", "pid_2_7")
    assert set(Dataset.objects.values_list("id", flat=True)) == {"NEW01"}
    store.sent.clear()

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert scan.listed_since is not None
    assert {"proposalIds": ["pid_2_7"]} in listing_filters(store)
    assert counts(scan) == (2, 0, 1, 0)
    assert set(Dataset.objects.values_list("id", flat=True)) == {"NEW01", "OLD01", "OLD02"}


def test_too_many_errors_to_list_again_list_every_dataset(db, store, monkeypatch):
    store.add(old_record("BAD01", frameCount=-3), old_record("BAD02", frameCount=-3))
    first = run_scan(trigger=Scan.Trigger.COMMAND)
    # Two errors of one record are one record to list again.
    ScanError.objects.create(scan=first, record="BAD01", message="again")
    monkeypatch.setattr(ops.scan.listing, "RETRY_RECORDS_MAX", 2)
    assert run_scan(trigger=Scan.Trigger.COMMAND).listed_since is not None

    monkeypatch.setattr(ops.scan.listing, "RETRY_RECORDS_MAX", 1)
    assert run_scan(trigger=Scan.Trigger.COMMAND).listed_since is None


def test_after_a_failed_scan_every_dataset_is_listed(db, store, settings):
    run_scan(trigger=Scan.Trigger.COMMAND)
    settings.LEVEL2_METADATA_RETRIES = 0
    store.records["OLD01"]["updateDate"] = "2025-07-01T00:00:00.000000"
    store.fail("DatasetCount", Failure(status=503))
    failed = run_scan(trigger=Scan.Trigger.COMMAND)
    assert failed.status == Scan.Status.FAILED
    store.sent.clear()

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert scan.listed_since is None
    assert listing_filters(store) == [{}]
    assert counts(scan) == (0, 1, 2, 0)


def test_every_dataset_is_listed_once_the_last_full_listing_is_old_enough(db, store, settings):
    first = run_scan(trigger=Scan.Trigger.COMMAND)
    assert run_scan(trigger=Scan.Trigger.COMMAND).listed_since is not None
    # A listing of changes is not a full one: a day after the first, every dataset again.
    Scan.objects.filter(pk=first.pk).update(started_at=first.started_at - dt.timedelta(seconds=86401))

    assert run_scan(trigger=Scan.Trigger.COMMAND).listed_since is None
    assert run_scan(trigger=Scan.Trigger.COMMAND).listed_since is not None
    settings.LEVEL2_SCAN_FULL_LISTING_S = 0
    assert run_scan(trigger=Scan.Trigger.COMMAND).listed_since is None


@pytest.mark.parametrize("ahead", [dt.timedelta(minutes=2), dt.timedelta(days=3000 * 365)])
def test_a_date_beyond_our_clock_does_not_move_the_listing_start(db, store, ahead):
    # Soon after our clock (the store's clock ahead of ours, or a bad record) or far after it.
    future = (dt.datetime.now(dt.UTC) + ahead).replace(tzinfo=None)
    store.add(old_record("FUTURE", updateDate=future.isoformat(timespec="microseconds")))
    run_scan(trigger=Scan.Trigger.COMMAND)
    store.sent.clear()

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert listing_filters(store)[0] == {"updateDateMin": SINCE}
    assert counts(scan) == (0, 0, 4, 0)


@pytest.mark.parametrize("count", ['"3"', "true", "-1", "null", "3.0"])
def test_a_count_that_is_not_a_count_fails_the_scan_with_its_reason(db, store, count):
    run_scan(trigger=Scan.Trigger.COMMAND)
    store.rewrites = {b'"recordCount": 3': f'"recordCount": {count}'.encode()}

    scan = run_scan(trigger=Scan.Trigger.COMMAND)

    assert scan.status == Scan.Status.FAILED
    assert "dataset_count" in scan.message and "not a count" in scan.message
