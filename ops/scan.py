"""The scan: bring proposals, experiments, OPs, IPs and datasets up to date with the store.

Incremental. The cheap list (id, proposal, updateDate) of every dataset is compared with
what is stored; only new or changed datasets are fetched in full, a few proposals at a
time, and written in one transaction per batch with bulk upserts. A killed scan therefore
leaves whole batches behind, and the next scan's compare finds exactly what is left.
Datasets no longer listed are marked vanished, never deleted. Only one scan runs at a time
(a PostgreSQL advisory lock held by a session of its own, which dies with the process).

Qualification is a step of its own: the returned row's ``changed_program_ids`` are the OPs
that the caller (the task, the command) hands to ``ops.qualification.qualify_programs``
once the scan lock is released.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.models import BooleanField, F
from django.db.models.expressions import RawSQL
from django.utils import timezone
from psycopg import sql
from psycopg.types.json import Jsonb

from ops import selectors
from ops.history import Actor, EventRequest, record_events
from ops.metadata.client import MetadataClient, MetadataStoreError
from ops.metadata.records import DatasetRecord, ListedDataset, RecordError, parse_dataset, parse_listed
from ops.models import (
    Dataset,
    Experiment,
    InstrumentProgram,
    ObservingProgram,
    ProgramEvent,
    Proposal,
    Scan,
    ScanError,
    key_numbers,
)
from ops.states import ActorKind, State

log = logging.getLogger(__name__)

# Datasets fetched and written per transaction: whole proposals are added to a batch until
# it holds at least this many, so memory stays bounded and round trips stay few.
BATCH_DATASETS = 2000

SCANNER = Actor(ActorKind.SCANNER)

# The planner's statistics of the tables a scan fills are refreshed each time the scan has
# written as many datasets as were stored when they were last refreshed (and at least this
# many are stored): a first scan into an empty database otherwise plans its per-batch and
# qualification queries for empty tables (whole-table reads where an index lookup is right,
# each batch slower than the one before).
ANALYZE_FROM_DATASETS = 2 * BATCH_DATASETS
# The tables and the columns their lookups use: sampling the JSON columns (raw, details)
# would cost more than the statistics save.
ANALYZED_COLUMNS = {
    Dataset: ["id", "program_id", "vanished_at"],
    ObservingProgram: ["id", "current_event_id"],
    InstrumentProgram: ["id", "program_id"],
    ProgramEvent: ["id", "program_id"],
}

# A requested scan normally starts within seconds. A row still "running" without the lock
# after this long lost its worker; it no longer blocks "Scan now" (the next scan closes it).
REQUEST_WAIT_LIMIT = timedelta(minutes=5)

# Dataset columns that a record sets, in the order the upsert copies them; the upsert adds
# first_seen_at and vanished_at.
RECORD_COLUMNS = [
    field.column
    for field in Dataset._meta.concrete_fields
    if field.column not in ("first_seen_at", "vanished_at")
]

# JSON blocks that are in the raw record too, by column. The store sends them as objects:
# the upsert takes them out of raw in SQL instead of serialising them a second time (that
# costs the scan more than raw itself). A block sent as a JSON string is sent as parsed.
BLOCKS_IN_RAW = {
    "light_level": "lightLevel",
    "fried_parameter": "friedParameter",
    "polarimetric_accuracy": "polarimetricAccuracy",
}


class ScanAlreadyRunning(Exception):
    """Another scan holds the scan lock; this one did not start."""


@contextmanager
def _scan_lock() -> Iterator[None]:
    """Hold the scan lock on a connection of its own for the length of the block.

    The lock belongs to that session, not to a transaction, so the per-batch commits of the
    scan do not release it; if the process dies, PostgreSQL ends the session and the lock.
    """
    lock_connection = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with lock_connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [selectors.SCAN_LOCK_KEY])
            (acquired,) = cursor.fetchone()
        if not acquired:
            raise ScanAlreadyRunning("Another scan is running; this one did not start.")
        try:
            yield
        finally:
            # Unlock before closing: the server ends a closed session a moment later, and
            # a scan started right after this one must not find the lock still held. (A lost
            # session has released it already.)
            with suppress(DatabaseError), lock_connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [selectors.SCAN_LOCK_KEY])
    finally:
        lock_connection.close()


def run_scan(
    *, trigger: Scan.Trigger, user: AbstractBaseUser | None = None, scan: Scan | None = None
) -> Scan:
    """Run one scan to the end and return its row (succeeded, or failed with a message).

    The row's ``changed_program_ids`` are the OPs new or changed in the batches that were
    committed (a failed scan may have committed some), for the qualification that follows.
    ``scan`` is a row made beforehand (the "Scan now" button); otherwise one is made here.
    Raises ScanAlreadyRunning, without making a row, when another scan is running; a row
    made beforehand is then marked failed with that reason.
    """
    try:
        with _scan_lock():
            scan = _start(scan=scan, trigger=trigger, user=user)
            changed_program_ids: set[str] = set()
            try:
                with MetadataClient() as client:
                    _Scanner(scan=scan, client=client, changed_program_ids=changed_program_ids).run()
            except BaseException as error:
                # Even Ctrl-C: never leave a row that says running when nothing runs.
                log.exception("scan %s failed", scan.pk)
                _finish(scan, status=Scan.Status.FAILED, message=_failure_message(error))
                if not isinstance(error, Exception):
                    raise
            finally:
                scan.changed_program_ids = tuple(sorted(changed_program_ids))
    except ScanAlreadyRunning as error:
        if scan is not None and scan.status == Scan.Status.RUNNING and scan.pk:
            _finish(scan, status=Scan.Status.FAILED, message=str(error))
        raise
    return scan


def request_scan(*, user: AbstractBaseUser) -> Scan:
    """The row of a scan someone asked for ("Scan now"); the caller enqueues the task.

    Raises ScanAlreadyRunning when a scan is running or another request is still waiting
    for a worker, so that a double click does not queue two scans.
    """
    waiting = Scan.objects.filter(
        status=Scan.Status.RUNNING, started_at__gte=timezone.now() - REQUEST_WAIT_LIMIT
    )
    if selectors.scan_is_running() or waiting.exists():
        raise ScanAlreadyRunning("A scan is already running; its progress is on the Scans page.")
    return Scan.objects.create(trigger=Scan.Trigger.BUTTON, triggered_by=user)


def _failure_message(error: BaseException) -> str:
    if isinstance(error, MetadataStoreError):
        return f"The scan stopped: {error}"
    if isinstance(error, KeyboardInterrupt):
        return "The scan was interrupted; the next scan completes its work."
    return "The scan stopped on an unexpected error; we logged it. The next scan completes its work."


def _start(*, scan: Scan | None, trigger: Scan.Trigger, user: AbstractBaseUser | None) -> Scan:
    now = timezone.now()
    # We hold the lock, so any other row still marked running lost its process.
    Scan.objects.filter(status=Scan.Status.RUNNING).exclude(pk=scan.pk if scan else None).update(
        status=Scan.Status.FAILED,
        finished_at=now,
        message="Stopped before it finished (its process ended); a later scan completed its work.",
    )
    if scan is None:
        return Scan.objects.create(trigger=trigger, triggered_by=user)
    scan.status = Scan.Status.RUNNING
    scan.finished_at = None
    scan.message = ""
    scan.save(update_fields=["status", "finished_at", "message"])
    return scan


def _finish(scan: Scan, *, status: Scan.Status, message: str = "") -> None:
    Scan.objects.filter(pk=scan.pk).update(status=status, finished_at=timezone.now(), message=message)
    scan.refresh_from_db()


@dataclass(slots=True)
class _Stored:
    proposal_id: str
    program_id: str
    update_date: datetime | None
    vanished: bool


@dataclass
class _ProposalWork:
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
class _FetchedBatch:
    """One batch as fetched and parsed: its records and the errors of the rest."""

    proposals: list[_ProposalWork]
    records: list[DatasetRecord] = field(default_factory=list)
    # The records as COPY rows (``_dataset_row``), in the same order.
    rows: list[list[object]] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    # The store did not answer for these proposals (one error each): nothing else to write.
    fetch_failed: bool = False


@dataclass
class _OpChanges:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)


class _Scanner:
    def __init__(self, *, scan: Scan, client: MetadataClient, changed_program_ids: set[str]):
        self.scan = scan
        self.client = client
        self.stored: dict[str, _Stored] = {}
        self.descriptions: dict[str, str] | None = None
        # The OPs new or changed in each batch, added once the batch is committed.
        self.changed_program_ids = changed_program_ids
        self.datasets_written = 0
        self.datasets_when_analyzed = 0

    def run(self) -> None:
        fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"scan-{self.scan.pk}-fetch")
        try:
            # The store lists its datasets while the database lists what is stored.
            listing = fetcher.submit(self._list)
            self.stored = self._read_stored()
            listed, unreadable_ids, list_errors = listing.result()
            self._save_errors(list_errors)
            self.datasets_when_analyzed = len(self.stored)
            work, unchanged = self._plan(listed, unreadable_ids)
            Scan.objects.filter(pk=self.scan.pk).update(proposals_total=len(work), unchanged_count=unchanged)
            # The next batch is fetched while this one is written: the network and the
            # database work at once, and at most two batches are in memory.
            for fetched in _one_ahead(fetcher, self._fetch_batch, self._batches(work)):
                self._store_batch(fetched)
        finally:
            # After an error, the fetch underway ends on its own; nobody waits for it.
            fetcher.shutdown(wait=False, cancel_futures=True)
        _finish(self.scan, status=Scan.Status.SUCCEEDED)
        log.info(
            "scan %s: %d new, %d changed, %d unchanged, %d vanished, %d errors",
            self.scan.pk,
            self.scan.new_count,
            self.scan.changed_count,
            self.scan.unchanged_count,
            self.scan.vanished_count,
            self.scan.error_count,
        )

    def _list(self) -> tuple[dict[str, ListedDataset], set[str], list[ScanError]]:
        """The cheap list, and the errors of rows that do not parse (unsaved: this runs in the
        fetch thread, without the database); their ids are kept out of the vanished check."""
        listed: dict[str, ListedDataset] = {}
        unreadable_ids: set[str] = set()
        errors = []
        for page in self.client.dataset_list():
            for raw in page:
                try:
                    row = parse_listed(raw)
                except RecordError as error:
                    unreadable_ids.add(error.dataset_id)
                    errors.append(ScanError(scan=self.scan, record=error.dataset_id, message=str(error)))
                    continue
                listed[row.dataset_id] = row
        return listed, unreadable_ids, errors

    def _read_stored(self) -> dict[str, _Stored]:
        # A record the store never updated is stored with update_date = createDate; its
        # compare key is None, like the list's. Only where update_date equals createDate does
        # the raw record tell whether the store sent an updateDate: raw is the big column,
        # and reading it for every dataset would cost the re-scan more than all the rest.
        store_updated = RawSQL(
            "CASE WHEN update_date <> create_date THEN true"
            " ELSE coalesce(jsonb_typeof(raw -> 'updateDate') = 'string', false) END",
            [],
            output_field=BooleanField(),
        )
        rows = Dataset.objects.annotate(store_updated=store_updated).values_list(
            "id", "proposal_id", "program_id", "update_date", "store_updated", "vanished_at"
        )
        return {
            dataset_id: _Stored(
                proposal_id, program_id, update_date if store_updated else None, vanished_at is not None
            )
            for dataset_id, proposal_id, program_id, update_date, store_updated, vanished_at in rows.iterator(
                chunk_size=10000
            )
        }

    def _plan(
        self, listed: dict[str, ListedDataset], unreadable_ids: set[str]
    ) -> tuple[list[_ProposalWork], int]:
        work: dict[str, _ProposalWork] = {}
        unchanged = 0
        for row in listed.values():
            proposal = work.setdefault(row.proposal_id, _ProposalWork(row.proposal_id))
            proposal.listed_count += 1
            stored = self.stored.get(row.dataset_id)
            if stored is None:
                proposal.new_ids.append(row.dataset_id)
            elif stored.vanished or stored.update_date != row.update_date:
                proposal.changed_ids.append(row.dataset_id)
            else:
                unchanged += 1
        for dataset_id, stored in self.stored.items():
            if not stored.vanished and dataset_id not in listed and dataset_id not in unreadable_ids:
                work.setdefault(stored.proposal_id, _ProposalWork(stored.proposal_id)).vanished_ids.append(
                    dataset_id
                )
        todo = [p for p in work.values() if p.fetch_ids or p.vanished_ids]
        todo.sort(key=lambda p: (*key_numbers(p.proposal_id), p.proposal_id))
        return todo, unchanged

    @staticmethod
    def _batches(work: list[_ProposalWork]) -> Iterator[list[_ProposalWork]]:
        batch: list[_ProposalWork] = []
        size = 0
        for proposal in work:
            batch.append(proposal)
            size += len(proposal.fetch_ids) + len(proposal.vanished_ids)
            if size >= BATCH_DATASETS:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch

    def _fetch_batch(self, batch: list[_ProposalWork]) -> _FetchedBatch:
        """Fetch and parse one batch (in the read-ahead thread: HTTP and parsing only, no
        database). A batch the store does not answer is one error per proposal."""
        try:
            raw_records, raw_texts = self._fetch(batch)
        except MetadataStoreError as error:
            log.warning(
                "scan %s: fetching proposals %s failed: %s",
                self.scan.pk,
                [p.proposal_id for p in batch],
                error,
            )
            return _FetchedBatch(
                proposals=batch,
                errors=[ScanError(scan=self.scan, record=p.proposal_id, message=str(error)) for p in batch],
                fetch_failed=True,
            )
        wanted = {dataset_id for proposal in batch for dataset_id in proposal.fetch_ids}
        records: dict[str, tuple[DatasetRecord, str | None]] = {}
        errors: list[ScanError] = []
        for raw, raw_text in zip(raw_records, raw_texts, strict=True):
            try:
                record = parse_dataset(raw)
            except RecordError as error:
                if error.dataset_id in wanted or error.dataset_id == "?":
                    errors.append(ScanError(scan=self.scan, record=error.dataset_id, message=str(error)))
                continue
            # Datasets that arrived after the list was read wait for the next scan.
            if record.dataset_id in wanted:
                records[record.dataset_id] = (record, raw_text)
        return _FetchedBatch(
            proposals=batch,
            records=[record for record, _ in records.values()],
            rows=[_dataset_row(record, raw_text) for record, raw_text in records.values()],
            errors=errors,
        )

    def _store_batch(self, fetched: _FetchedBatch) -> None:
        """Write one fetched batch in one transaction; its OPs are then up for qualification.

        Nothing of a batch whose fetch failed is written but its errors: its datasets are
        neither new nor vanished until the store answers for them."""
        program_ids: list[str] = []
        if not fetched.fetch_failed:
            self._learn_experiments(fetched.records)
        with transaction.atomic():
            if not fetched.fetch_failed:
                program_ids = self._write(fetched)
            self._save_errors(fetched.errors)
            Scan.objects.filter(pk=self.scan.pk).update(
                proposals_done=F("proposals_done") + len(fetched.proposals)
            )
        self.changed_program_ids.update(program_ids)
        self.datasets_written += len(fetched.records)
        self._analyze_if_grown()

    def _analyze_if_grown(self) -> None:
        """Refresh the scanned tables' statistics (see ANALYZE_FROM_DATASETS)."""
        datasets = len(self.stored) + self.datasets_written
        if datasets < max(ANALYZE_FROM_DATASETS, 2 * self.datasets_when_analyzed):
            return
        tables = ", ".join(
            f"{model._meta.db_table} ({', '.join(columns)})" for model, columns in ANALYZED_COLUMNS.items()
        )
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {tables}")
        self.datasets_when_analyzed = datasets

    def _fetch(self, batch: list[_ProposalWork]) -> tuple[list[dict], list[str | None]]:
        """Full records: whole proposals by proposal id, the rest by dataset id; and each
        record's JSON text as the store sent it (None where the page has none)."""
        whole = [p.proposal_id for p in batch if p.fetch_ids and p.fetch_whole_proposal]
        some = [dataset_id for p in batch if not p.fetch_whole_proposal for dataset_id in p.fetch_ids]
        pages: list[list[dict]] = []
        if whole:
            pages.extend(self.client.datasets_by_proposal(whole, keep_texts=True))
        for start in range(0, len(some), BATCH_DATASETS):
            pages.extend(self.client.datasets_by_id(some[start : start + BATCH_DATASETS], keep_texts=True))
        raw_records: list[dict] = []
        raw_texts: list[str | None] = []
        for page in pages:
            raw_records.extend(page)
            raw_texts.extend(getattr(page, "texts", None) or [None] * len(page))
        return raw_records, raw_texts

    def _learn_experiments(self, records: list[DatasetRecord]) -> None:
        """Make the experiments not yet known, with their descriptions (one fetch per scan)."""
        experiment_ids = {r.experiment_id for r in records if r.experiment_id}
        unknown = experiment_ids - set(
            Experiment.objects.filter(pk__in=experiment_ids).values_list("pk", flat=True)
        )
        if not unknown:
            return
        if self.descriptions is None:
            try:
                self.descriptions = self.client.experiment_descriptions()
            except MetadataStoreError as error:
                log.warning("scan %s: experiment descriptions failed: %s", self.scan.pk, error)
                self._save_errors(
                    [ScanError(scan=self.scan, record="experimentDescriptions", message=str(error))]
                )
                self.descriptions = {}
        Experiment.objects.bulk_create(
            [
                Experiment(
                    id=experiment_id,
                    cycle=key_numbers(experiment_id)[0],
                    number=key_numbers(experiment_id)[1],
                    description=self.descriptions.get(experiment_id, ""),
                )
                for experiment_id in sorted(unknown)
            ],
            ignore_conflicts=True,
        )

    def _write(self, fetched: _FetchedBatch) -> list[str]:
        """Store the batch and record its events; the OPs that are new or changed."""
        batch, records = fetched.proposals, fetched.records
        now = timezone.now()
        proposal_ids = {r.proposal_id for r in records}
        Proposal.objects.bulk_create(
            [
                Proposal(id=pid, cycle=key_numbers(pid)[0], number=key_numbers(pid)[1])
                for pid in sorted(proposal_ids)
            ],
            ignore_conflicts=True,
        )
        first_of_program = sorted({r.program_id: r for r in reversed(records)}.items())
        first_of_ip = sorted({r.instrument_program_id: r for r in reversed(records)}.items())
        _insert_programs(
            [program_id for program_id, _ in first_of_program],
            [r.proposal_id for _, r in first_of_program],
            [r.experiment_id or None for _, r in first_of_program],
            [ip_id for ip_id, _ in first_of_ip],
            [r.program_id for _, r in first_of_ip],
            [r.instrument_name for _, r in first_of_ip],
            now=now,
        )
        _upsert_datasets(fetched.rows, now=now)
        vanished_ids = [dataset_id for proposal in batch for dataset_id in proposal.vanished_ids]
        Dataset.objects.filter(pk__in=vanished_ids, vanished_at__isnull=True).update(vanished_at=now)

        changes: dict[str, _OpChanges] = defaultdict(_OpChanges)
        new_count = changed_count = 0
        for r in records:
            stored = self.stored.get(r.dataset_id)
            if stored is None:
                changes[r.program_id].added.append(r.dataset_id)
                new_count += 1
            else:
                changes[r.program_id].changed.append(r.dataset_id)
                changed_count += 1
                if stored.program_id != r.program_id:  # moved: its old OP changed too
                    changes[stored.program_id].changed.append(r.dataset_id)
        for dataset_id in vanished_ids:
            changes[self.stored[dataset_id].program_id].vanished.append(dataset_id)

        program_ids = sorted(changes)
        _update_program_totals(program_ids)
        self._record_events(changes)
        Scan.objects.filter(pk=self.scan.pk).update(
            new_count=F("new_count") + new_count,
            changed_count=F("changed_count") + changed_count,
            vanished_count=F("vanished_count") + len(vanished_ids),
        )
        return program_ids

    def _record_events(self, changes: dict[str, _OpChanges]) -> None:
        """``discovered`` for new OPs; one information event for each OP that changed."""
        # Lock first (in id order, as record_events does), so that the state read here is
        # still the state when the same-state event is checked.
        programs = (
            ObservingProgram.objects.select_for_update(of=("self",))
            .filter(pk__in=list(changes))
            .select_related("current_event")
            .defer("current_event__details")  # only its state is needed
            .order_by("pk")
        )
        requests = []
        for program in programs:
            if program.current_event is None:
                settles_at = program.settles_at()
                details = {
                    "scan": self.scan.pk,
                    "dataset_count": program.dataset_count,
                    "settles_at": settles_at.isoformat() if settles_at else None,
                }
                requests.append(EventRequest(program.pk, State.DISCOVERED, details))
                continue
            change = changes[program.pk]
            details = {
                "scan": self.scan.pk,
                "note": _describe_change(change),
                "dataset_count": program.dataset_count,
                "datasets_added": sorted(change.added),
                "datasets_changed": sorted(change.changed),
                "datasets_vanished": sorted(change.vanished),
            }
            requests.append(EventRequest(program.pk, State(program.current_event.to_state), details))
        record_events(requests=requests, actor=SCANNER)

    def _save_errors(self, errors: list[ScanError]) -> None:
        if not errors:
            return
        ScanError.objects.bulk_create(errors)
        Scan.objects.filter(pk=self.scan.pk).update(error_count=F("error_count") + len(errors))


