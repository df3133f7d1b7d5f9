"""The metadata store's GraphQL API over HTTP POST.

Queries live in ``queries/*.graphql`` (validated against ``schema.graphql`` by the tests).
Connection errors, timeouts and 5xx answers are retried with exponential backoff and
jitter; 4xx answers and GraphQL ``errors`` are not, since asking again gives the same.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import cache
from json.decoder import JSONArray
from json.scanner import py_make_scanner
from pathlib import Path
from typing import Any

import msgspec
import requests
from django.conf import settings

from ops import json_text
from ops.metadata.records import RecordError

log = logging.getLogger(__name__)

QUERIES_DIR = Path(__file__).parent / "queries"

# Rows per datasetInventories page: large enough to keep round trips few, small enough that
# one page of full records stays a few megabytes.
PAGE_SIZE = 5000


class MetadataStoreError(Exception):
    """The metadata store could not be reached or refused a request."""


class GraphQLError(MetadataStoreError):
    """The store answered, with GraphQL ``errors`` instead of (all of) the data."""

    def __init__(self, operation: str, errors: list[dict[str, Any]]):
        self.operation = operation
        self.errors = errors
        messages = "; ".join(str(error.get("message", error)) for error in errors)
        super().__init__(f"The metadata store refused {operation}: {messages}")


class RecordList(list):
    """A JSON array of records as parsed, with each record's JSON text as the store sent it
    (``texts``, in the same order): the scan stores a record's text as it came instead of
    serialising the parsed record again, which cost it more than parsing the record.

    A record whose text PostgreSQL's jsonb would refuse (NaN, an unpaired surrogate, a NUL,
    bytes that are not UTF-8) is its RecordError instead, with no text: parse_dataset raises
    it, so that it is that record's error and not a failed batch."""

    __slots__ = ("texts",)


class _RecordPage(msgspec.Struct):
    """An answer whose data are lists, each element kept as its JSON text (msgspec.Raw)."""

    data: dict[str, list[msgspec.Raw]]
    errors: Any = None


_decode_record_page = msgspec.json.Decoder(_RecordPage).decode
# \u0000 not itself escaped (\\u0000 is a backslash, then "u0000"): jsonb refuses it.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# To name the error of a record that cannot be read.
_DATASET_ID = re.compile(rb'"datasetId"\s*:\s*"([A-Za-z0-9_.-]{1,100})"')


