"""A metadata store for tests: store-shaped records served over real HTTP (pytest-httpserver).

It validates every request against the project's schema file, answers the project's
operations by name, pages like the store, and records the requests it was sent so that
tests can assert exactly what a scan asked for. Failures are queued per operation.
"""

from __future__ import annotations

import json
import time
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphql import OperationDefinitionNode, build_schema, parse, validate
from werkzeug import Request, Response

import ops.metadata

SCHEMA = build_schema((Path(ops.metadata.__file__).parent / "schema.graphql").read_text())


def dataset_record(dataset_id: str = "RVMDLI", **overrides: Any) -> dict[str, Any]:
    """A full ViSP record like the store's (pid_3_54 sample); overrides replace fields."""
    record = {
        "datasetId": dataset_id,
        "primaryProposalId": "pid_3_54",
        "primaryExperimentId": "eid_3_54",
        "observingProgramExecutionId": "eid_3_54_opolDyXQ_R001.1185321.14023005",
        "instrumentProgramExecutionId": "id.1189737.1073625",
        "instrumentName": "VISP",
        "createDate": "2025-04-02T22:24:25.724505",
        "updateDate": "2025-06-28T19:52:46.460870",
        "startTime": "2025-03-27T22:03:42.200193",
        "endTime": "2025-03-27T22:12:41.217146",
        "exposureTime": 128.0216338028169,
        "headerDataUnitCreationDate": "2025-04-02T20:01:02.000000",
        "isEmbargoed": False,
        "embargoEndDate": "2025-10-01T21:57:24.340000",
        "datasetSize": 27,
        "frameCount": 444,
        "headerVersion": "4.0.0",
        "headerDocumentationUrl": "https://docs.dkist.nso.edu/projects/data-products/en/v4.0.0",
        "calibrationDocumentationUrl": "https://docs.dkist.nso.edu/projects/visp/en/v2.0.0/",
        "hasSpectralAxis": True,
        "hasTemporalAxis": True,
        "boundingBox": "(-448.35,346.49),(-501.23,268.64)",
        "stokesParameters": "IQUV",
        "wavelengthMin": 629.9,
        "wavelengthMax": 630.6,
        "spectralLines": ["Fe I (630.25 nm)"],
        "bucket": "data",
        "productId": "L1-ABCDEFGHIJ",
        "browseMovieUrl": "https://vimeo.com/1071969319",
        "health": {"bad": None, "ill": None, "good": 444, "unknown": None},
        "gosStatus": {"open": 444, "closed": None, "closing": None, "opening": None, "undefined": None},
        "aoLocked": 400,
        "lightLevel": {"max": 474.7, "med": 470.1, "min": 469.0, "p25": 469.7, "p75": 470.5},
        "friedParameter": {"max": 0.106, "med": 0.039, "min": 0.016, "p25": 0.030, "p75": 0.065},
        "polarimetricAccuracy": None,
    }
    record.update(overrides)
    return record


@dataclass
class Sent:
    operation: str
    variables: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Failure:
    status: int = 500
    delay_s: float = 0.0
    body: dict[str, Any] | None = None
    # The store does what was asked, then the answer fails (as when a response is lost).
    after_handling: bool = False


@dataclass
class FakeStore:
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    experiments: dict[str, str] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    # createParams of every createL2InversionInventory received, and the records it keeps.
    inventories: list[dict[str, Any]] = field(default_factory=list)
    inversions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Byte replacements made in every answer: JSON that json.dumps does not write (NaN
    # literals, numbers beyond a float, invalid UTF-8, deep nesting).
    rewrites: dict[bytes, bytes] = field(default_factory=dict)

    def add(self, *records: dict[str, Any]) -> None:
        for record in records:
            self.records[record["datasetId"]] = deepcopy(record)

    def fail(self, operation: str, *failures: Failure) -> None:
        """The next requests for ``operation`` get these answers, in order."""
        self.failures.setdefault(operation, []).extend(failures)

    def operations(self) -> list[str]:
        return [sent.operation for sent in self.sent]

    def handle(self, request: Request) -> Response:
        response = self._handle(request)
        for old, new in self.rewrites.items():
            response.set_data(response.get_data().replace(old, new))
        return response

    def _handle(self, request: Request) -> Response:
        body = request.get_json()
        document = parse(body["query"])
        errors = validate(SCHEMA, document)
        if errors:
            return _json({"errors": [{"message": error.message} for error in errors]}, 400)
        operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        name = operation.name.value
        variables = body.get("variables") or {}
        self.sent.append(Sent(name, variables, dict(request.headers)))
        failure = self.failures[name].pop(0) if self.failures.get(name) else None
        if failure is not None and failure.after_handling:
            self._answer(name, variables, operation)
        if failure is not None:
            if failure.delay_s:
                time.sleep(failure.delay_s)
            return _json(failure.body or {"errors": [{"message": "boom"}]}, failure.status)
        return self._answer(name, variables, operation)

    def _answer(self, name: str, variables: dict[str, Any], operation: OperationDefinitionNode) -> Response:
        fields = [
            selection.name.value
            for selection in operation.selection_set.selections[0].selection_set.selections
        ]
        if name == "ExperimentDescriptions":
            rows = [
                {"experimentId": k, "experimentDescription": v} for k, v in sorted(self.experiments.items())
            ]
            return _json({"data": {"experimentDescriptions": rows}})
        if name == "CreateL2InversionInventory":
            self.inventories.append(variables["createParams"])
            created = {**variables["createParams"], "createDate": "2026-01-01T00:00:00.000000"}
            self.inversions[created["inversionId"]] = created
            return _json({"data": {"createL2InversionInventory": {f: created.get(f) for f in fields}}})
        if name == "L2Inversion":
            found = [r for r in self.inversions.values() if r["inversionId"] == variables["inversionId"]]
            return _json({"data": {"l2Inversions": [{f: r.get(f) for f in fields} for r in found]}})
        if name == "DatasetCount":
            return _json({"data": {"datasetInventoriesRecordCount": {"recordCount": len(self.records)}}})
        records = sorted(self.records.values(), key=lambda r: r["datasetId"])
        if name not in {"DatasetsByProposal", "DatasetsById", "DatasetList"}:
            return _json({"errors": [{"message": f"unknown operation {name}"}]})
        if variables.get("proposalIds") is not None:
            records = [r for r in records if r["primaryProposalId"] in variables["proposalIds"]]
        if variables.get("datasetIds") is not None:
            records = [r for r in records if r["datasetId"] in variables["datasetIds"]]
        for column in ("createDate", "updateDate"):
            # The store's dates compare as text (naive UTC, microseconds); none is outside.
            if variables.get(f"{column}Min") is not None:
                least = variables[f"{column}Min"]
                records = [r for r in records if isinstance(r.get(column), str) and r[column] >= least]
        if variables.get("pageSize"):
            start = (variables.get("pageNumber", 1) - 1) * variables["pageSize"]
            records = records[start : start + variables["pageSize"]]
        rows = [{f: r.get(f) for f in fields} for r in records]
        return _json({"data": {"datasetInventories": rows}})


def _json(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")