def _one_ahead[Item, Result](
    pool: Executor, compute: Callable[[Item], Result], items: Iterable[Item]
) -> Iterator[Result]:
    """``compute`` of each item in turn, run in ``pool`` while the caller works on the result
    before: one result ahead at most. An error of ``compute`` is raised here, in order."""
    pending: Future[Result] | None = None
    for item in items:
        previous, pending = pending, pool.submit(compute, item)
        if previous is not None:
            yield previous.result()
    if pending is not None:
        yield pending.result()


def _describe_change(change: _OpChanges) -> str:
    parts = [
        f"{len(ids)} dataset{'s' if len(ids) != 1 else ''} {verb}"
        for ids, verb in [(change.added, "added"), (change.changed, "changed"), (change.vanished, "vanished")]
        if ids
    ]
    return "Datasets changed in the metadata store: " + ", ".join(parts) + "."


def _update_program_totals(program_ids: list[str]) -> None:
    """dataset_count and newest createDate of each OP, over its datasets still listed.

    One aggregate over the OPs' datasets, joined to the OPs (0 and NULL for an OP with
    none left), rather than two correlated subqueries per OP.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {ObservingProgram._meta.db_table} AS program
            SET dataset_count = coalesce(live.dataset_count, 0),
                newest_dataset_created_at = live.newest_created_at
            FROM unnest(%(ids)s::text[]) AS changed(program_id)
            LEFT JOIN (
                SELECT program_id, count(*) AS dataset_count, max(create_date) AS newest_created_at
                FROM {Dataset._meta.db_table}
                WHERE program_id = ANY(%(ids)s::text[]) AND vanished_at IS NULL
                GROUP BY program_id
            ) AS live USING (program_id)
            WHERE program.id = changed.program_id
            """,
            {"ids": program_ids},
        )


