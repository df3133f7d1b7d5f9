"""The GraphQL client against a real local HTTP server."""

import json
import logging
import math
import re

import pytest

from ops.metadata.client import GraphQLError, MetadataClient, MetadataStoreError
from ops.metadata.records import RecordError
from tests.ops.metadata.store import Failure, dataset_record


@pytest.fixture
def store(metadata_store):
    metadata_store.add(*(dataset_record(f"DS{n:03d}") for n in range(7)))
    metadata_store.experiments = {"eid_3_54": "Sunspot", "eid_1_1": "Plage"}
    return metadata_store


def test_sends_the_query_file_with_variables(store):
    with MetadataClient() as client:
        pages = list(client.datasets_by_id(["DS001", "DS005"]))

    assert [[row["datasetId"] for row in page] for page in pages] == [["DS001", "DS005"]]
    (sent,) = store.sent
    assert sent.operation == "DatasetsById"
    assert sent.variables == {"datasetIds": ["DS001", "DS005"], "pageSize": 5000, "pageNumber": 1}


def test_records_can_come_with_their_json_text_as_sent(store):
    store.records["DS001"]["exposureTime"] = "@sent@"
    store.rewrites[b'"@sent@"'] = b"1.50E-7"

    with MetadataClient(page_size=3) as client:
        pages = list(client.datasets_by_proposal(["pid_3_54"], keep_texts=True))
        (plain,) = client.datasets_by_id(["DS002"])

    assert [len(page) for page in pages] == [3, 3, 1]
    for page in pages:
        assert len(page.texts) == len(page)
        assert [json.loads(text) for text in page.texts] == page
    assert pages[0][0]["datasetId"] == "DS000" and pages[0].texts[0].startswith("{")
    assert '"exposureTime": 1.50E-7,' in pages[0].texts[1] and pages[0][1]["exposureTime"] == 1.5e-7
    assert not hasattr(plain, "texts")


# What PostgreSQL's jsonb (or text columns) refuse, as the store might send it.
UNSTORABLE = [
    pytest.param(b"NaN", "is not JSON that PostgreSQL stores", id="NaN"),
    pytest.param(b"-Infinity", "is not JSON that PostgreSQL stores", id="Infinity"),
    pytest.param(b'"\\ud800"', "is not JSON that PostgreSQL stores", id="unpaired-surrogate"),
    pytest.param(b'"a\\u0000b"', "has a NUL character", id="NUL"),
    pytest.param(b'"\xff"', "is not JSON that PostgreSQL stores \\('utf-8' codec", id="not-UTF-8"),
]


@pytest.mark.parametrize(("sent", "problem"), UNSTORABLE)
def test_a_record_that_postgresql_would_refuse_comes_as_its_error(store, sent, problem):
    store.records["DS001"]["lightLevel"] = {"max": "@sent@"}
    store.rewrites[b'"@sent@"'] = sent

    with MetadataClient() as client:
        (page,) = client.datasets_by_proposal(["pid_3_54"], keep_texts=True)

    error = page[1]
    assert isinstance(error, RecordError) and page.texts[1] is None
    assert error.dataset_id == "DS001"
    assert re.search(f"^dataset DS001: record {problem}", str(error))
    assert [record["datasetId"] for record in page[:1] + page[2:]] == [
        "DS000",
        *[f"DS00{n}" for n in range(2, 7)],
    ]
    assert [json.loads(text) for text in page.texts[:1] + page.texts[2:]] == page[:1] + page[2:]


def test_an_unreadable_record_without_a_readable_id_is_named_by_a_question_mark(store):
    store.records["DS001"]["datasetId"] = "DS/../001"
    store.records["DS001"]["lightLevel"] = "@sent@"
    store.rewrites[b'"@sent@"'] = b"NaN"

    with MetadataClient() as client:
        (page,) = client.datasets_by_proposal(["pid_3_54"], keep_texts=True)

    (error,) = [record for record, text in zip(page, page.texts, strict=True) if text is None]
    assert error.dataset_id == "?"


