"""One item ahead: compute the next item in a thread while the caller works on this one.

The scan fetches and parses the next batch while it writes this one; the qualification runs
the rules of the next chunk while PostgreSQL stores this one's events. Whatever runs in the
thread must not touch the database (a thread has a connection of its own, outside the
caller's transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future


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
