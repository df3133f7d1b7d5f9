"""The demo metadata store: GraphQL over HTTP POST at /graphql, answering from a DemoStore.

Each request is parsed and validated with graphql-core against the project's own
``ops/metadata/schema.graphql``, so a query the demo store accepts is one the project may
send. Answers are not made by graphql-core's executor (one resolver call per field is far
too slow for 100,000 records): root fields are answered here, and each record is projected
to the selected fields as a plain dict, then the response is serialised once.

The store grows with the clock: records whose ``createDate`` is after the server's clock are
hidden until then, so OPs generated to "arrive" after ``now`` appear while it runs.

Inversions received by ``createL2InversionInventory`` are answered by ``l2Inversions``; given
an ``inversions_path`` the store keeps them in that JSON file too, across restarts.

Runs without Django: ``python -m demo.store.server --port 0`` prints its URL when ready.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from operator import itemgetter
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    build_schema,
    graphql_sync,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values, get_variable_values

from demo.store.generator import DemoStore, Record, generate_store, iso, with_changes, with_reprocessed

log = logging.getLogger(__name__)

# The project's own schema, the one its queries are checked against.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "ops" / "metadata" / "schema.graphql"
DATE_COLUMNS = ("createDate", "updateDate")
SORTABLE_COLUMNS = {"createDate", "updateDate", "datasetId", "startTime"}
# Filters of DatasetInventoriesRequest the demo store honours; any other one is refused
# with an error, so that a query relying on it is noticed rather than answered wrongly.
SUPPORTED_FILTERS = {
    "pageSize",
    "pageNumber",
    "sortColumn",
    "datasetIds",
    "primaryProposalIds",
    "createDateMin",
    "createDateMax",
    "updateDateMin",
    "updateDateMax",
}
MAX_BODY_BYTES = 10_000_000


class RequestError(Exception):
    """A request the store refuses; its message goes to the client as a GraphQL error."""


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def store_datetime(value: str) -> str:
    """A DateTime argument in the store's text form (naive UTC), for comparing with records."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError) as error:
        raise RequestError(f"Not a date and time: {value!r}.") from error
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return iso(moment)


class StoreIndex:
    """A DemoStore indexed for answering: by creation time, by proposal and by id."""

    def __init__(self, store: DemoStore) -> None:
        self.store = store
        self.datasets = store.datasets
        self.create_dates = [record["createDate"] for record in self.datasets]
        self.by_id = {record["datasetId"]: record for record in self.datasets}
        self.by_proposal: dict[str, list[Record]] = {}
        for record in self.datasets:
            self.by_proposal.setdefault(record["primaryProposalId"], []).append(record)
        self.proposal_create_dates = {
            proposal_id: [record["createDate"] for record in records]
            for proposal_id, records in self.by_proposal.items()
        }
        self._sorted_cache: dict[tuple[int, str], list[Record]] = {}
        self._sorted_lock = threading.Lock()
        # By date column: the dates of the records that have it, in order, and those records
        # (the datasets are in createDate order already).
        by_update = sorted((r for r in self.datasets if r.get("updateDate")), key=itemgetter("updateDate"))
        self._by_date = {
            "createDate": (self.create_dates, self.datasets),
            "updateDate": ([record["updateDate"] for record in by_update], by_update),
        }

    def visible_count(self, clock_text: str) -> int:
        return bisect_right(self.create_dates, clock_text)

    def all_sorted(self, visible: int, sort_column: str) -> list[Record]:
        """Every visible record in `sort_column` order, kept until more records show up:
        a paged listing sorts once, not once per page."""
        if sort_column == "createDate":
            return self.datasets[:visible]
        key = (visible, sort_column)
        with self._sorted_lock:
            cached = self._sorted_cache.get(key)
        if cached is None:
            cached = sorted(self.datasets[:visible], key=_sort_key(sort_column))
            with self._sorted_lock:
                self._sorted_cache = {key: cached}
        return cached

    def since(self, column: str, least: str) -> list[Record]:
        """The records whose date ``column`` is at least ``least``, visible or not: a
        re-scan's listing of changes is answered as a store's index would, not by reading
        every record."""
        dates, records = self._by_date[column]
        return records[bisect_left(dates, least) :]


