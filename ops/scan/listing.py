"""Listing: what the store lists against what is stored, and the plan of the work.

The store's cheap list (id, proposal, updateDate) is compared with the stored datasets'
compare keys; the plan is, per proposal, the datasets to fetch (new or changed) and those to
mark vanished, in batches of whole proposals.

A re-scan lists only what changed (``choose_scope``): the datasets created or updated since
the newest date stored (less an overlap), and those its previous scan failed on. The store's
count of its datasets then tells whether any vanished: when it is not the count stored plus
those the listing found new, the scan lists every dataset after all (``Listing.misses``).
Every dataset is also listed after a failed scan, and at least every
``LEVEL2_SCAN_FULL_LISTING_S``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone
from psycopg.types.datetime import TimestamptzLoader

from ops.metadata.client import MetadataClient
from ops.metadata.records import ListedDataset, RecordError, parse_listed
from ops.models import Dataset, Scan, ScanError, key_numbers

# Datasets fetched and written per transaction: whole proposals are added to a batch until
# it holds at least this many, so memory stays bounded and round trips stay few.
BATCH_DATASETS = 2000
# A previous scan's errors that a listing of changes lists again, at most (by id, and by
# proposal for a proposal the store did not answer for); beyond, every dataset is listed.
RETRY_RECORDS_MAX = 1000


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
    # Whether every dataset of the proposal was listed (not so in a listing of changes).
    listed_whole: bool = True

    @property
    def fetch_ids(self) -> list[str]:
        return self.new_ids + self.changed_ids

    @property
    def fetch_whole_proposal(self) -> bool:
        return self.listed_whole and len(self.fetch_ids) == self.listed_count


@dataclass(frozen=True)
class Scope:
    """What a scan lists: every dataset (``since`` None), or those created or updated since
    ``since`` and those of the ``retry`` records (the previous scan's errors, by dataset or
    proposal id); ``stored_count``, the stored datasets not vanished when it was chosen."""

    since: datetime | None = None
    retry: tuple[str, ...] = ()
    stored_count: int = 0

    @property
    def everything(self) -> bool:
        return self.since is None


EVERYTHING = Scope()


def choose_scope(*, scan: Scan, everything: bool = False) -> Scope:
    """Only what changed, unless every dataset must be listed: when asked, on the first scan,
    after a failed scan or one with too many errors, and when the last listing of every
    dataset in a succeeded scan is ``LEVEL2_SCAN_FULL_LISTING_S`` old."""
    earlier = Scan.objects.exclude(pk=scan.pk)
    previous = earlier.filter(finished_at__isnull=False).order_by("-started_at", "-id").first()
    full_listing = (
        earlier.filter(status=Scan.Status.SUCCEEDED, listed_since__isnull=True)
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    now = timezone.now()
    if (
        everything
        or previous is None
        or previous.status != Scan.Status.SUCCEEDED
        or full_listing is None
        or full_listing < now - timedelta(seconds=settings.LEVEL2_SCAN_FULL_LISTING_S)
    ):
        return EVERYTHING
    records = previous.errors.order_by("record").values_list("record", flat=True).distinct()
    retry = tuple(records[: RETRY_RECORDS_MAX + 1])
    if len(retry) > RETRY_RECORDS_MAX:
        return EVERYTHING
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*) FILTER (WHERE vanished_at IS NULL),
                max(update_date) FILTER (WHERE update_date <= %s)
            FROM {Dataset._meta.db_table}
            """,
            # A date beyond our clock is a bad record's (or a store clock ahead of ours): it
            # would hide the changes dated before it. Leaving it out only lists more.
            [now],
        )
        stored_count, newest = cursor.fetchone()
    if newest is None:
        return EVERYTHING
    overlap = timedelta(seconds=settings.LEVEL2_SCAN_LISTING_OVERLAP_S)
    return Scope(since=newest - overlap, retry=retry, stored_count=stored_count)