def test_numbers_beyond_a_float_are_read_as_json_loads_reads_them_and_kept_as_sent(store):
    store.records["DS001"]["lightLevel"] = {"max": "@huge@", "min": "@tiny@", "med": 2**70}
    store.rewrites.update({b'"@huge@"': b"1e400", b'"@tiny@"': b"-1E400"})

    with MetadataClient() as client:
        (page,) = client.datasets_by_proposal(["pid_3_54"], keep_texts=True)

    assert page[1]["lightLevel"] == {"max": math.inf, "min": -math.inf, "med": 2**70}
    assert '"lightLevel": {"max": 1e400, "min": -1E400, "med": 1180591620717411303424}' in page.texts[1]


def test_an_escaped_backslash_before_u0000_is_no_nul(store):
    store.records["DS001"]["productId"] = "a\\u0000b"

    with MetadataClient() as client:
        (page,) = client.datasets_by_proposal(["pid_3_54"], keep_texts=True)

    assert page[1]["productId"] == "a\\u0000b"


def test_pages_until_a_short_page(store):
    with MetadataClient(page_size=3) as client:
        pages = list(client.dataset_list())

    assert [len(page) for page in pages] == [3, 3, 1]
    assert [sent.variables["pageNumber"] for sent in store.sent] == [1, 2, 3]
    assert pages[0][0] == {
        "datasetId": "DS000",
        "primaryProposalId": "pid_3_54",
        "updateDate": "2025-06-28T19:52:46.460870",
    }


def test_a_store_that_does_not_page_answers_in_one_page(store, metadata_httpserver):
    store.fail(
        "DatasetList", Failure(status=200, body={"data": {"datasetInventories": [{"datasetId": "X"}] * 5}})
    )

    with MetadataClient(page_size=3) as client:
        assert [len(page) for page in client.dataset_list()] == [5]


def test_experiment_descriptions(store):
    with MetadataClient() as client:
        assert client.experiment_descriptions() == {"eid_1_1": "Plage", "eid_3_54": "Sunspot"}


def test_the_token_is_the_authorization_header_and_never_shown(store, settings, caplog):
    settings.LEVEL2_METADATA_TOKEN = "s3cret-token"
    store.fail("DatasetList", Failure(status=500))

    with caplog.at_level(logging.DEBUG), MetadataClient() as client:
        list(client.dataset_list())
        shown = repr(client)

    assert [sent.headers.get("Authorization") for sent in store.sent] == ["s3cret-token"] * 2
    assert "s3cret" not in shown and "s3cret" not in caplog.text


def test_no_authorization_header_without_a_token(store):
    with MetadataClient() as client:
        client.experiment_descriptions()
    assert "Authorization" not in store.sent[0].headers


def test_5xx_is_retried_with_backoff_then_succeeds(store, caplog):
    store.fail("ExperimentDescriptions", Failure(status=500), Failure(status=503))

    with MetadataClient() as client:
        assert client.experiment_descriptions()["eid_1_1"] == "Plage"

    assert store.operations() == ["ExperimentDescriptions"] * 3
    assert "(HTTP 500), attempt 1 of 3" in caplog.text and "(HTTP 503), attempt 2 of 3" in caplog.text


def test_5xx_gives_up_after_the_retries(store):
    store.fail("ExperimentDescriptions", *[Failure(status=502)] * 3)

    with (
        MetadataClient() as client,
        pytest.raises(MetadataStoreError, match="after 3 attempts \\(HTTP 502\\)"),
    ):
        client.experiment_descriptions()
    assert len(store.sent) == 3


def test_backoff_grows_exponentially(store, monkeypatch):
    delays = []
    monkeypatch.setattr("ops.metadata.client.time.sleep", delays.append)
    monkeypatch.setattr("ops.metadata.client.random.uniform", lambda low, high: high)
    store.fail("ExperimentDescriptions", *[Failure(status=500)] * 3)

    with MetadataClient(retries=3, backoff_s=0.5) as client:
        client.experiment_descriptions()

    assert delays == [0.5, 1.0, 2.0]


def test_4xx_is_not_retried(store):
    store.fail("ExperimentDescriptions", Failure(status=403, body={"detail": "forbidden"}))

    with MetadataClient() as client, pytest.raises(MetadataStoreError, match="HTTP 403"):
        client.experiment_descriptions()
    assert len(store.sent) == 1