def _sort_key(column: str) -> Callable[[Record], Any]:
    getter = itemgetter(column)
    return lambda record: getter(record) or ""


@lru_cache(maxsize=4)
def load_schema(path: Path = SCHEMA_PATH) -> GraphQLSchema:
    return build_schema(path.read_text())


class DemoStoreApi:
    """Answers GraphQL request bodies from a store; the HTTP layer is DemoStoreServer."""

    def __init__(
        self,
        *,
        store: DemoStore,
        clock: Callable[[], datetime] = utc_now,
        schema: GraphQLSchema | None = None,
        inversions_path: Path | None = None,
        reprocessed_path: Path | None = None,
    ) -> None:
        self.schema = schema or load_schema()
        self.clock = clock
        self.generated = store
        self.index = StoreIndex(store)
        self.inversions_path = inversions_path
        self.inversions: dict[str, Record] = load_inversions(inversions_path) if inversions_path else {}
        self._inversions_lock = threading.Lock()
        self._documents = lru_cache(maxsize=128)(self._parse_and_validate)
        # The datasets reprocessed since the store was generated (`manage.py demo_reprocess`
        # writes them there), applied whenever the file changes.
        self.reprocessed_path = reprocessed_path
        self._reprocessed_version: int | None = None
        self._reprocessed_lock = threading.Lock()
        self._follow_reprocessed()

    def replace_store(self, store: DemoStore) -> None:
        """Serve another store from now on (requests under way finish with the old one)."""
        self.index = StoreIndex(store)

    def _follow_reprocessed(self) -> None:
        """Serve the generated store with the reprocessed records of ``reprocessed_path``, once
        per change of that file (a stat per request otherwise)."""
        if self.reprocessed_path is None:
            return
        try:
            version = self.reprocessed_path.stat().st_mtime_ns
        except FileNotFoundError:
            version = None
        if version == self._reprocessed_version:
            return
        with self._reprocessed_lock:
            if version == self._reprocessed_version:
                return
            try:
                changes = load_inversions(self.reprocessed_path) if version is not None else {}
            except ValueError:  # half written by hand, say: the store goes on serving
                changes = None
            if not isinstance(changes, dict) or not all(isinstance(c, dict) for c in changes.values()):
                log.warning("ignoring %s: not an object of dataset ids to fields", self.reprocessed_path)
                changes = {}
            self.replace_store(with_reprocessed(self.generated, changes))
            self._reprocessed_version = version
            log.info("serving %d reprocessed datasets from %s", len(changes), self.reprocessed_path)

    def _parse_and_validate(self, query: str) -> DocumentNode | list[GraphQLError]:
        try:
            document = parse(query)
        except GraphQLError as error:
            return [error]
        return validate(self.schema, document) or document

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The JSON response to one request body ``{query, variables, operationName}``."""
        self._follow_reprocessed()
        query = body.get("query")
        if not isinstance(query, str):
            return {"errors": [{"message": "The request has no query."}]}
        document = self._documents(query)
        if isinstance(document, list):
            return {"errors": [error.formatted for error in document]}
        operation, fragments = _operation(document, body.get("operationName"))
        if operation is None:
            return {"errors": [{"message": "Name the operation to run (operationName)."}]}
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            return {"errors": [{"message": "variables must be a JSON object."}]}
        coerced = get_variable_values(self.schema, operation.variable_definitions or (), variables)
        if isinstance(coerced, list):
            return {"errors": [error.formatted for error in coerced]}
        root_fields = list(_fields(operation.selection_set, fragments))
        if any(field.name.value in {"__schema", "__type"} for field in root_fields):
            # Introspection is rare and small: graphql-core's executor answers it.
            result = graphql_sync(self.schema, query, variable_values=variables)
            return result.formatted
        root_type = (
            self.schema.mutation_type
            if operation.operation == OperationType.MUTATION
            else self.schema.query_type
        )
        data: dict[str, Any] = {}
        for field in root_fields:
            response_key = field.alias.value if field.alias else field.name.value
            if field.name.value == "__typename":
                data[response_key] = root_type.name
                continue
            arguments = get_argument_values(root_type.fields[field.name.value], field, coerced)
            try:
                data[response_key] = self._resolve(field.name.value, arguments, field, fragments)
            except RequestError as error:
                return {
                    "data": None,
                    "errors": [{"message": str(error), "path": [response_key]}],
                }
        return {"data": data}

    def _resolve(
        self,
        name: str,
        arguments: dict[str, Any],
        field: FieldNode,
        fragments: dict[str, FragmentDefinitionNode],
    ) -> Any:
        selection = _projection(field.selection_set, fragments)
        if name == "datasetInventories":
            return _project(self.dataset_inventories(arguments.get("filterParams") or {}), selection)
        if name == "datasetInventoriesRecordCount":
            # Its schema (ops/metadata/schema.graphql) has no filters: every visible dataset.
            count = self.index.visible_count(iso(self.clock()))
            return _project([{"recordCount": count}], selection)[0]
        if name == "experimentDescriptions":
            return _project(self.experiment_descriptions(arguments.get("filterParams") or {}), selection)
        if name == "l2Inversions":
            return _project(self.l2_inversions(arguments.get("filterParams") or {}), selection)
        if name == "createL2InversionInventory":
            return _project([self.create_l2_inversion_inventory(arguments["createParams"])], selection)[0]
        raise RequestError(f"The demo store does not answer {name}.")

    def dataset_inventories(self, filters: dict[str, Any]) -> list[Record]:
        unsupported = sorted(set(filters) - SUPPORTED_FILTERS)
        if unsupported:
            raise RequestError(f"The demo store does not support the filters {', '.join(unsupported)}.")
        index = self.index
        clock_text = iso(self.clock())
        sort_column = filters.get("sortColumn") or "createDate"
        descending = sort_column.startswith("-")
        sort_column = sort_column.removeprefix("-")
        if sort_column not in SORTABLE_COLUMNS:
            raise RequestError(
                f"The demo store sorts by {', '.join(sorted(SORTABLE_COLUMNS))} only, not {sort_column!r}."
            )
        dataset_ids = filters.get("datasetIds")
        proposal_ids = filters.get("primaryProposalIds")
        needs_sort = True
        if dataset_ids is not None:
            found = (index.by_id.get(dataset_id) for dataset_id in dict.fromkeys(dataset_ids))
            records = [r for r in found if r is not None and r["createDate"] <= clock_text]
            if proposal_ids is not None:
                wanted_proposals = set(proposal_ids)
                records = [r for r in records if r["primaryProposalId"] in wanted_proposals]
        elif proposal_ids is not None:
            records = []
            for proposal_id in dict.fromkeys(proposal_ids):
                visible = bisect_right(index.proposal_create_dates.get(proposal_id, ()), clock_text)
                records.extend(index.by_proposal.get(proposal_id, ())[:visible])
        elif since_column := next((c for c in DATE_COLUMNS if filters.get(f"{c}Min") is not None), None):
            since = index.since(since_column, store_datetime(filters[f"{since_column}Min"]))
            records = [r for r in since if r["createDate"] <= clock_text]
        else:
            records = index.all_sorted(index.visible_count(clock_text), sort_column)
            needs_sort = False
        for column in DATE_COLUMNS:
            # A record without the date is outside every range of it.
            if filters.get(f"{column}Min") is not None:
                least = store_datetime(filters[f"{column}Min"])
                records = [r for r in records if r.get(column) and r[column] >= least]
            if filters.get(f"{column}Max") is not None:
                most = store_datetime(filters[f"{column}Max"])
                records = [r for r in records if r.get(column) and r[column] <= most]
        if needs_sort:
            records = sorted(records, key=_sort_key(sort_column))
        if descending:
            records = records[::-1]
        return _page(records, page_size=filters.get("pageSize"), page_number=filters.get("pageNumber"))

    def experiment_descriptions(self, filters: dict[str, Any]) -> list[Record]:
        experiments = self.index.store.experiments
        if filters.get("experimentId") is not None:
            experiments = [e for e in experiments if e["experimentId"] == filters["experimentId"]]
        if filters.get("experimentDescriptionId") is not None:
            wanted = filters["experimentDescriptionId"]
            experiments = [e for e in experiments if e["experimentDescriptionId"] == wanted]
        return experiments

    def l2_inversions(self, filters: dict[str, Any]) -> list[Record]:
        """The inversions received, in the order they first came; ``datasetIds`` matches an
        inversion that used any of them."""
        with self._inversions_lock:
            records = list(self.inversions.values())
        if filters.get("inversionId") is not None:
            records = [r for r in records if r["inversionId"] == filters["inversionId"]]
        if filters.get("datasetIds") is not None:
            wanted = set(filters["datasetIds"])
            records = [r for r in records if wanted.intersection(r["datasetIds"])]
        return records

    def create_l2_inversion_inventory(self, create_params: dict[str, Any]) -> Record:
        """Keep the inversion (and write them all to ``inversions_path`` when given). Sending
        the same inversionId again replaces it (a retried publish must not fail), keeping its
        first createDate."""
        now_text = iso(self.clock())
        with self._inversions_lock:
            earlier = self.inversions.get(create_params["inversionId"])
            record = {
                "asdfObjectKey": None,
                **create_params,
                "createDate": earlier["createDate"] if earlier else now_text,
                "updateDate": now_text if earlier else None,
            }
            self.inversions[create_params["inversionId"]] = record
            if self.inversions_path is not None:
                save_inversions(self.inversions_path, self.inversions)
        return record


def load_inversions(path: Path) -> dict[str, Record]:
    """The records kept in ``path`` by id (inversions, reprocessed datasets); none when there is
    no such file yet."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def save_inversions(path: Path, inversions: dict[str, Record]) -> None:
    # Written aside, then renamed over: a store stopped mid-write keeps the previous file.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text(json.dumps(inversions, indent=1))
    os.replace(partial, path)


