"""Frames written by worker processes, also when the caller is a daemonic process (a Celery
prefork worker), which multiprocessing would refuse to give children."""

import multiprocessing

import numpy as np
from astropy.io import fits

from inversions.products import generate

from .conftest import FRAMES, INVERSION_ID


def generate_in_two_processes(inputs, out) -> None:
    progress = []
    result = generate(
        inputs.results, inputs.l1, out, inversion_id=INVERSION_ID, processes=2,
        on_progress=lambda done, total: progress.append(done),
    )  # fmt: skip
    assert result.frames_written == FRAMES and progress == list(range(FRAMES + 1))


def test_parallel_generation_from_a_daemonic_process(inputs, generated, tmp_path):
    out = tmp_path / "out"
    child = multiprocessing.get_context("spawn").Process(
        target=generate_in_two_processes, args=(inputs, out), daemon=True
    )
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0
    for file in generated.files:
        with fits.open(out / file.name) as ours, fits.open(generated.out_dir / file.name) as reference:
            assert len(ours) == len(reference)
            for mine, theirs in zip(ours[1:], reference[1:], strict=True):
                np.testing.assert_array_equal(mine.data, theirs.data)
