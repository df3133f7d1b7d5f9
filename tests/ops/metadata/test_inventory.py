"""ensure_l2_inversion_inventory: the store's record of a published inversion, created once."""

from datetime import datetime

import pytest

from demo.store.generator import generate_store, iso
from demo.store.server import DemoStoreServer
from ops.metadata.client import MetadataClient, MetadataStoreError
from ops.metadata.inventory import ensure_l2_inversion_inventory
from tests.ops.metadata.store import Failure

CREATE_PARAMS = {
    "inversionId": "inv.PUYATW",
    "primaryProposalId": "pid_2_10",
    "instrumentProgramExecutionId": "id.1189737.1073625",
    "bucket": "data",
    "asdfObjectKey": "pid_2_10/inv.PUYATW/INV_PUYATW_L2_metadata.asdf",
    "datasetIds": ["AAAAA", "BBBBB"],
    "spectralLines": ["Fe I (630.25 nm)", "Ca II (854.21 nm)"],
}


def test_an_absent_record_is_created(metadata_store):
    with MetadataClient() as client:
        record, created = ensure_l2_inversion_inventory(client=client, create_params=CREATE_PARAMS)

    assert created
    assert metadata_store.operations() == ["L2Inversion", "CreateL2InversionInventory"]
    assert metadata_store.inventories == [CREATE_PARAMS]
    assert record == {**CREATE_PARAMS, "createDate": "2026-01-01T00:00:00.000000"}


def test_a_present_record_is_not_created_again(metadata_store):
    stored = {**CREATE_PARAMS, "createDate": "2025-12-01T10:00:00.000000", "updateDate": None}
    metadata_store.inversions[stored["inversionId"]] = stored

    with MetadataClient() as client:
        record, created = ensure_l2_inversion_inventory(client=client, create_params=CREATE_PARAMS)

    assert (record, created) == (stored, False)
    assert metadata_store.operations() == ["L2Inversion"]
    assert metadata_store.inventories == []


def test_publishing_twice_sends_one_mutation(metadata_store):
    with MetadataClient() as client:
        first = ensure_l2_inversion_inventory(client=client, create_params=CREATE_PARAMS)
        second = ensure_l2_inversion_inventory(client=client, create_params=CREATE_PARAMS)

    assert [created for _record, created in (first, second)] == [True, False]
    assert first[0]["createDate"] == second[0]["createDate"]
    assert len(metadata_store.inventories) == 1


def test_spectral_lines_are_sent_once_each_in_their_order(metadata_store):
    lines = ["Fe I (630.25 nm)", "Ca II (854.21 nm)", "Fe I (630.25 nm)", "Ca II (854.21 nm)"]

    with MetadataClient() as client:
        record, _created = ensure_l2_inversion_inventory(
            client=client, create_params={**CREATE_PARAMS, "spectralLines": lines}
        )

    assert metadata_store.inventories[0]["spectralLines"] == ["Fe I (630.25 nm)", "Ca II (854.21 nm)"]
    assert record["spectralLines"] == ["Fe I (630.25 nm)", "Ca II (854.21 nm)"]


def test_a_lost_answer_to_the_mutation_is_found_by_asking_again(metadata_store):
    metadata_store.fail("CreateL2InversionInventory", Failure(status=502, after_handling=True))

    with MetadataClient() as client:
        record, created = ensure_l2_inversion_inventory(client=client, create_params=CREATE_PARAMS)

    assert created and record["inversionId"] == "inv.PUYATW"
    # The mutation is never sent again by the client's retries: only asking tells.
    assert metadata_store.operations() == ["L2Inversion", "CreateL2InversionInventory", "L2Inversion"]


def test_a_failed_mutation_without_a_record_is_an_error(metadata_store):
    metadata_store.fail("CreateL2InversionInventory", Failure(status=503))

    with MetadataClient() as client, pytest.raises(MetadataStoreError, match="HTTP 503"):
        ensure_l2_inversion_inventory(client=client, create_params=CREATE_PARAMS)

    assert metadata_store.operations() == ["L2Inversion", "CreateL2InversionInventory", "L2Inversion"]
    assert metadata_store.inventories == []


def test_against_the_demo_store_the_record_is_made_once():
    now = datetime(2025, 11, 28, 12, 0)
    with DemoStoreServer(store=generate_store(seed=3, datasets=20, now=now), clock=lambda: now) as server:
        with MetadataClient(url=server.url) as client:
            results = [
                ensure_l2_inversion_inventory(client=client, create_params=CREATE_PARAMS) for _ in range(2)
            ]
        kept = server.api.inversions

    assert [created for _record, created in results] == [True, False]
    assert list(kept) == ["inv.PUYATW"]
    # Never replaced by a second mutation.
    assert kept["inv.PUYATW"]["updateDate"] is None
    assert results[1][0] == {**CREATE_PARAMS, "createDate": iso(now), "updateDate": None}