def _operation(
    document: DocumentNode, operation_name: str | None
) -> tuple[OperationDefinitionNode | None, dict[str, FragmentDefinitionNode]]:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    if operation_name:
        named = [op for op in operations if op.name and op.name.value == operation_name]
        return (named[0] if named else None), fragments
    return (operations[0] if len(operations) == 1 else None), fragments


def _fields(
    selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode]
) -> Iterable[FieldNode]:
    """The fields of a selection set, with fragments spread in place."""
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            yield from _fields(fragments[selection.name.value].selection_set, fragments)


def _projection(
    selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode]
) -> dict[str, str]:
    """Response key → record key of the selected fields (all scalars in these types)."""
    return {
        (field.alias or field.name).value: field.name.value for field in _fields(selection_set, fragments)
    }


def _project(records: list[Record], selection: dict[str, str]) -> list[Record]:
    # Absent optional fields (older records) come out null, as a GraphQL server sends them.
    pairs = list(selection.items())
    return [{key: record.get(name) for key, name in pairs} for record in records]


def _page(records: list[Record], *, page_size: int | None, page_number: int | None) -> list[Record]:
    if page_size is None:
        return records
    if page_size < 1 or (page_number or 1) < 1:
        raise RequestError("pageSize and pageNumber must be at least 1.")
    start = ((page_number or 1) - 1) * page_size
    return records[start : start + page_size]


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive: the scan sends many requests over one connection.
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0].rstrip("/") != "/graphql":
            self._send(HTTPStatus.NOT_FOUND, {"errors": [{"message": "The store answers at /graphql."}]})
            return
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"errors": [{"message": "Request too large."}]})
            return
        try:
            body = json.loads(self.rfile.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._send(HTTPStatus.BAD_REQUEST, {"errors": [{"message": "The request body is not JSON."}]})
            return
        if not isinstance(body, dict):
            self._send(
                HTTPStatus.BAD_REQUEST, {"errors": [{"message": "The request must be a JSON object."}]}
            )
            return
        try:
            response = self.server.api.answer(body)
        except Exception:
            log.exception("demo store: answering failed")
            response = {"errors": [{"message": "The demo store failed; it logged the error."}]}
        self._send(HTTPStatus.OK, response)
        if self.server.log_requests:
            data = response.get("data") or {}
            sizes = ", ".join(f"{k}: {len(v) if isinstance(v, list) else 1}" for k, v in data.items())
            outcome = "errors" if response.get("errors") else sizes
            print(
                f"{iso(utc_now())[:19]} {body.get('operationName') or _first_line(body)} → {outcome} "
                f"({(time.perf_counter() - started) * 1000:.0f} ms)",
                flush=True,
            )

    def do_GET(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"errors": [{"message": "POST GraphQL to /graphql."}]})

    def _send(self, status: HTTPStatus, response: dict[str, Any]) -> None:
        payload = json.dumps(response, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # Requests are logged by do_POST when asked to; the default logs every request to stderr.
        pass


def _first_line(body: dict[str, Any]) -> str:
    query = body.get("query")
    name = query.strip().split("(", 1)[0].split("{", 1)[0].strip()[:60] if isinstance(query, str) else ""
    return name or "anonymous query"


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, api: DemoStoreApi, log_requests: bool) -> None:
        self.api = api
        self.log_requests = log_requests
        super().__init__(address, _Handler)


