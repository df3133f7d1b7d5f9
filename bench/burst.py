"""50 API calls at once against a running server: ``python -m bench.burst`` (``make bench-burst``).

Start the service first (``make run``), make a token (``manage.py create_api_token USERNAME``)
and pass it as ``LEVEL2_TOKEN``. ``BURST_URL`` (default ``http://127.0.0.1:$LEVEL2_WEB_PORT/api/programs``)
and ``BURST_CALLS`` (default 50) choose the target and the burst. All calls start together
(a barrier); it prints how many were answered (and with which status), how many got no answer,
and the slowest answer. The last line is one JSON object for tracking.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests


def _call(url: str, headers: dict[str, str], barrier: threading.Barrier) -> tuple[str, float]:
    barrier.wait()
    start = time.perf_counter()
    try:
        status = str(requests.get(url, headers=headers, timeout=60).status_code)
    except requests.RequestException as error:
        status = f"no answer ({type(error).__name__})"
    return status, time.perf_counter() - start


def main() -> None:
    port = os.environ.get("LEVEL2_WEB_PORT", "8000")
    url = os.environ.get("BURST_URL", f"http://127.0.0.1:{port}/api/programs")
    calls = int(os.environ.get("BURST_CALLS", "50"))
    token = os.environ.get("LEVEL2_TOKEN", "")
    headers = {"Authorization": f"Token {token}"} if token else {}
    barrier = threading.Barrier(calls)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=calls) as pool:
        results = list(pool.map(lambda _: _call(url, headers, barrier), range(calls)))
    wall = time.perf_counter() - started
    statuses = Counter(status for status, _ in results)
    answered = sum(count for status, count in statuses.items() if status.isdigit())
    slowest = max(seconds for _, seconds in results)
    print(f"{calls} calls to {url}: {answered} answered, {calls - answered} without an answer")
    for status, count in sorted(statuses.items()):
        print(f"  {status}: {count}")
    print(f"slowest answer {slowest:.2f} s, whole burst {wall:.2f} s")
    print(
        json.dumps(
            {"calls": calls, "answered": answered, "statuses": dict(statuses), "slowest_s": round(slowest, 3)}
        )
    )


if __name__ == "__main__":
    main()