def _insert_programs(
    program_ids: list[str],
    proposal_ids: list[str],
    experiment_ids: list[str | None],
    ip_ids: list[str],
    ip_program_ids: list[str],
    instruments: list[str],
    *,
    now: datetime,
) -> None:
    """Make the OPs and IPs not yet stored (bulk_create(ignore_conflicts=True) as plain SQL:
    for the thousands of OPs and IPs of a first scan, building and preparing a model instance
    each cost more than the inserts). New OPs start as the model's defaults make them: no
    datasets counted yet, no event, no state. Rows go in the order given (sorted ids)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {ObservingProgram._meta.db_table} (id, proposal_id, experiment_id,
                first_seen_at, newest_dataset_created_at, dataset_count, current_event_id, state)
            SELECT id, proposal_id, experiment_id, %(now)s, NULL, 0, NULL, ''
            FROM unnest(%(ids)s::text[], %(proposal_ids)s::text[], %(experiment_ids)s::text[])
                WITH ORDINALITY AS program (id, proposal_id, experiment_id, position)
            ORDER BY position
            ON CONFLICT DO NOTHING
            """,
            {"now": now, "ids": program_ids, "proposal_ids": proposal_ids, "experiment_ids": experiment_ids},
        )
        cursor.execute(
            f"""
            INSERT INTO {InstrumentProgram._meta.db_table} (id, program_id, instrument)
            SELECT id, program_id, instrument
            FROM unnest(%(ids)s::text[], %(program_ids)s::text[], %(instruments)s::text[])
                WITH ORDINALITY AS ip (id, program_id, instrument, position)
            ORDER BY position
            ON CONFLICT DO NOTHING
            """,
            {"ids": ip_ids, "program_ids": ip_program_ids, "instruments": instruments},
        )


