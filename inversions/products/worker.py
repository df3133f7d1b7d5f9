"""A frame-writing process: ``python -m inversions.products.worker``.

Reads a pickled ``(FramePlan, [FrameJob, …])`` from stdin, writes those frames, and reports each
on stdout as ``done <its WrittenFrame, pickled, in base64>`` (or ``error <json message>`` for a bad
input, then exits 1). Started with subprocess rather than multiprocessing, so that a daemonic caller
(a Celery prefork worker) may start it too.
"""

from __future__ import annotations

import base64
import json
import pickle
import sys

from inversions.products.errors import ProductInputError
from inversions.products.frames import write_frame


def main() -> int:
    plan, jobs = pickle.load(sys.stdin.buffer)
    for job in jobs:
        try:
            frame = write_frame(plan, job)
        except ProductInputError as error:
            print("error " + json.dumps(str(error)), flush=True)
            return 1
        print(f"done {base64.b64encode(pickle.dumps(frame)).decode()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
