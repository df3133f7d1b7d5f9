"""The demo data center's files (``make run``), on the local transfer backend's collections:
the Level 1 folder of every ViSP dataset the demo store lists, and the demo team's results of
every OP with ViSP data, so that a newcomer can queue an OP, report it done and watch its
products appear without a cluster or Globus.

As in the real data center, a dataset's files exist once its record does: the demo store lists
a record only after ``StoreFiles`` has written its files (its ``clock``). Level 2 reads only
ViSP data, so other instruments' datasets get no files.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asdf
from django.conf import settings

from demo.store.generator import Record
from demo.store.server import utc_now
from demo.team import result_path
from inversions.paths import PathRefused, inside
from inversions.products.synthetic import write_l1_dataset, write_results
from inversions.transfers import collections

log = logging.getLogger(__name__)

DEMO_FRAMES = 4
DEMO_SLIT_BINS = 12
DEMO_BINNING = 5
# How long before a record arrives in the store its files are written.
WRITE_AHEAD = timedelta(minutes=10)


@dataclass(frozen=True)
class DemoDataset:
    """What a dataset's synthetic Level 1 files are made from."""

    dataset_id: str
    proposal_id: str
    experiment_id: str
    program_id: str
    bucket: str
    # The spectrograph arm (VSPARMID): 1 is the results' fiducial arm.
    arm: int


def visp_datasets(records: Sequence[Record]) -> list[DemoDataset]:
    """The ViSP datasets among store records, in their order. In each IP the first dataset
    (by id) is arm 1, the canonical one of the results; the others are arms 2 and 3 in turn."""
    visp = [record for record in records if record.get("instrumentName") == "VISP"]
    by_ip: dict[str, list[str]] = {}
    for record in visp:
        by_ip.setdefault(record["instrumentProgramExecutionId"], []).append(record["datasetId"])
    arms = {
        dataset_id: 1 if number == 1 else 2 + number % 2
        for dataset_ids in by_ip.values()
        for number, dataset_id in enumerate(sorted(dataset_ids), start=1)
    }
    return [
        DemoDataset(
            dataset_id=record["datasetId"],
            proposal_id=record["primaryProposalId"],
            experiment_id=record.get("primaryExperimentId") or "",
            program_id=record["observingProgramExecutionId"],
            bucket=record.get("bucket") or "data",
            arm=arms[record["datasetId"]],
        )
        for record in visp
    ]


def write_dataset_files(root: Path, dataset: DemoDataset) -> bool:
    """The dataset's Level 1 folder and its OP's results, each unless there; True when
    something was written. Each folder is written under a hidden name and renamed, so a folder
    under its own name is whole."""
    level1, results = _folders(root, dataset)
    wrote = False
    if not level1.is_dir():
        with _partial(level1) as partial:
            write_l1_dataset(
                partial,
                dataset.dataset_id,
                frames=DEMO_FRAMES,
                arm_id=dataset.arm,
                slit_pixels=DEMO_SLIT_BINS * DEMO_BINNING,
                proposal_id=dataset.proposal_id,
                experiment_id=dataset.experiment_id,
            )
        wrote = True
    if not results.is_dir():
        with _partial(results) as partial:
            write_results(
                partial,
                frames=DEMO_FRAMES,
                slit_bins=DEMO_SLIT_BINS,
                binning=DEMO_BINNING,
                fiducial_arm=1,
                seed=sum(map(ord, dataset.program_id)),
            )
        wrote = True
    return wrote


def _folders(root: Path, dataset: DemoDataset) -> tuple[Path, Path]:
    """The dataset's Level 1 folder and its OP's results folder. PathRefused when an id would
    lead out of the demo's collections (the ids make paths)."""
    level1 = inside(root / collections().level1, dataset.bucket, dataset.proposal_id, dataset.dataset_id)
    results = inside(root / settings.LEVEL2_DEMO_TEAM_COLLECTION, result_path(dataset.program_id))
    return level1, results


def _has_files(root: Path, dataset: DemoDataset) -> bool:
    try:
        return all(folder.is_dir() for folder in _folders(root, dataset))
    except PathRefused:
        return True  # it never gets any: the writer passes over it as well


class _partial:
    """A hidden sibling folder to write in, renamed to ``folder`` when the block succeeds."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder.with_name(f".{folder.name}.partial")

    def __enter__(self) -> Path:
        shutil.rmtree(self.path, ignore_errors=True)  # left by a writer that was stopped
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self.path

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        if exc_type is None:
            self.path.rename(self.folder)


class StoreFiles:
    """Writes the files of a store's records in their ``createDate`` order; the store, on its
    ``clock``, lists no record newer than the files written, so no listed dataset lacks them.

    ``start()`` writes them in a thread: those already created at once (a few minutes on the
    first start, nothing on the next), those still to arrive a little before they do."""

    def __init__(self, records: Sequence[Record], *, root: Path) -> None:
        self.root = root
        visp = {dataset.dataset_id: dataset for dataset in visp_datasets(records)}
        self._queue = [(record["createDate"], visp.get(record["datasetId"])) for record in records]
        self._listed_until = datetime.min
        self._lock = threading.Lock()

    def clock(self) -> datetime:
        """The demo store's clock: now, but never past the newest record with its files."""
        with self._lock:
            return min(utc_now(), self._listed_until)

    def write(self, *, ahead: timedelta | None = None, written_only: bool = False) -> int:
        """Files of every record, oldest first; returns how many datasets got files. With
        ``ahead``, a record still to arrive is written only that long before it does, so that
        the disk holds about what the store lists. With ``written_only``, nothing is written:
        the records whose files are there are listed, up to the first that lacks them."""
        written = 0
        for number, (created, dataset) in enumerate(self._queue, start=1):
            if written_only:
                if dataset is not None and not _has_files(self.root, dataset):
                    return written
            elif ahead is not None:
                time.sleep(max(0.0, (datetime.fromisoformat(created) - ahead - utc_now()).total_seconds()))
            try:
                if not written_only and dataset is not None and write_dataset_files(self.root, dataset):
                    written += 1
            except PathRefused as error:
                log.warning("no demo files for %s: %s", dataset.dataset_id, error)
            following = self._queue[number][0] if number < len(self._queue) else None
            if following != created:  # records created at the same moment are listed together
                with self._lock:  # never back: a writer after the listing of what was there
                    self._listed_until = max(self._listed_until, datetime.fromisoformat(created))
        with self._lock:
            self._listed_until = datetime.max
        return written

    def start(self) -> threading.Thread:
        # A restart lists at once what an earlier start wrote: a first scan that found the
        # store smaller would mark those datasets vanished, and their OPs re-qualified.
        self.write(written_only=True)
        thread = threading.Thread(target=self._write_all, name="demo-files", daemon=True)
        thread.start()
        return thread

    def _write_all(self) -> None:
        # The demo's own frames need no schema check on the way out; it is most of their time.
        with asdf.config_context() as config:
            config.validate_on_write = False
            written = self.write(ahead=WRITE_AHEAD)
        log.info("demo files: %d datasets written, every record has its files", written)
