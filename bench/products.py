"""The Level 2 products benchmark: ``python -m bench.products`` (``make bench-products``).

Writes, in a temporary folder, inputs of the real frame size (508 slit bins, 81 depths, arms of
767 + 192 + 851 wavelengths: ~31 MB per output file) for ``BENCH_FRAMES`` raster steps (default
40), then measures in one run:

- a warm-up: one generation of two raster steps, so that what a process does once in its life
  (loading asdf's extensions, matplotlib's fonts) is not counted below; its time is reported;
- the floor: read each step's sections of the three inputs and write as many bytes as its
  product file, with plain numpy, in one process;
- generation (``inversions.products.generate``) in one process, and its ratio to the floor;
- generation in ``BENCH_PROCESSES`` worker processes (default: the CPU count), into a fresh
  folder, and its ratio to the floor. This is the figure that counts against the target (at most
  2 x the floor): the service writes frames in worker processes, as here;
- the peak resident memory of each generation, this process and its children together (sampled).

The last line is one JSON object for tracking. Nothing here needs Django or a database.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from astropy.io import fits

from inversions.products import generate
from inversions.products.results import (
    BINNING_KEY,
    FIDUCIAL_ARM_KEY,
    FIT_FILE,
    ORIGINAL_FILE,
    QUANTITIES_FILE,
    read_results,
)
from inversions.products.synthetic import write_l1_dataset

DEFAULT_FRAMES = 40
WARM_UP_FRAMES = 2
SLIT_BINS = 508
DEPTHS = 81
ARMS = ((9, 767), (23, 192), (4, 851))
BINNING = 5
SAMPLE_INTERVAL_S = 0.02


def log(message: str) -> None:
    print(message, flush=True)


def write_inputs(root: Path, frames: int) -> tuple[Path, Path]:
    """Results of the real size, streamed plane by plane (never a whole file in memory), and the L1."""
    results = root / "results"
    results.mkdir()
    y, x = np.meshgrid(np.linspace(-1, 1, frames), np.linspace(-1, 1, SLIT_BINS), indexing="ij")
    base = (1 + 0.3 * np.exp(-(x**2 + y**2) / 0.2)).astype(np.float32)  # a spot, on the [frame, slit] plane
    _stream(results / QUANTITIES_FILE, (11, DEPTHS), lambda q, d: base * (1000 * (q + 1)) + d, {})
    line_ids = np.concatenate([np.full(count, line_id) for line_id, count in ARMS]).astype(np.float32)
    offsets = np.concatenate([(np.arange(count) - 0.45 * count) * 12.8 for _, count in ARMS]).astype(
        np.float32
    )
    wavelengths = line_ids.size
    header = {BINNING_KEY: BINNING, FIDUCIAL_ARM_KEY: 2}
    for name, noise in ((FIT_FILE, 0.0), (ORIGINAL_FILE, 0.01)):
        path = results / name
        _stream(
            path,
            (4, wavelengths),
            lambda s, w, noise=noise: base * (1 - 0.5 * np.cos(w / 30) ** 2) / (s + 1) + noise,
            header,
        )
        fits.append(path, offsets)
        fits.append(path, line_ids)
    l1 = root / "l1"
    write_l1_dataset(l1 / "BENCH", "BENCH", frames=frames, arm_id=2, slit_pixels=SLIT_BINS * BINNING)
    return results, l1


def _stream(
    path: Path, leading: tuple[int, int], plane: Callable[[int, int], np.ndarray], keys: dict
) -> None:
    frames = None
    for first in range(leading[0]):
        for second in range(leading[1]):
            values = plane(first, second).astype(">f4")
            if frames is None:
                header = fits.Header()
                header["SIMPLE"] = True
                header["BITPIX"] = -32
                header["NAXIS"] = 4
                for axis, size in enumerate(
                    (values.shape[1], values.shape[0], leading[1], leading[0]), start=1
                ):
                    header[f"NAXIS{axis}"] = size
                header["EXTEND"] = True
                header.update(keys)
                frames = fits.StreamingHDU(path, header)
            frames.write(values)
    assert frames is not None
    frames.close()


def measure_floor(results_dir: Path, out_dir: Path, sizes: list[int]) -> float:
    """Read each step's sections with numpy memory maps, write as many bytes as its product."""
    results = read_results(results_dir)
    out_dir.mkdir()
    started = time.perf_counter()
    layouts = (results.quantities, results.fit, results.original)
    for frame, size in enumerate(sizes):
        sections = []
        for layout in layouts:
            array = np.memmap(
                layout.path, dtype=layout.dtype, mode="r", offset=layout.data_offset, shape=layout.shape
            )
            sections.append(np.ascontiguousarray(array[:, :, frame, :]))
            del array
        payload = np.concatenate([section.ravel() for section in sections]).view(np.uint8)
        with open(out_dir / f"{frame}.bin", "wb") as file:
            payload.tofile(file)
            file.write(b"\0" * (size - payload.size))
    return time.perf_counter() - started


