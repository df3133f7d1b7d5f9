"""Files for the demo (``make run``): Level 1 frames in the local L1 collection and one
synthetic result folder per invertible OP in the local "team" collection, so that a newcomer
can queue an OP, report it done and watch its products appear without a cluster or Globus.

Only for the demo store on the local transfer backend; written for invertible OPs a few at a
time by a periodic task, each dataset once.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings

from inversions.paths import PathRefused, inside
from inversions.pipeline import datasets_to_preprocess
from inversions.products.synthetic import write_l1_dataset, write_results
from inversions.transfers import collections
from ops.models import ObservingProgram
from ops.selectors import PROGRAM_SORTS
from ops.states import State

log = logging.getLogger(__name__)

DEMO_FRAMES = 4
DEMO_SLIT_BINS = 12
DEMO_BINNING = 5


def demo_result_path(program_id: str) -> str:
    """Where the demo's results of an OP are on the team collection."""
    return f"/demo/{program_id}/"


def _root() -> Path:
    return Path(settings.LEVEL2_LOCAL_TRANSFER_ROOT)


def prepare_program(program: ObservingProgram) -> bool:
    """Write the OP's Level 1 folders and its results; False when there was nothing to write."""
    datasets = datasets_to_preprocess(program_id=program.pk)
    if not datasets:
        return False
    # inside(): the ids come from the store, the files must stay in the demo's collections.
    results = inside(_root() / settings.LEVEL2_DEMO_TEAM_COLLECTION, demo_result_path(program.pk))
    if results.is_dir():
        return False
    for arm, dataset in enumerate(datasets, start=1):
        folder = inside(
            _root() / collections().level1, dataset.bucket or "data", dataset.proposal_id, dataset.id
        )
        if not folder.is_dir():
            write_l1_dataset(
                folder,
                dataset.id,
                frames=DEMO_FRAMES,
                # The first dataset is the canonical one: its arm is the results' fiducial arm.
                arm_id=1 if arm == 1 else 2 + arm % 2,
                slit_pixels=DEMO_SLIT_BINS * DEMO_BINNING,
                proposal_id=dataset.proposal_id,
                experiment_id=program.experiment_id or "",
            )
    partial = results.with_name(f".{results.name}.partial")
    write_results(
        partial,
        frames=DEMO_FRAMES,
        slit_bins=DEMO_SLIT_BINS,
        binning=DEMO_BINNING,
        fiducial_arm=1,
        seed=sum(map(ord, program.pk)),
    )
    partial.rename(results)
    return True


def prepare_demo_files(*, limit: int = 10) -> int:
    """Files for up to ``limit`` invertible OPs that have none yet, in the board's order (the
    candidates a newcomer sees first are ready first); returns how many got them."""
    team = _root() / settings.LEVEL2_DEMO_TEAM_COLLECTION / "demo"
    done = {path.name for path in team.iterdir()} if team.is_dir() else set()
    prepared = 0
    programs = ObservingProgram.objects.filter(state=State.INVERTIBLE).order_by(*PROGRAM_SORTS["score"][1])
    for program in programs.iterator():
        if program.pk in done:
            continue
        try:
            written = prepare_program(program)
        except PathRefused as error:
            log.warning("no demo files for %s: %s", program.pk, error)
            continue
        if written:
            prepared += 1
            log.info("demo files written for %s", program.pk)
        if prepared >= limit:
            break
    return prepared
