"""Frames written in parallel by worker processes (see worker.py), or in this process."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from inversions.products.errors import ProductInputError
from inversions.products.frames import FrameJob, FramePlan, WrittenFrame, write_frame

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STDERR_TAIL_CHARS = 2000


def write_frames(
    plan: FramePlan, jobs: list[FrameJob], *, processes: int, on_frame_done: Callable[[WrittenFrame], None]
) -> None:
    """Write every job's frame; `on_frame_done(frame)` in this thread as each completes."""
    if processes <= 1 or len(jobs) <= 1:
        for job in jobs:
            on_frame_done(write_frame(plan, job))
        return
    batches = [jobs[start::processes] for start in range(min(processes, len(jobs)))]
    _run_workers(plan, batches, on_frame_done)


def _run_workers(
    plan: FramePlan, batches: list[list[FrameJob]], on_frame_done: Callable[[WrittenFrame], None]
) -> None:
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    workers: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
    try:
        for batch in batches:
            stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
            process = subprocess.Popen(
                [sys.executable, "-m", "inversions.products.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=_worker_environment(),
            )
            workers.append((process, stderr))
            assert process.stdin and process.stdout
            process.stdin.write(pickle.dumps((plan, batch)))
            process.stdin.close()
            threading.Thread(target=_relay, args=(process.stdout, events), daemon=True).start()
        running = len(workers)
        while running:
            kind, payload = events.get()
            if kind == "done":
                on_frame_done(_received_frame(payload))
            elif kind == "error":
                raise ProductInputError(json.loads(payload))
            else:
                running -= 1
        for process, stderr in workers:
            if process.wait() != 0:
                stderr.seek(0)
                tail = stderr.read().decode(errors="replace")[-STDERR_TAIL_CHARS:]
                raise RuntimeError(f"A frame worker exited with status {process.returncode}:\n{tail}")
    finally:
        for process, stderr in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
            stderr.close()


def _received_frame(payload: str) -> WrittenFrame:
    frame: WrittenFrame = pickle.loads(base64.b64decode(payload))
    # Unpickled, each frame's keywords are strings of their own; shared, they cost nothing per
    # frame (18 headers of ~70 keywords, held until the ASDF is written).
    headers = [{sys.intern(key): value for key, value in header.items()} for header in frame.headers]
    return dataclasses.replace(frame, headers=headers)


def _relay(stdout: Iterable[bytes], events: queue.Queue[tuple[str, str]]) -> None:
    for line in stdout:
        kind, _, payload = line.decode().strip().partition(" ")
        events.put((kind, payload))
    events.put(("exit", ""))


def _worker_environment() -> dict[str, str]:
    # The worker imports this package however the caller found it.
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}