def store_datetime(moment: datetime | None) -> str | None:
    """A time as the store writes its own: naive ISO in UTC, with microseconds."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def _record_list(elements: Iterable[bytes | msgspec.Raw]) -> RecordList:
    """The records of one array from their JSON texts (UTF-8): parsed, or their RecordError."""
    records = RecordList()
    records.texts = texts = []
    for element in elements:
        try:
            text = str(element, "utf-8")
            record = json_text.loads(element)
        except ValueError as error:
            problem = f"is not JSON that PostgreSQL stores ({error})"
        else:
            if "\\u0000" not in text or _NUL_ESCAPE.search(text) is None:
                records.append(record)
                texts.append(text)
                continue
            problem = "has a NUL character (\\u0000), which PostgreSQL does not store"
        dataset_id = _DATASET_ID.search(bytes(element))
        records.append(RecordError(dataset_id[1].decode() if dataset_id else "?", "record", problem))
        texts.append(None)
    return records


def _loads_keeping_texts(content: bytes) -> Any:
    """The answer, each list of its ``data`` a RecordList (see there).

    msgspec splits the answer into records and parses each. An answer it refuses (NaN, an
    unpaired surrogate, or not shaped ``{"data": {name: [...]}}``) is split by json's
    scanner, which accepts what json.loads accepts; its records are then read as msgspec's are.
    """
    try:
        page = _decode_record_page(content)
    except ValueError:
        body = _split_by_json(content.decode("utf-8", "surrogateescape"))
        data = body.get("data") if isinstance(body, dict) else None
        for name, rows in data.items() if isinstance(data, dict) else ():
            if isinstance(rows, RecordList):
                data[name] = _record_list(text.encode("utf-8", "surrogateescape") for text in rows.texts)
        return body
    return {
        "data": {name: _record_list(elements) for name, elements in page.data.items()},
        "errors": page.errors,
    }


def _split_by_json(text: str) -> Any:
    """``json.loads``, except that every array outside the elements of another array is a
    RecordList. The arrays and objects around the records (a few) are parsed in Python, each
    element of an array by the C scanner, as json.loads parses everything."""
    element_scanner = json.JSONDecoder().scan_once
    decoder = json.JSONDecoder()

    def parse_array(s_and_end: tuple[str, int], scan_once: Any) -> tuple[RecordList, int]:
        texts: list[str] = []

        def element(string: str, index: int) -> tuple[Any, int]:
            value, end = element_scanner(string, index)
            texts.append(string[index:end])
            return value, end

        values, end = JSONArray(s_and_end, element)
        result = RecordList(values)
        result.texts = texts
        return result, end

    decoder.parse_array = parse_array
    decoder.scan_once = py_make_scanner(decoder)
    return decoder.decode(text)


@cache
def query_text(name: str) -> str:
    """The text of ``queries/<name>.graphql``."""
    return (QUERIES_DIR / f"{name}.graphql").read_text()


class MetadataClient:
    """One session with the metadata store. Settings are read when the client is made."""

    def __init__(
        self,
        *,
        url: str | None = None,
        token: str | None = None,
        timeout_s: float | None = None,
        retries: int | None = None,
        backoff_s: float | None = None,
        page_size: int = PAGE_SIZE,
    ):
        self.url = url or settings.LEVEL2_METADATA_URL
        self.timeout_s = timeout_s if timeout_s is not None else settings.LEVEL2_METADATA_TIMEOUT_S
        self.retries = retries if retries is not None else settings.LEVEL2_METADATA_RETRIES
        self.backoff_s = backoff_s if backoff_s is not None else settings.LEVEL2_METADATA_BACKOFF_S
        self.page_size = page_size
        self.session = requests.Session()
        # One request at a time: the scan fetches records in a thread of its own while its
        # main thread may ask for experiment descriptions, and a Session is not thread-safe.
        self._request_lock = threading.Lock()
        token = token if token is not None else settings.LEVEL2_METADATA_TOKEN
        if token:
            self.session.headers["Authorization"] = token

    def __repr__(self) -> str:
        # Never the token.
        return f"MetadataClient({self.url!r})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> MetadataClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def execute(
        self,
        name: str,
        variables: dict[str, Any] | None = None,
        *,
        keep_texts: bool = False,
        retries: int | None = None,
    ) -> dict[str, Any]:
        """Run the query file ``name`` and return its ``data``; with ``keep_texts``, its lists
        are RecordLists (each row's JSON text too). ``retries`` overrides the client's."""
        payload = {"query": query_text(name), "variables": variables or {}}
        response = self._post(name, payload, retries=self.retries if retries is None else retries)
        try:
            body = _loads_keeping_texts(response.content) if keep_texts else response.json()
        except (ValueError, RecursionError) as error:
            raise MetadataStoreError(
                f"The metadata store answered {name} with something not JSON."
            ) from error
        if not isinstance(body, dict):
            raise MetadataStoreError(f"The metadata store answered {name} with unexpected JSON.")
        if body.get("errors"):
            raise GraphQLError(name, body["errors"])
        if not isinstance(body.get("data"), dict):
            raise MetadataStoreError(f"The metadata store answered {name} without data.")
        return body["data"]

    def _post(self, name: str, payload: dict[str, Any], *, retries: int) -> requests.Response:
        for attempt in range(retries + 1):
            try:
                with self._request_lock:
                    response = self.session.post(self.url, json=payload, timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as error:
                problem = f"{type(error).__name__}"
            else:
                if response.status_code < 500:
                    if response.status_code >= 400:
                        raise MetadataStoreError(
                            f"The metadata store refused {name}: HTTP {response.status_code} "
                            f"{response.text[:200]}"
                        )
                    return response
                problem = f"HTTP {response.status_code}"
            if attempt == retries:
                raise MetadataStoreError(
                    f"The metadata store did not answer {name} after {attempt + 1} attempts ({problem})."
                )
            # Full jitter: concurrent clients do not retry in step.
            delay = random.uniform(0, self.backoff_s * 2**attempt)
            log.warning(
                "metadata store: %s failed (%s), attempt %d of %d, retrying in %.2fs",
                name,
                problem,
                attempt + 1,
                retries + 1,
                delay,
            )
            time.sleep(delay)
        raise AssertionError("unreachable")

    def pages(
        self, name: str, variables: dict[str, Any], *, field: str, keep_texts: bool = False
    ) -> Iterator[list[dict[str, Any]]]:
        """Each page of the list ``field`` of a paged query, until a short page (with
        ``keep_texts``, RecordLists: each row's JSON text too)."""
        page_number = 1
        while True:
            rows = self.execute(
                name,
                {**variables, "pageSize": self.page_size, "pageNumber": page_number},
                keep_texts=keep_texts,
            )[field]
            yield rows
            # More rows than asked for: the store does not page, so this was everything.
            if len(rows) != self.page_size:
                return
            page_number += 1

    # The queries the project sends.

    def dataset_list(
        self,
        *,
        created_since: datetime | None = None,
        updated_since: datetime | None = None,
        dataset_ids: list[str] | None = None,
        proposal_ids: list[str] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of ``{datasetId, primaryProposalId, updateDate}`` for every dataset, or for
        those that every given filter admits (created or updated at or after a time, of
        these ids, of these proposals)."""
        variables = {
            "createDateMin": store_datetime(created_since),
            "updateDateMin": store_datetime(updated_since),
            "datasetIds": dataset_ids,
            "proposalIds": proposal_ids,
        }
        return self.pages(
            "dataset_list",
            {name: value for name, value in variables.items() if value is not None},
            field="datasetInventories",
        )

    def dataset_count(self) -> int:
        """How many datasets the store has."""
        answer = self.execute("dataset_count")["datasetInventoriesRecordCount"]
        count = answer.get("recordCount") if isinstance(answer, dict) else None
        # bool is an int to Python, not to the schema.
        if type(count) is not int or count < 0:
            raise MetadataStoreError(
                f"The metadata store answered dataset_count with {count!r}, not a count."
            )
        return count

    def datasets_by_proposal(
        self, proposal_ids: list[str], *, keep_texts: bool = False
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of full dataset records of these proposals (RecordLists with ``keep_texts``)."""
        return self.pages(
            "datasets_by_proposal",
            {"proposalIds": proposal_ids},
            field="datasetInventories",
            keep_texts=keep_texts,
        )

    def datasets_by_id(
        self, dataset_ids: list[str], *, keep_texts: bool = False
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of full dataset records with these ids (RecordLists with ``keep_texts``)."""
        return self.pages(
            "datasets_by_id", {"datasetIds": dataset_ids}, field="datasetInventories", keep_texts=keep_texts
        )

    def experiment_descriptions(self) -> dict[str, str]:
        """Every experiment's description by experiment id."""
        rows = self.execute("experiment_descriptions")["experimentDescriptions"]
        return {row["experimentId"]: row.get("experimentDescription") or "" for row in rows}

    def l2_inversion(self, inversion_id: str) -> dict[str, Any] | None:
        """The store's record of this inversion, or None when it has none."""
        rows = self.execute("l2_inversion", {"inversionId": inversion_id})["l2Inversions"]
        return rows[0] if rows else None

    def create_l2_inversion_inventory(self, create_params: dict[str, Any]) -> dict[str, Any]:
        """Publish one inversion; returns the store's record of it. Sent once, never retried:
        after a timeout or a 5xx the record may exist, and only asking tells
        (ops.metadata.inventory.ensure_l2_inversion_inventory does)."""
        data = self.execute("create_l2_inversion_inventory", {"createParams": create_params}, retries=0)
        return data["createL2InversionInventory"]
