"""The transfer interface that both backends implement and the rest of Level 2 uses (the
package ``inversions.transfers`` re-exports it, with the choice of backend)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol


class TransferError(Exception):
    """A transfer could not be submitted or a collection could not be read; the message says
    why in words a user understands."""


class PathNotFound(TransferError):
    """The path does not exist on the collection."""


class PathOutsideCollection(TransferError):
    """The path leaves its collection ('..', a link to elsewhere)."""


class CollectionNotReadable(TransferError):
    """The service may not read (or write) the collection: its access must be granted."""


class TaskNotFound(TransferError):
    """The backend does not know the task (any more): it will never report on it."""


class SubmissionIdUnavailable(TransferError):
    """No submission id could be had just now: the same request later may succeed."""


class TaskStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class TransferItem:
    """One folder (recursive) or file to copy, by paths on the two collections."""

    source_path: str
    destination_path: str
    recursive: bool = True


@dataclass(frozen=True)
class TransferRequest:
    submission_id: str
    label: str
    source_collection: str
    destination_collection: str
    items: Sequence[TransferItem]


@dataclass(frozen=True)
class Fault:
    """What went wrong with which path of a transfer ("Permission denied", "/data/pid_1_10/AQDCK/").
    The path is on the collection it names; empty when the backend did not say."""

    reason: str
    path: str = ""


@dataclass(frozen=True)
class TransferProgress:
    """What a backend knows of one task now."""

    status: TaskStatus
    files_done: int = 0
    files_total: int | None = None
    bytes_done: int = 0
    # While ACTIVE: the problem the transfer is struggling with ("permission denied"), if any.
    # When FAILED: why it failed for good.
    message: str = ""
    # When FAILED, and while ACTIVE with trouble: what failed where, newest first.
    faults: tuple[Fault, ...] = ()
    # While ACTIVE with trouble: the backend's own long account of it (Globus's nice_status_details).
    details: str = ""


def describe_faults(faults: Sequence[Fault], *, paths_shown: int = 3) -> str:
    """What failed where, in one line: "permission denied on /a/ and /b/; file not found on /c/"."""
    paths_of: dict[str, list[str]] = {}
    for fault in faults:
        paths = paths_of.setdefault(fault.reason, [])
        if fault.path and fault.path not in paths:
            paths.append(fault.path)
    parts = []
    for reason, paths in paths_of.items():
        shown = (
            " and ".join(paths)
            if len(paths) <= paths_shown
            else (f"{', '.join(paths[:paths_shown])} and {len(paths) - paths_shown} more")
        )
        parts.append(f"{reason} on {shown}" if paths else reason)
    return "; ".join(parts)


@dataclass(frozen=True)
class ListedFile:
    name: str
    size: int
    is_dir: bool = False


@dataclass(frozen=True)
class Collections:
    """The collection ids of the service's transfers (DESIGN.md, Globus)."""

    level1: str
    scratch: str
    publish: str
    extra: dict[str, str] = field(default_factory=dict)


class TransferBackend(Protocol):
    name: str

    def new_submission_id(self) -> str:
        """A submission id (a UUID) for one new transfer, to be stored before it is submitted.
        SubmissionIdUnavailable when none can be had now."""

    def submit(self, request: TransferRequest) -> str:
        """Start the transfer (or find the one already started with this submission id) and
        return its task id. Raises TransferError when it cannot be started."""

    def status(self, task_id: str) -> TransferProgress:
        """The task's state and progress now. TaskNotFound when the backend does not know
        the task; TransferError when its state cannot be learned now."""

    def list_files(self, collection: str, path: str) -> list[ListedFile]:
        """The entries of a folder. PathNotFound, CollectionNotReadable or TransferError."""

    def task_url(self, task_id: str) -> str | None:
        """Where a person can look at the task (the Globus web app), if anywhere."""

    def local_path(self, collection: str, path: str) -> Path | None:
        """Where this process can read ``path`` on ``collection`` directly, if it can (the local
        backend); PathOutsideCollection when it leaves the collection."""
