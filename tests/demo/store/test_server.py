import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
from graphql import parse

import ops.metadata
from demo.store.generator import generate_store, iso, with_changes
from demo.store.server import DemoStoreServer

NOW = datetime(2025, 11, 28, 12, 0)
QUERIES = Path(ops.metadata.__file__).parent / "queries"


class Clock:
    """The server's clock, moved by the tests."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def store():
    return generate_store(
        seed=11, datasets=300, now=NOW, arriving_programs=4, arrival_interval=timedelta(minutes=10)
    )


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
def server(store, clock):
    with DemoStoreServer(store=store, clock=clock) as server:
        yield server


def query(name: str) -> str:
    return (QUERIES / f"{name}.graphql").read_text()


def selected_fields(name: str) -> set[str]:
    operation = parse(query(name)).definitions[0]
    root = operation.selection_set.selections[0]
    return {field.name.value for field in root.selection_set.selections}


def post(server, text: str, **variables):
    response = requests.post(server.url, json={"query": text, "variables": variables}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def visible(store, at: datetime):
    return [r for r in store.datasets if r["createDate"] <= iso(at)]


def test_dataset_list_pages_through_every_visible_dataset_in_id_order(server, store):
    pages = []
    for page_number in range(1, 5):
        body = post(server, query("dataset_list"), pageSize=100, pageNumber=page_number)
        pages.append(body["data"]["datasetInventories"])

    assert [len(page) for page in pages] == [100, 100, 100, 0]
    rows = [row for page in pages for row in page]
    assert [row["datasetId"] for row in rows] == sorted(r["datasetId"] for r in visible(store, NOW))
    assert all(row.keys() == {"datasetId", "primaryProposalId", "updateDate"} for row in rows)


def test_datasets_by_proposal_answers_that_proposal_with_exactly_the_selected_fields(server, store):
    proposal_id = store.datasets[0]["primaryProposalId"]
    expected = {r["datasetId"]: r for r in visible(store, NOW) if r["primaryProposalId"] == proposal_id}

    body = post(server, query("datasets_by_proposal"), proposalIds=[proposal_id])

    rows = body["data"]["datasetInventories"]
    assert sorted(row["datasetId"] for row in rows) == sorted(expected)
    fields = selected_fields("datasets_by_proposal")
    for row in rows:
        assert row.keys() == fields
        # Fields an older record lacks come out null.
        assert row == {field: expected[row["datasetId"]].get(field) for field in fields}
    assert any("spectralLines" not in expected[row["datasetId"]] for row in rows)


def test_datasets_by_id_answers_only_known_visible_ids(server, store):
    old, newer = store.datasets[0]["datasetId"], store.datasets[10]["datasetId"]
    arriving = next(r for r in store.datasets if r["createDate"] > iso(NOW))["datasetId"]

    body = post(server, query("datasets_by_id"), datasetIds=[newer, old, "NOSUCH", arriving])

    assert [row["datasetId"] for row in body["data"]["datasetInventories"]] == sorted([old, newer])


def test_update_date_min_and_paging_by_update_date(server, store):
    since = sorted(r["updateDate"] for r in visible(store, NOW))[-25]
    text = """query Since($since: DateTime, $page: Int) {
      datasetInventories(filterParams: {updateDateMin: $since, sortColumn: "-updateDate", pageSize: 10,
                                        pageNumber: $page}) { datasetId updateDate }
    }"""

    rows = [
        row
        for page in (1, 2, 3)
        for row in post(server, text, since=since + "Z", page=page)["data"]["datasetInventories"]
    ]

    assert len(rows) == 25
    assert [row["updateDate"] for row in rows] == sorted((row["updateDate"] for row in rows), reverse=True)
    assert min(row["updateDate"] for row in rows) == since


def test_the_scans_listing_of_changes_filters_by_creation_and_update_dates(server, store):
    since = sorted(r["createDate"] for r in visible(store, NOW))[-30]

    def listed(**variables):
        rows = post(server, query("dataset_list"), **variables)["data"]["datasetInventories"]
        return {row["datasetId"] for row in rows}

    created = {r["datasetId"] for r in visible(store, NOW) if r["createDate"] >= since}
    assert listed(createDateMin=since) == created
    assert len(listed(createDateMin=since)) == 30
    assert listed(updateDateMin=since) == {
        r["datasetId"] for r in visible(store, NOW) if r["updateDate"] and r["updateDate"] >= since
    }
    recent = sorted(listed(updateDateMin=since))[:2]
    older = sorted(listed() - listed(updateDateMin=since))[:2]
    assert listed(datasetIds=recent + older, updateDateMin=since) == set(recent)


def test_the_count_is_of_every_visible_dataset(server, store, clock):
    def count():
        return post(server, query("dataset_count"))["data"]["datasetInventoriesRecordCount"]["recordCount"]

    assert count() == len(visible(store, NOW)) == 300
    clock.now = NOW + timedelta(days=1)
    assert count() == len(store.datasets) > 300


def test_arriving_datasets_appear_when_the_clock_passes_them(server, store, clock):
    def listed():
        return len(post(server, query("dataset_list"))["data"]["datasetInventories"])

    assert listed() == 300
    clock.now = NOW + timedelta(hours=1)
    later = listed()
    clock.now = NOW + timedelta(days=1)

    assert 300 < later < listed() == len(store.datasets)


def test_a_replaced_store_is_served_from_then_on(server, store):
    changed = with_changes(store, fraction=0.1, at=NOW)
    since = iso(NOW - timedelta(seconds=1))
    text = (
        "query($since: DateTime) { datasetInventories(filterParams: {updateDateMin: $since}) { datasetId } }"
    )

    before = post(server, text, since=since)["data"]["datasetInventories"]
    server.api.replace_store(changed)
    after = post(server, text, since=since)["data"]["datasetInventories"]

    assert len(after) - len(before) == 30


def test_experiment_descriptions_cover_every_experiment(server, store):
    body = post(server, query("experiment_descriptions"))

    described = {
        row["experimentId"]: row["experimentDescription"] for row in body["data"]["experimentDescriptions"]
    }
    assert {r["primaryExperimentId"] for r in store.datasets} <= described.keys()
    assert all(description.startswith("We propose to study") for description in described.values())


def test_create_l2_inversion_inventory_is_kept_and_answered(server):
    params = {
        "inversionId": "inv-1",
        "primaryProposalId": "pid_2_10",
        "instrumentProgramExecutionId": "id.1.2",
        "bucket": "data",
        "asdfObjectKey": "pid_2_10/inv-1/inv-1.asdf",
        "datasetIds": ["ABCDEF"],
        "spectralLines": ["Fe I (630.25 nm)"],
    }

    body = post(server, query("create_l2_inversion_inventory"), createParams=params)

    answer = body["data"]["createL2InversionInventory"]
    assert answer == {**params, "createDate": iso(NOW)}
    assert server.api.inversions["inv-1"]["asdfObjectKey"] == "pid_2_10/inv-1/inv-1.asdf"


def inversion_params(inversion_id: str, dataset_ids: list[str]) -> dict:
    return {
        "inversionId": inversion_id,
        "primaryProposalId": "pid_2_10",
        "instrumentProgramExecutionId": "id.1.2",
        "bucket": "data",
        "asdfObjectKey": f"pid_2_10/{inversion_id}/INV_{inversion_id}_L2_metadata.asdf",
        "datasetIds": dataset_ids,
        "spectralLines": ["Fe I (630.25 nm)"],
    }


def test_l2_inversions_lists_what_was_received(server):
    for inversion_id, dataset_ids in [("inv-1", ["AAAAA", "BBBBB"]), ("inv-2", ["CCCCC"])]:
        post(
            server,
            query("create_l2_inversion_inventory"),
            createParams=inversion_params(inversion_id, dataset_ids),
        )
    by_datasets = "query($ids: [String!]) { l2Inversions(filterParams: {datasetIds: $ids}) { inversionId } }"

    (found,) = post(server, query("l2_inversion"), inversionId="inv-2")["data"]["l2Inversions"]
    absent = post(server, query("l2_inversion"), inversionId="inv-3")["data"]["l2Inversions"]
    using = post(server, by_datasets, ids=["BBBBB", "ZZZZZ"])["data"]["l2Inversions"]
    every = post(server, "{ l2Inversions { inversionId } }")["data"]["l2Inversions"]

    assert found == {**inversion_params("inv-2", ["CCCCC"]), "createDate": iso(NOW), "updateDate": None}
    assert found.keys() == selected_fields("l2_inversion")
    assert absent == []
    assert using == [{"inversionId": "inv-1"}]
    assert every == [{"inversionId": "inv-1"}, {"inversionId": "inv-2"}]


def test_received_inversions_outlive_a_restart_when_given_a_file(store, clock, tmp_path):
    path = tmp_path / "var" / "inversions.json"
    params = inversion_params("inv-1", ["AAAAA"])
    with DemoStoreServer(store=store, clock=clock, inversions_path=path) as first:
        post(first, query("create_l2_inversion_inventory"), createParams=params)

    clock.now = NOW + timedelta(hours=1)
    with DemoStoreServer(store=store, clock=clock, inversions_path=path) as restarted:
        (listed,) = post(restarted, query("l2_inversion"), inversionId="inv-1")["data"]["l2Inversions"]
        post(restarted, query("create_l2_inversion_inventory"), createParams=params)
        (again,) = post(restarted, query("l2_inversion"), inversionId="inv-1")["data"]["l2Inversions"]

    assert listed == {**params, "createDate": iso(NOW), "updateDate": None}
    assert again == {**params, "createDate": iso(NOW), "updateDate": iso(clock.now)}
    assert sorted(p.name for p in path.parent.iterdir()) == ["inversions.json"]


def test_aliases_fragments_and_typename_are_projected(server):
    text = """{ __typename first: datasetInventories(filterParams: {pageSize: 2}) { id: datasetId ...When }
               } fragment When on DatasetInventoryViewResponse { createDate }"""

    data = post(server, text)["data"]

    assert data["__typename"] == "Query"
    assert [row.keys() for row in data["first"]] == [{"id", "createDate"}] * 2


@pytest.mark.parametrize(
    ("text", "variables", "message"),
    [
        ("{ datasetInventories { noSuchField } }", {}, "Cannot query field 'noSuchField'"),
        ("{ datasetInventories { datasetId }", {}, "Syntax Error"),
        (query("datasets_by_proposal"), {}, "proposalIds"),
        (query("datasets_by_id"), {"datasetIds": "ABCDE", "pageSize": "many"}, "pageSize"),
        ('{ datasetInventories(filterParams: {sortColumn: "boundingBox"}) { datasetId } }', {}, "sorts by"),
        ("{ datasetInventories(filterParams: {pageSize: 0}) { datasetId } }", {}, "at least 1"),
    ],
)
def test_invalid_requests_get_graphql_errors(server, text, variables, message):
    body = post(server, text, **variables)

    assert not body.get("data")
    assert message in body["errors"][0]["message"]


def test_a_body_that_is_not_json_is_a_bad_request(server):
    response = requests.post(server.url, data=b"{not json", timeout=10)

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "The request body is not JSON."


def test_only_post_to_graphql_is_answered(server):
    assert requests.get(server.url, timeout=10).status_code == 405
    assert requests.post(server.url.replace("/graphql", "/other"), json={}, timeout=10).status_code == 404


def test_datasets_reprocessed_in_the_followed_file_are_served_so_from_then_on(store, clock, tmp_path):
    followed = tmp_path / "reprocessed.json"
    dataset_id = store.datasets[0]["datasetId"]
    text = (
        "query($ids: [String!]) {"
        " datasetInventories(filterParams: {datasetIds: $ids}) { updateDate aoLocked } }"
    )
    with DemoStoreServer(store=store, clock=clock, reprocessed_path=followed) as server:

        def served():
            (record,) = post(server, text, ids=[dataset_id])["data"]["datasetInventories"]
            return record

        assert served()["updateDate"] == store.datasets[0]["updateDate"]
        followed.write_text(
            json.dumps({dataset_id: {"updateDate": iso(NOW)}, "NOSUCHID": {"updateDate": "x"}})
        )
        assert served() == {"updateDate": iso(NOW), "aoLocked": store.datasets[0]["aoLocked"]}
        followed.write_text("{not json")
        os.utime(followed, ns=(1, 1))
        assert served()["updateDate"] == store.datasets[0]["updateDate"]  # ignored, and served on
    with DemoStoreServer(store=store, clock=clock, reprocessed_path=tmp_path / "none.json") as server:
        assert post(server, text, ids=[dataset_id])["data"]["datasetInventories"][0]["aoLocked"] is not None