@contextmanager
def peak_memory() -> Iterator[dict[str, float]]:
    """The peak of this process's and its children's summed RSS while the block runs, in MB."""
    peak = {"mb": 0.0}
    stop = threading.Event()
    process = psutil.Process()

    def sample() -> None:
        while not stop.is_set():
            total = 0
            for member in [process, *process.children(recursive=True)]:
                with suppress(psutil.Error):
                    total += member.memory_info().rss
            peak["mb"] = max(peak["mb"], total / 1e6)
            stop.wait(SAMPLE_INTERVAL_S)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def timed_generation(results: Path, l1: Path, out: Path, processes: int) -> tuple[float, Any, float]:
    with peak_memory() as peak:
        started = time.perf_counter()
        result = generate(results, l1, out, inversion_id="inv.BENCH1", processes=processes)
        seconds = time.perf_counter() - started
    return seconds, result, peak["mb"]


def main() -> None:
    frames = int(os.environ.get("BENCH_FRAMES") or DEFAULT_FRAMES)
    processes = int(os.environ.get("BENCH_PROCESSES") or os.cpu_count() or 1)
    log(
        f"bench.products: {frames} frames of {SLIT_BINS} slit bins x {DEPTHS} depths, arms "
        f"{'+'.join(str(count) for _, count in ARMS)}; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench_products_") as temporary:
        root = Path(temporary)
        warm_up = root / "warm-up"
        warm_up.mkdir()
        warm_up_s, _, _ = timed_generation(
            *write_inputs(warm_up, WARM_UP_FRAMES), warm_up / "out", processes=1
        )
        log(f"warm-up generation ({WARM_UP_FRAMES} frames): {warm_up_s:.2f} s")
        started = time.perf_counter()
        results, l1 = write_inputs(root, frames)
        log(f"inputs written in {time.perf_counter() - started:.1f} s")
        serial_s, result, serial_peak = timed_generation(results, l1, root / "serial", processes=1)
        fits_bytes = sum(file.bytes for file in result.files)
        log(
            f"generation, 1 process: {serial_s:.2f} s, {fits_bytes / 1e6 / serial_s:.0f} MB/s, "
            f"peak {serial_peak:.0f} MB"
        )
        floor_s = measure_floor(results, root / "floor", [file.bytes for file in result.files])
        log(f"floor: {floor_s:.2f} s; generation is {serial_s / floor_s:.2f} x the floor")
        parallel_s, _, parallel_peak = timed_generation(results, l1, root / "parallel", processes=processes)
        log(
            f"generation, {processes} processes: {parallel_s:.2f} s, "
            f"{fits_bytes / 1e6 / parallel_s:.0f} MB/s, peak {parallel_peak:.0f} MB; "
            f"{parallel_s / floor_s:.2f} x the floor"
        )
    figures = {
        "frames": frames,
        "processes": processes,
        "mb_per_file": round(fits_bytes / frames / 1e6, 2),
        "warm_up_s": round(warm_up_s, 3),
        "floor_s": round(floor_s, 3),
        "serial_s": round(serial_s, 3),
        "serial_ratio": round(serial_s / floor_s, 3),
        "serial_frames_per_s": round(frames / serial_s, 2),
        "serial_mb_per_s": round(fits_bytes / 1e6 / serial_s, 1),
        "serial_peak_mb": round(serial_peak, 1),
        "parallel_s": round(parallel_s, 3),
        "parallel_ratio": round(parallel_s / floor_s, 3),
        "parallel_frames_per_s": round(frames / parallel_s, 2),
        "parallel_mb_per_s": round(fits_bytes / 1e6 / parallel_s, 1),
        "parallel_peak_mb": round(parallel_peak, 1),
    }
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
