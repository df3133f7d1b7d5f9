"""Moving files between collections: one interface, a Globus backend and a local one.

A transfer is asked for with a submission id that the backend gave (Globus hands them out;
the local backend makes its own) and that the caller stored *before* submitting: submitting
again with the same id never starts a second transfer (Globus answers "Duplicate" with the
first task; the local backend finds its own record), so a worker that dies between "submit"
and "record the task id" is harmless. Workers never wait for a transfer: a periodic task asks
each active one for its ``status``.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings

from inversions.transfers.base import (
    CollectionNotReadable,
    Collections,
    Fault,
    ListedFile,
    PathNotFound,
    PathOutsideCollection,
    SubmissionIdUnavailable,
    TaskNotFound,
    TaskStatus,
    TransferBackend,
    TransferError,
    TransferItem,
    TransferProgress,
    TransferRequest,
    describe_faults,
)
from inversions.transfers.globus import GlobusBackend
from inversions.transfers.local import LocalBackend

__all__ = [
    "CollectionNotReadable",
    "Collections",
    "Fault",
    "ListedFile",
    "PathNotFound",
    "PathOutsideCollection",
    "SubmissionIdUnavailable",
    "TaskNotFound",
    "TaskStatus",
    "TransferBackend",
    "TransferError",
    "TransferItem",
    "TransferProgress",
    "TransferRequest",
    "collections",
    "describe_faults",
    "get_backend",
]


def collections() -> Collections:
    return Collections(
        level1=settings.GLOBUS_L1_COLLECTION,
        scratch=settings.GLOBUS_SCRATCH_COLLECTION,
        publish=settings.GLOBUS_PUBLISH_COLLECTION,
    )


@cache
def _backend_for(uses_globus: bool, local_root: str) -> TransferBackend:
    if uses_globus:
        return GlobusBackend.from_settings()
    return LocalBackend(local_root)


def get_backend() -> TransferBackend:
    """Globus when the service's credentials are set, else the local backend."""
    uses_globus = bool(settings.GLOBUS_CLIENT_ID and settings.GLOBUS_CLIENT_SECRET)
    return _backend_for(uses_globus, settings.LEVEL2_LOCAL_TRANSFER_ROOT)
