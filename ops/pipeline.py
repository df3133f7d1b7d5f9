"""Bulk work's plumbing: one item ahead, and the interpreter set for it meanwhile.

``one_ahead``: compute the next item in a thread while the caller works on this one. The scan
fetches and parses the next batch while it writes this one; the qualification runs the rules
of the next chunk while PostgreSQL stores this one's events. Whatever runs in the thread must
not touch the database (a thread has a connection of its own, outside the caller's
transaction).

``bulk_work``: fewer garbage collections, and prompter switches between the threads. The scan
and the qualification make millions of short-lived objects, which reference counting frees.
With Python's default thresholds the cycle collector still walked every live object, Django's
and the modules' 100,000 among them, about 25 times in a 100,000-dataset scan: 4 s of its 18 s
of CPU, all of it holding the GIL that the other thread of the pipeline waits for. And the
writing thread waits for PostgreSQL hundreds of times per batch (each statement, each chunk
of a COPY); each time PostgreSQL answers, it waits for the GIL too, up to Python's switch
interval (5 ms) when the read-ahead thread is running Python, while PostgreSQL idles.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager

# New objects between two collections of the youngest generation during bulk work (Python's
# default: 700). A collection of 20,000 young objects takes milliseconds; older generations
# are collected ten and a hundred times less often, as by default.
BULK_GC_THRESHOLD = 20_000
# The GIL's switch interval during bulk work (Python's default: 5 ms): how long a thread that
# PostgreSQL has answered may wait for the GIL before the running thread must hand it over.
# A switch costs microseconds.
BULK_SWITCH_INTERVAL_S = 0.0005


def one_ahead[Item, Result](
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


_bulk_depth = 0
_bulk_lock = threading.Lock()
_thresholds_before: tuple[int, int, int] = gc.get_threshold()
_switch_interval_before = sys.getswitchinterval()
_froze = False


@contextmanager
def bulk_work() -> Iterator[None]:
    """Collect cyclic garbage less often, and switch threads sooner, for the duration (see
    the module's docstring).

    The objects alive at the start are frozen (no collection walks them) unless the process
    froze objects itself (a pre-forking server may): unfreezing at the end would undo that.
    Garbage cycles are still collected, later. Nested or concurrent uses (threads) share the
    outermost one's settings, which the last to leave restores.
    """
    global _bulk_depth, _thresholds_before, _switch_interval_before, _froze
    with _bulk_lock:
        if _bulk_depth == 0:
            _thresholds_before = gc.get_threshold()
            _switch_interval_before = sys.getswitchinterval()
            _froze = gc.get_freeze_count() == 0
            if _froze:
                gc.freeze()
            gc.set_threshold(BULK_GC_THRESHOLD, *_thresholds_before[1:])
            sys.setswitchinterval(BULK_SWITCH_INTERVAL_S)
        _bulk_depth += 1
    try:
        yield
    finally:
        with _bulk_lock:
            _bulk_depth -= 1
            if _bulk_depth == 0:
                gc.set_threshold(*_thresholds_before)
                sys.setswitchinterval(_switch_interval_before)
                if _froze:
                    gc.unfreeze()