class DemoStoreServer:
    """The demo store over HTTP; ``port=0`` picks a free port (see ``url``).

    Use ``serve_forever()`` in the foreground, or ``start()``/``stop()`` (or ``with``) for a
    background thread, as tests and the benchmark do.
    """

    def __init__(
        self,
        *,
        store: DemoStore,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] = utc_now,
        log_requests: bool = False,
        inversions_path: Path | None = None,
        reprocessed_path: Path | None = None,
    ) -> None:
        self.api = DemoStoreApi(
            store=store, clock=clock, inversions_path=inversions_path, reprocessed_path=reprocessed_path
        )
        self.httpd = _HttpServer((host, port), api=self.api, log_requests=log_requests)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/graphql"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> DemoStoreServer:
        self._thread = threading.Thread(target=self.serve_forever, name="demo-store", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> DemoStoreServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve a generated store until interrupted; prints ``ready <url>`` once it listens."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--datasets", type=int, default=2000)
    parser.add_argument("--programs", type=int, default=None)
    parser.add_argument("--now", type=datetime.fromisoformat, default=None, help="naive UTC; default: now")
    parser.add_argument(
        "--changed-fraction",
        type=float,
        default=0.0,
        help="serve the store after this fraction of datasets changed at --now (benchmark re-scan)",
    )
    args = parser.parse_args(argv)
    now = args.now or utc_now()
    started = time.perf_counter()
    store = generate_store(seed=args.seed, datasets=args.datasets, programs=args.programs, now=now)
    if args.changed_fraction:
        store = with_changes(store, fraction=args.changed_fraction, at=now)
    server = DemoStoreServer(store=store, host=args.host, port=args.port)
    print(f"ready {server.url} ({len(store.datasets)} datasets in {time.perf_counter() - started:.1f} s)")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


if __name__ == "__main__":
    main()
