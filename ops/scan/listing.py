"""Listing: what the store lists against what is stored, and the plan of the work.

The store's cheap list (id, proposal, updateDate of every dataset) is compared with the
stored datasets' compare keys; the plan is, per proposal, the datasets to fetch (new or
changed) and those to mark vanished, in batches of whole proposals.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from psycopg.types.datetime import TimestamptzLoader

from ops.metadata.client import MetadataClient
from ops.metadata.records import ListedDataset, RecordError, parse_listed
from ops.models import Dataset, Scan, ScanError, key_numbers

# Datasets fetched and written per transaction: whole proposals are added to a batch until
# it holds at least this many, so memory stays bounded and round trips stay few.
BATCH_DATASETS = 2000


@dataclass(slots=True)
class Stored:
    """A stored dataset's compare key (``update_date`` None: the store never updated it)."""

    proposal_id: str
    program_id: str
    update_date: datetime | None
    vanished: bool


@dataclass
class ProposalWork:
    """What one proposal needs: datasets to fetch (new, changed) and to mark vanished."""

    proposal_id: str
    listed_count: int = 0
    new_ids: list[str] = field(default_factory=list)
    changed_ids: list[str] = field(default_factory=list)
    vanished_ids: list[str] = field(default_factory=list)

    @property
    def fetch_ids(self) -> list[str]:
        return self.new_ids + self.changed_ids

    @property
    def fetch_whole_proposal(self) -> bool:
        return len(self.fetch_ids) == self.listed_count


@dataclass
class Listing:
    """The store's cheap list; the ids of rows that did not parse and their errors (unsaved:
    listing runs in the fetch thread, without the database)."""

    listed: dict[str, ListedDataset]
    unreadable_ids: set[str]
    errors: list[ScanError]


def list_store(*, client: MetadataClient, scan: Scan) -> Listing:
    """The cheap list; rows that do not parse are kept out of the vanished check."""
    listing = Listing(listed={}, unreadable_ids=set(), errors=[])
    for page in client.dataset_list():
        for raw in page:
            try:
                row = parse_listed(raw)
            except RecordError as error:
                listing.unreadable_ids.add(error.dataset_id)
                listing.errors.append(ScanError(scan=scan, record=error.dataset_id, message=str(error)))
                continue
            listing.listed[row.dataset_id] = row
    return listing


def read_stored() -> dict[str, Stored]:
    """Every stored dataset's compare key, by id."""
    # A record the store never updated is stored with update_date = createDate; its
    # compare key is None, like the list's. Only where update_date equals createDate does
    # the raw record tell whether the store sent an updateDate: raw is the big column,
    # and reading it for every dataset would cost the re-scan more than all the rest.
    # A plain cursor: the ORM's rows cost a re-scan more than the database's own work. Its
    # timestamps are read by psycopg's own loader (in C) rather than Django's (in Python),
    # which cost a 100,000-dataset re-scan a tenth of a second: only compared, they need no
    # particular time zone.
    with connection.cursor() as cursor:
        cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        cursor.execute(
            f"""
            SELECT id, proposal_id, program_id,
                CASE WHEN update_date <> create_date THEN update_date
                    WHEN jsonb_typeof(raw -> 'updateDate') = 'string' THEN update_date END,
                vanished_at IS NOT NULL
            FROM {Dataset._meta.db_table}
            """
        )
        return {row[0]: Stored(*row[1:]) for row in cursor.fetchall()}


def plan(*, listing: Listing, stored: dict[str, Stored]) -> tuple[list[ProposalWork], int]:
    """The proposals with work to do, in key order; and how many datasets are unchanged."""
    work: dict[str, ProposalWork] = {}
    unchanged = 0
    for row in listing.listed.values():
        proposal = work.setdefault(row.proposal_id, ProposalWork(row.proposal_id))
        proposal.listed_count += 1
        known = stored.get(row.dataset_id)
        if known is None:
            proposal.new_ids.append(row.dataset_id)
        elif known.vanished or known.update_date != row.update_date:
            proposal.changed_ids.append(row.dataset_id)
        else:
            unchanged += 1
    for dataset_id, known in stored.items():
        if (
            not known.vanished
            and dataset_id not in listing.listed
            and dataset_id not in listing.unreadable_ids
        ):
            work.setdefault(known.proposal_id, ProposalWork(known.proposal_id)).vanished_ids.append(
                dataset_id
            )
    todo = [p for p in work.values() if p.fetch_ids or p.vanished_ids]
    todo.sort(key=lambda p: (*key_numbers(p.proposal_id), p.proposal_id))
    return todo, unchanged


def batches(work: list[ProposalWork]) -> Iterator[list[ProposalWork]]:
    """Whole proposals, gathered until a batch holds BATCH_DATASETS datasets to write."""
    batch: list[ProposalWork] = []
    size = 0
    for proposal in work:
        batch.append(proposal)
        size += len(proposal.fetch_ids) + len(proposal.vanished_ids)
        if size >= BATCH_DATASETS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