def _upsert_datasets(rows: list[list[object]], *, now: datetime) -> None:
    """Insert or update the datasets: COPY into a scratch table, then one INSERT … ON CONFLICT.

    ``rows`` are records as ``_dataset_row`` makes them. bulk_create(update_conflicts=True)
    builds one SQL text with 30 parameters per row, which costs the scan more than the
    database's own work; COPY sends rows as they are.
    """
    table = sql.Identifier(Dataset._meta.db_table)
    record_columns = sql.SQL(", ").join(map(sql.Identifier, RECORD_COLUMNS))
    values = sql.SQL(", ").join(
        sql.SQL(
            "coalesce({column}, CASE WHEN jsonb_typeof(raw -> {key}) = 'object' THEN raw -> {key} END)"
        ).format(column=sql.Identifier(column), key=sql.Literal(key))
        if (key := BLOCKS_IN_RAW.get(column))
        else sql.Identifier(column)
        for column in RECORD_COLUMNS
    )
    # A stored dataset keeps its first_seen_at; a listed one is not vanished.
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(column))
        for column in [*RECORD_COLUMNS, "vanished_at"]
        if column != "id"
    )
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        cursor.execute(
            sql.SQL("CREATE TEMP TABLE scan_dataset_upsert AS SELECT {} FROM {} WITH NO DATA").format(
                record_columns, table
            )
        )
        with cursor.copy(sql.SQL("COPY scan_dataset_upsert ({}) FROM STDIN").format(record_columns)) as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            sql.SQL(
                "INSERT INTO {table} ({record_columns}, first_seen_at, vanished_at)"
                " SELECT {values}, %s, NULL FROM scan_dataset_upsert"
                " ON CONFLICT (id) DO UPDATE SET {updates}"
            ).format(table=table, record_columns=record_columns, values=values, updates=updates),
            [now],
        )
        cursor.execute("DROP TABLE scan_dataset_upsert")