def test_a_timeout_is_retried(store):
    store.fail("ExperimentDescriptions", Failure(status=200, delay_s=0.5))

    with MetadataClient(timeout_s=0.1) as client:
        assert client.experiment_descriptions()["eid_3_54"] == "Sunspot"
    assert len(store.sent) == 2


def test_connection_errors_are_retried_then_reported(settings):
    # Nothing listens on port 9 (discard) of localhost.
    client = MetadataClient(url="http://127.0.0.1:9/graphql", retries=2, backoff_s=0.001)
    with client, pytest.raises(MetadataStoreError, match="after 3 attempts \\(ConnectionError\\)"):
        client.experiment_descriptions()


def test_graphql_errors_raise_a_clear_error_and_are_not_retried(store):
    store.fail(
        "ExperimentDescriptions",
        Failure(status=200, body={"data": None, "errors": [{"message": "column x does not exist"}]}),
    )

    with MetadataClient() as client, pytest.raises(GraphQLError) as raised:
        client.experiment_descriptions()

    assert str(raised.value) == "The metadata store refused experiment_descriptions: column x does not exist"
    assert raised.value.errors == [{"message": "column x does not exist"}]
    assert len(store.sent) == 1


def test_an_answer_that_is_not_json_is_an_error(metadata_httpserver, settings):
    metadata_httpserver.clear()
    metadata_httpserver.expect_request("/graphql").respond_with_data("<html>proxy error</html>")
    settings.LEVEL2_METADATA_URL = metadata_httpserver.url_for("/graphql")

    with MetadataClient(retries=0) as client, pytest.raises(MetadataStoreError, match="not JSON"):
        client.experiment_descriptions()


@pytest.mark.parametrize("keep_texts", [False, True])
def test_an_answer_nested_too_deeply_to_parse_is_not_json(store, keep_texts):
    store.records["DS001"]["lightLevel"] = "@deep@"
    store.rewrites[b'"@deep@"'] = b"[" * 100_000 + b"]" * 100_000

    with MetadataClient() as client, pytest.raises(MetadataStoreError, match="not JSON"):
        list(client.datasets_by_proposal(["pid_3_54"], keep_texts=keep_texts))


def test_graphql_errors_of_a_page_with_texts_raise_a_clear_error(store):
    store.fail(
        "DatasetsByProposal", Failure(status=200, body={"data": None, "errors": [{"message": "timeout"}]})
    )

    with MetadataClient() as client, pytest.raises(GraphQLError, match="datasets_by_proposal: timeout"):
        list(client.datasets_by_proposal(["pid_3_54"], keep_texts=True))


def test_create_l2_inversion_inventory_sends_its_input(store):
    params = {
        "inversionId": "inv_1",
        "primaryProposalId": "pid_3_54",
        "instrumentProgramExecutionId": "id.1.1",
        "bucket": "data",
        "asdfObjectKey": "pid_3_54/inv_1/inv_1.asdf",
        "datasetIds": ["AAAAA"],
        "spectralLines": ["Fe I (630.25 nm)"],
    }

    with MetadataClient() as client:
        created = client.create_l2_inversion_inventory(params)

    assert store.sent[0].operation == "CreateL2InversionInventory"
    assert store.sent[0].variables == {"createParams": params}
    assert store.inventories == [params]
    assert created["inversionId"] == "inv_1" and created["createDate"]


def test_l2_inversion_is_the_record_or_none(store):
    store.inversions["inv_1"] = {"inversionId": "inv_1", "bucket": "data", "datasetIds": ["AAAAA"]}

    with MetadataClient() as client:
        found = client.l2_inversion("inv_1")
        absent = client.l2_inversion("inv_2")

    assert found["inversionId"] == "inv_1" and found["datasetIds"] == ["AAAAA"]
    assert absent is None
    assert [sent.variables for sent in store.sent] == [{"inversionId": "inv_1"}, {"inversionId": "inv_2"}]


def test_the_mutation_is_not_retried(store):
    # A 5xx may come after the store made the record: sending it again could make a second.
    store.fail("CreateL2InversionInventory", Failure(status=502))

    with MetadataClient() as client, pytest.raises(MetadataStoreError, match="after 1 attempts"):
        client.create_l2_inversion_inventory({"inversionId": "inv_1"})
    assert store.operations() == ["CreateL2InversionInventory"]
