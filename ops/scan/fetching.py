"""Fetching: the full records of one batch, parsed and turned into COPY rows.

Runs in the read-ahead thread (HTTP and parsing, no database) while the batch before is
written (``ops.pipeline.one_ahead``): at most two batches are in memory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from ops.metadata.client import MetadataClient, MetadataStoreError
from ops.metadata.records import DatasetRecord, RecordError, parse_dataset
from ops.models import Scan, ScanError
from ops.scan.listing import BATCH_DATASETS, ProposalWork
from ops.scan.upserting import CopyEncoder, CopyRow, dataset_row

log = logging.getLogger(__name__)


@dataclass
class FetchedBatch:
    """One batch as fetched and parsed: its records and the errors of the rest."""

    proposals: list[ProposalWork]
    # When the store answered: the batch's "now", which its new datasets' first_seen_at holds.
    seen_at: datetime = field(default_factory=timezone.now)
    records: list[DatasetRecord] = field(default_factory=list)
    # The records as COPY tuples (``CopyEncoder``), in the same order.
    rows: list[CopyRow] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    # The store did not answer for these proposals (one error each): nothing else to write.
    fetch_failed: bool = False


def fetch_batch(*, client: MetadataClient, scan: Scan, batch: list[ProposalWork]) -> FetchedBatch:
    """Fetch and parse one batch. A batch the store does not answer is one error per proposal."""
    try:
        raw_records, raw_texts = _fetch(client, batch)
    except MetadataStoreError as error:
        log.warning(
            "scan %s: fetching proposals %s failed: %s", scan.pk, [p.proposal_id for p in batch], error
        )
        return FetchedBatch(
            proposals=batch,
            errors=[ScanError(scan=scan, record=p.proposal_id, message=str(error)) for p in batch],
            fetch_failed=True,
        )
    seen_at = timezone.now()
    encoder = CopyEncoder(first_seen_at=seen_at)
    wanted = {dataset_id for proposal in batch for dataset_id in proposal.fetch_ids}
    records: dict[str, tuple[DatasetRecord, CopyRow]] = {}
    errors: list[ScanError] = []
    for raw, raw_text in zip(raw_records, raw_texts, strict=True):
        try:
            record = parse_dataset(raw)
            row = encoder.encode(dataset_row(record, raw_text))
        except RecordError as error:
            if error.dataset_id in wanted or error.dataset_id == "?":
                errors.append(ScanError(scan=scan, record=error.dataset_id, message=str(error)))
            continue
        # Datasets that arrived after the list was read wait for the next scan.
        if record.dataset_id in wanted:
            records[record.dataset_id] = (record, row)
    return FetchedBatch(
        proposals=batch,
        seen_at=seen_at,
        records=[record for record, _ in records.values()],
        rows=[row for _, row in records.values()],
        errors=errors,
    )


def _fetch(client: MetadataClient, batch: list[ProposalWork]) -> tuple[list[dict], list[str | None]]:
    """Full records: whole proposals by proposal id, the rest by dataset id; and each
    record's JSON text as the store sent it (None where the page has none)."""
    whole = [p.proposal_id for p in batch if p.fetch_ids and p.fetch_whole_proposal]
    some = [dataset_id for p in batch if not p.fetch_whole_proposal for dataset_id in p.fetch_ids]
    pages: list[list[dict]] = []
    if whole:
        pages.extend(client.datasets_by_proposal(whole, keep_texts=True))
    for start in range(0, len(some), BATCH_DATASETS):
        pages.extend(client.datasets_by_id(some[start : start + BATCH_DATASETS], keep_texts=True))
    raw_records: list[dict] = []
    raw_texts: list[str | None] = []
    for page in pages:
        raw_records.extend(page)
        raw_texts.extend(getattr(page, "texts", None) or [None] * len(page))
    return raw_records, raw_texts
