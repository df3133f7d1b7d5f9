"""The scanner: one scan's steps in order, batch after batch.

1. listing: the store's cheap list (fetch thread) of every dataset or only of what changed
   (``listing.choose_scope``) beside the stored compare keys; the plan;
2. per batch of whole proposals, fetched one batch ahead (fetching), with the rules of its
   new OPs run on the records there (qualifying), in one transaction: upserting (proposals,
   experiments, OPs, IPs, datasets, vanished), grouping (what changed per OP), the OPs'
   totals, their events, the verdicts of the new OPs; then the batch's OPs join
   ``changed_program_ids``, and those it qualified ``qualified_program_ids``.

A step that reacts to changed datasets (such as marking inversions stale) goes after
grouping in ``_write``: ``BatchChanges`` names the datasets of each OP, and ``stored`` the
compare keys they had before this scan.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ops.metadata.client import MetadataClient, MetadataStoreError
from ops.models import Scan, ScanError
from ops.pipeline import one_ahead
from ops.scan import upserting
from ops.scan.events import record_scan_events
from ops.scan.fetching import FetchedBatch, fetch_batch
from ops.scan.grouping import group_changes
from ops.scan.listing import (
    EVERYTHING,
    Listing,
    Scope,
    Stored,
    batches,
    choose_scope,
    list_store,
    plan,
    read_stored,
)
from ops.scan.qualifying import BatchVerdicts, Qualifying
from ops.scan.statistics import Statistics
from ops.signals import datasets_changed

log = logging.getLogger(__name__)


class Scanner:
    def __init__(
        self,
        *,
        scan: Scan,
        client: MetadataClient,
        changed_program_ids: set[str],
        qualified_program_ids: set[str],
        list_everything: bool = False,
    ):
        self.scan = scan
        # List every dataset even where a listing of changes would do (``choose_scope``).
        self.list_everything = list_everything
        self.client = client
        self.stored: dict[str, Stored] = {}
        self.descriptions: dict[str, str] | None = None
        # The OPs new or changed in each batch, added once the batch is committed.
        self.changed_program_ids = changed_program_ids
        # Of those, the OPs whose verdicts their batch recorded (``qualifying``).
        self.qualified_program_ids = qualified_program_ids
        self.statistics = Statistics(stored=0)
        self.qualifying = Qualifying(known_program_ids=set(), now=timezone.now())

    def run(self) -> None:
        fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"scan-{self.scan.pk}-fetch")
        try:
            listed = self._list(fetcher, choose_scope(scan=self.scan, everything=self.list_everything))
            if listed.misses(stored=self.stored):
                log.info(
                    "scan %s: the store counts %s datasets, not the %d stored and %d listed new: "
                    "listing every dataset",
                    self.scan.pk,
                    listed.store_count,
                    listed.scope.stored_count,
                    len(listed.ids() - self.stored.keys()),
                )
                listed = self._list(fetcher, EVERYTHING)
            self._save_errors(listed.errors)
            stored_count = len(self.stored) if listed.scope.everything else listed.scope.stored_count
            self.statistics = Statistics(stored=stored_count)
            # Of a listing of changes, the OPs of the datasets listed: enough, as an OP taken
            # for new costs only its rules' time (only the OPs a batch makes get verdicts).
            self.qualifying.known_program_ids = {known.program_id for known in self.stored.values()}
            work, unchanged = plan(listing=listed, stored=self.stored)
            Scan.objects.filter(pk=self.scan.pk).update(
                proposals_total=len(work), unchanged_count=unchanged, listed_since=listed.scope.since
            )
            del listed

            def fetch(batch) -> tuple[FetchedBatch, BatchVerdicts]:
                fetched = fetch_batch(client=self.client, scan=self.scan, batch=batch)
                return fetched, self.qualifying.compute(fetched.records)

            # The next batch is fetched while this one is written: the network and the
            # database work at once, and at most two batches are in memory.
            for fetched, verdicts in one_ahead(fetcher, fetch, batches(work)):
                self._store_batch(fetched, verdicts)
        finally:
            # After an error, the fetch underway ends on its own; nobody waits for it.
            fetcher.shutdown(wait=False, cancel_futures=True)

    def _list(self, fetcher: ThreadPoolExecutor, scope: Scope) -> Listing:
        """The store's list of the scope, and ``stored``: the compare keys of every stored
        dataset, or of a listing of changes, those of the datasets it listed."""
        # The store lists its datasets while the database lists what is stored.
        listing = fetcher.submit(list_store, client=self.client, scan=self.scan, scope=scope)
        if scope.everything:
            self.stored = read_stored()
            return listing.result()
        listed = listing.result()
        self.stored = read_stored(listed.ids())
        return listed

    def _store_batch(self, fetched: FetchedBatch, verdicts: BatchVerdicts) -> None:
        """Write one fetched batch in one transaction; its OPs are then up for qualification.

        Nothing of a batch whose fetch failed is written but its errors: its datasets are
        neither new nor vanished until the store answers for them."""
        program_ids: list[str] = []
        qualified_ids: list[str] = []
        if not fetched.fetch_failed:
            upserting.insert_experiments(fetched.records, descriptions=self._descriptions)
        with transaction.atomic():
            if not fetched.fetch_failed:
                program_ids, qualified_ids = self._write(fetched, verdicts)
            self._save_errors(fetched.errors)
            Scan.objects.filter(pk=self.scan.pk).update(
                proposals_done=F("proposals_done") + len(fetched.proposals)
            )
        self.changed_program_ids.update(program_ids)
        self.qualified_program_ids.update(qualified_ids)
        self.statistics.written(len(fetched.records))

    def _write(self, fetched: FetchedBatch, verdicts: BatchVerdicts) -> tuple[list[str], list[str]]:
        """Store the batch and record its events; the OPs that are new or changed, and those
        of them whose verdicts were recorded."""
        # When the store answered for the batch, which its new datasets' rows already hold.
        now = fetched.seen_at
        records = fetched.records
        upserting.insert_proposals({r.proposal_id for r in records})
        new_program_ids = upserting.insert_programs(records, now=now)
        upserting.upsert_datasets(fetched.rows, stored_ids=self.stored)
        vanished_ids = [dataset_id for proposal in fetched.proposals for dataset_id in proposal.vanished_ids]
        upserting.mark_vanished(vanished_ids, now=now)
        changes = group_changes(records=records, vanished_ids=vanished_ids, stored=self.stored)
        upserting.update_program_totals([p for p in changes.program_ids if p not in new_program_ids])
        qualified_ids, verdict_events = self.qualifying.record(verdicts, new_program_ids=new_program_ids)
        record_scan_events(scan=self.scan, changes=changes, then=verdict_events)
        datasets_changed.send(sender=Scanner, scan=self.scan, program_ids=changes.program_ids)
        Scan.objects.filter(pk=self.scan.pk).update(
            new_count=F("new_count") + changes.new_count,
            changed_count=F("changed_count") + changes.changed_count,
            vanished_count=F("vanished_count") + changes.vanished_count,
        )
        return changes.program_ids, qualified_ids

    def _descriptions(self) -> dict[str, str]:
        """The store's experiment descriptions, fetched once per scan (none if that fails)."""
        if self.descriptions is None:
            try:
                self.descriptions = self.client.experiment_descriptions()
            except MetadataStoreError as error:
                log.warning("scan %s: experiment descriptions failed: %s", self.scan.pk, error)
                self._save_errors(
                    [ScanError(scan=self.scan, record="experimentDescriptions", message=str(error))]
                )
                self.descriptions = {}
        return self.descriptions

    def _save_errors(self, errors: list[ScanError]) -> None:
        if not errors:
            return
        ScanError.objects.bulk_create(errors)
        Scan.objects.filter(pk=self.scan.pk).update(error_count=F("error_count") + len(errors))
