"""The entry point: results + L1 headers in, Level 2 FITS + ASDF + quicklooks out."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits

from inversions.products.errors import ProductInputError
from inversions.products.frames import (
    TEMPORARY_SUFFIX,
    FrameJob,
    FramePlan,
    HeaderValues,
    WrittenFrame,
    hdu_count,
    is_complete,
    read_header_values,
)
from inversions.products.level1 import CanonicalDataset, check_slit, find_canonical, read_l1_header
from inversions.products.naming import asdf_file_name, check_inversion_id, frame_file_name, new_inversion_id
from inversions.products.results import Results, read_results
from inversions.products.wcs import check_l1_axes
from inversions.products.workers import write_frames


@dataclass(frozen=True)
class ProductFile:
    name: str
    bytes: int


@dataclass(frozen=True)
class GenerationResult:
    inversion_id: str
    out_dir: Path
    files: tuple[ProductFile, ...]  # the FITS files, in time order
    asdf_path: Path
    quicklooks: tuple[Path, ...]
    frame_count: int
    frames_written: int  # the rest were already complete (a re-run)
    spectral_lines: tuple[str, ...]  # ASDF keys, one per arm: FeI630, NaID589, CaII854
    canonical_dataset: str
    dataset_ids: tuple[str, ...]
    bytes: int  # FITS and ASDF
    duration_s: float


def generate(
    results_dir: Path,
    l1_dir: Path,
    out_dir: Path,
    *,
    inversion_id: str | None = None,
    proposal_id: str | None = None,
    dataset_ids: list[str] | None = None,
    processes: int = 1,
    quicklook_dir: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> GenerationResult:
    """Write the Level 2 products of one inversion into `out_dir`.

    `results_dir` holds the three result files, `l1_dir` one folder per dataset used (all of its
    sub-folders unless `dataset_ids` names them). `proposal_id` defaults to the canonical
    dataset's PROP_ID. Frames already written and complete are kept (a re-run resumes);
    `processes` > 1 writes frames in that many worker processes. `on_progress(done, total)` is
    called in this thread as frames complete. Quicklooks go to `quicklook_dir` (default: a
    ``quicklook`` folder beside `out_dir`, so that publishing `out_dir` leaves them out).
    Raises ProductInputError, with a message naming the file, key or counts, on bad input.
    """
    # Imported here: frame-writing worker processes import this package for the frame writer
    # alone, and these (dkist, gwcs, matplotlib) would add seconds to the start of each.
    from inversions.products.coordinates import read_l1_coordinates
    from inversions.products.metadata import build_inversion, inventory, write_asdf
    from inversions.products.quicklooks import write_quicklooks

    started = time.perf_counter()
    results_dir, l1_dir, out_dir = Path(results_dir), Path(l1_dir), Path(out_dir)
    inversion_id = check_inversion_id(inversion_id or new_inversion_id())
    results, canonical, first_header = fit_results(results_dir, l1_dir, dataset_ids=dataset_ids)
    l1_coordinates = read_l1_coordinates(canonical.asdf_path)
    if proposal_id is None:
        if "PROP_ID" not in first_header:
            raise ProductInputError(f"{canonical.frames[0].path.name} has no PROP_ID.")
        proposal_id = str(first_header["PROP_ID"])

    jobs = _jobs(canonical, inversion_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_partial_files(out_dir)
    expected_hdus = hdu_count(results)
    todo = [job for job in jobs if not is_complete(out_dir / job.file_name, expected_hdus)]
    done = len(jobs) - len(todo)
    written_headers: dict[int, list[HeaderValues]] = {}

    def frame_done(frame: WrittenFrame) -> None:
        nonlocal done
        done += 1
        written_headers[frame.index] = frame.headers
        if on_progress:
            on_progress(done, len(jobs))

    if on_progress:
        on_progress(done, len(jobs))
    plan = FramePlan(results=results, inversion_id=inversion_id, out_dir=out_dir)
    with ThreadPoolExecutor(max_workers=1) as drawing:
        # The quicklooks need only the results: drawn while the frames are written (much of which
        # is I/O, or other processes' work).
        quicklooks_drawn = drawing.submit(
            write_quicklooks, results, quicklook_dir or out_dir.parent / f"{out_dir.name}_quicklook"
        )
        write_frames(plan, todo, processes=processes, on_frame_done=frame_done)
    quicklooks = quicklooks_drawn.result()

    file_names = [job.file_name for job in jobs]  # time order: the L1 frames are sorted by DATE-BEG
    meta_inventory = inventory(
        inversion_id=inversion_id,
        proposal_id=proposal_id,
        canonical_dataset=canonical.dataset_id,
        dataset_ids=canonical.dataset_ids,
        results=results,
    )
    inversion = build_inversion(
        out_dir=out_dir,
        file_names=file_names,
        headers=[
            # Frames kept from an earlier run are read back; the others' headers came with them.
            written_headers.pop(job.index, None) or read_header_values(out_dir / job.file_name)
            for job in jobs
        ],
        results=results,
        l1=l1_coordinates,
        meta_inventory=meta_inventory,
    )
    asdf_path = out_dir / asdf_file_name(inversion_id)
    asdf_bytes = write_asdf(inversion, asdf_path)
    files = tuple(ProductFile(name, (out_dir / name).stat().st_size) for name in file_names)
    return GenerationResult(
        inversion_id=inversion_id,
        out_dir=out_dir,
        files=files,
        asdf_path=asdf_path,
        quicklooks=tuple(quicklooks),
        frame_count=len(jobs),
        frames_written=len(todo),
        spectral_lines=tuple(arm.line.key for arm in results.arms),
        canonical_dataset=canonical.dataset_id,
        dataset_ids=canonical.dataset_ids,
        bytes=sum(file.bytes for file in files) + asdf_bytes,
        duration_s=time.perf_counter() - started,
    )


def fit_results(
    results_dir: Path, l1_dir: Path, *, dataset_ids: list[str] | None = None
) -> tuple[Results, CanonicalDataset, fits.Header]:
    """The results, the canonical Level 1 dataset they pair with and its first frame's header,
    checked to fit each other: the raster steps (find_canonical) and the slit (check_slit).
    Generation starts with it, and "Report done" asks it before an OP becomes inverted.
    ProductInputError naming the file, key or counts."""
    results = read_results(Path(results_dir))
    canonical = find_canonical(
        Path(l1_dir), fiducial_arm=results.fiducial_arm, frames=results.frames, dataset_ids=dataset_ids
    )
    first_header = read_l1_header(canonical.frames[0].path)
    check_l1_axes(first_header)
    check_slit(
        first_header, slit_bins=results.slit_bins, binning=results.binning, dataset_id=canonical.dataset_id
    )
    return results, canonical, first_header


def _jobs(canonical: CanonicalDataset, inversion_id: str) -> list[FrameJob]:
    jobs = [
        FrameJob(index, frame.path, frame_file_name(inversion_id, frame.date_beg))
        for index, frame in enumerate(canonical.frames)
    ]
    if len({job.file_name for job in jobs}) != len(jobs):
        raise ProductInputError(
            f"Level 1 dataset {canonical.dataset_id} has Stokes I frames with equal DATE-BEG."
        )
    return jobs


def _remove_partial_files(out_dir: Path) -> None:
    """Left by an interrupted run (one generation per folder at a time)."""
    for path in out_dir.glob(f".*{TEMPORARY_SUFFIX}"):
        os.unlink(path)