@dataclass
class Listing:
    """The store's cheap list; the ids of rows that did not parse and their errors (unsaved:
    listing runs in the fetch thread, without the database); what was listed, and for a
    listing of changes, the store's count of its datasets."""

    listed: dict[str, ListedDataset]
    unreadable_ids: set[str]
    errors: list[ScanError]
    scope: Scope = EVERYTHING
    store_count: int | None = None

    def ids(self) -> set[str]:
        return self.listed.keys() | self.unreadable_ids

    def misses(self, *, stored: dict[str, Stored]) -> bool:
        """Whether this listing of changes may miss a dataset (one vanished, or one the store
        has though it is neither stored nor listed): the store's count is not the count
        stored plus the datasets listed that are new or back. ``stored``: the listed ids'."""
        if self.scope.everything:
            return False
        arrived = len(self.ids()) - self._listed_stored(stored)
        return self.store_count != self.scope.stored_count + arrived

    def unlisted_count(self, *, stored: dict[str, Stored]) -> int:
        """The stored datasets that a listing of changes did not list: all unchanged."""
        if self.scope.everything:
            return 0
        return self.scope.stored_count - self._listed_stored(stored)

    def _listed_stored(self, stored: dict[str, Stored]) -> int:
        """How many of the listed ids are stored and not vanished."""
        return sum(1 for dataset_id in self.ids() if dataset_id in stored and not stored[dataset_id].vanished)


def list_store(*, client: MetadataClient, scan: Scan, scope: Scope = EVERYTHING) -> Listing:
    """The cheap list of the scope; rows that do not parse are kept out of the vanished check."""
    listing = Listing(listed={}, unreadable_ids=set(), errors=[], scope=scope)
    if scope.everything:
        queries = [{}]
    else:
        # Counted before listing: a dataset added in between makes the counts differ (and
        # every dataset is listed), rather than go unseen.
        listing.store_count = client.dataset_count()
        queries = [{"updated_since": scope.since}, {"created_since": scope.since}]
        if scope.retry:
            queries += [{"dataset_ids": list(scope.retry)}, {"proposal_ids": list(scope.retry)}]
    for query in queries:
        # A row that an earlier query of a listing of changes listed is one error at most.
        earlier = listing.ids()
        for page in client.dataset_list(**query):
            for raw in page:
                try:
                    row = parse_listed(raw)
                except RecordError as error:
                    if error.dataset_id not in earlier:
                        listing.unreadable_ids.add(error.dataset_id)
                        listing.errors.append(
                            ScanError(scan=scan, record=error.dataset_id, message=str(error))
                        )
                    continue
                listing.listed[row.dataset_id] = row
    return listing


def read_stored(ids: Collection[str] | None = None) -> dict[str, Stored]:
    """The stored datasets' compare keys by id: every one, or those of these ids."""
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
            {"" if ids is None else "WHERE id = ANY(%s)"}
            """,
            None if ids is None else [list(ids)],
        )
        return {row[0]: Stored(*row[1:]) for row in cursor.fetchall()}


def plan(*, listing: Listing, stored: dict[str, Stored]) -> tuple[list[ProposalWork], int]:
    """The proposals with work to do, in key order; and how many datasets are unchanged.

    ``stored``: the compare keys of every stored dataset, or for a listing of changes, of
    those it listed (none of the others vanished: ``Listing.misses``)."""
    work: dict[str, ProposalWork] = {}
    unchanged = listing.unlisted_count(stored=stored)
    whole = listing.scope.everything
    for row in listing.listed.values():
        proposal = work.get(row.proposal_id)
        if proposal is None:
            proposal = work[row.proposal_id] = ProposalWork(row.proposal_id, listed_whole=whole)
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
            work.setdefault(
                known.proposal_id, ProposalWork(known.proposal_id, listed_whole=whole)
            ).vanished_ids.append(dataset_id)
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