def _json(value: dict | None) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _block_unless_in_raw(r: DatasetRecord, column: str) -> Jsonb | None:
    """A JSON block to send, or None when PostgreSQL takes it out of raw (see BLOCKS_IN_RAW)."""
    if isinstance(r.raw.get(BLOCKS_IN_RAW[column]), str):
        return _json(getattr(r, column))
    return None


def _dataset_row(r: DatasetRecord, raw_text: str | None = None) -> list[object]:
    """A record as the values of RECORD_COLUMNS, ready for COPY.

    Made in the read-ahead thread, so that the write only sends it. ``raw_text`` is the
    record's JSON as the store sent it; without it, raw is serialised here.
    """
    values = {
        "id": r.dataset_id,
        "instrument_program_id": r.instrument_program_id,
        "program_id": r.program_id,
        "proposal_id": r.proposal_id,
        "experiment_id_text": r.experiment_id,
        "instrument_name": r.instrument_name,
        "create_date": r.create_date,
        "update_date": r.update_date or r.create_date,
        "start_time": r.start_time,
        "end_time": r.end_time,
        "bounding_box": r.bounding_box,
        "stokes_parameters": r.stokes_parameters,
        "wavelength_min": r.wavelength_min,
        "wavelength_max": r.wavelength_max,
        "spectral_lines": r.spectral_lines,
        "frame_count": r.frame_count,
        "health_good": r.health_good,
        "gos_open": r.gos_open,
        "ao_locked": r.ao_locked,
        "light_level": _block_unless_in_raw(r, "light_level"),
        "fried_parameter": _block_unless_in_raw(r, "fried_parameter"),
        "polarimetric_accuracy": _block_unless_in_raw(r, "polarimetric_accuracy"),
        "exposure_time": r.exposure_time,
        "dataset_size": r.dataset_size,
        "is_embargoed": r.is_embargoed,
        "embargo_end_date": r.embargo_end_date,
        "bucket": r.bucket,
        "product_id": r.product_id,
        "browse_movie_url": r.browse_movie_url,
        # JSON text: COPY hands it to the jsonb column as it is.
        "raw": raw_text if raw_text is not None else json.dumps(r.raw),
    }
    return [values[column] for column in RECORD_COLUMNS]
