"""One scan at a time: a PostgreSQL advisory lock held by a session of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from ops import selectors


class ScanAlreadyRunning(Exception):
    """Another scan holds the scan lock; this one did not start."""


@contextmanager
def scan_lock() -> Iterator[None]:
    """Hold the scan lock on a connection of its own for the length of the block.

    The lock belongs to that session, not to a transaction, so the per-batch commits of the
    scan do not release it; if the process dies, PostgreSQL ends the session and the lock.
    """
    lock_connection = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with lock_connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [selectors.SCAN_LOCK_KEY])
            (acquired,) = cursor.fetchone()
        if not acquired:
            raise ScanAlreadyRunning("Another scan is running; this one did not start.")
        try:
            yield
        finally:
            # Unlock before closing: the server ends a closed session a moment later, and
            # a scan started right after this one must not find the lock still held. (A lost
            # session has released it already.)
            with suppress(DatabaseError), lock_connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [selectors.SCAN_LOCK_KEY])
    finally:
        lock_connection.close()
