"""The local transfer backend: collection ids are folders under one root, and files really move.

Without Globus credentials the whole flow runs on one machine: ``{root}/{collection}/{path}``.
Submission ids are made here (random UUIDs). A task is a JSON record under ``{root}/.tasks/``,
named by its submission id, so submitting again finds it instead of copying twice. A copy runs in
the process that submits it; one whose process died is resumed by the next ``status`` call (the
poller), skipping files already copied. A failed copy records what failed where (its faults).
Each file is copied under a temporary name and renamed, so a file under its final name is whole.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from inversions.paths import PathRefused, files_inside, inside
from inversions.transfers.base import (
    Fault,
    ListedFile,
    PathNotFound,
    PathOutsideCollection,
    TaskNotFound,
    TaskStatus,
    TransferError,
    TransferItem,
    TransferProgress,
    TransferRequest,
)

# Write the task record after this many files, so that the page can show progress.
PROGRESS_EVERY_FILES = 20


class LocalBackend:
    name = "local"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # --- paths ------------------------------------------------------------------------------

    def collection_root(self, collection: str) -> Path:
        if not collection or "/" in collection or collection.startswith(".") or "\x00" in collection:
            raise TransferError(f"{collection!r} is not a collection id.")
        return self.root / collection

    def path(self, collection: str, path: str) -> Path:
        """The local file or folder of ``path`` on ``collection``, resolved; PathOutsideCollection
        when it leaves the collection ('..', or a link to elsewhere)."""
        try:
            return inside(self.collection_root(collection), path or "/")
        except PathRefused as error:
            raise PathOutsideCollection(f"{error} (collection {collection})") from None

    def _task_file(self, task_id: str) -> Path:
        if not task_id or "/" in task_id or task_id.startswith("."):
            raise TransferError(f"{task_id!r} is not a task id.")
        return self.root / ".tasks" / f"{task_id}.json"

    # --- the interface ----------------------------------------------------------------------

    def new_submission_id(self) -> str:
        return str(uuid.uuid4())

    def submit(self, request: TransferRequest) -> str:
        task_id = request.submission_id
        record = self._read(task_id)
        if record is not None and (record["status"] != TaskStatus.ACTIVE or _alive(record["pid"])):
            return task_id  # the same submission: never a second copy
        self._write(
            task_id,
            {
                "status": TaskStatus.ACTIVE,
                "pid": os.getpid(),
                "label": request.label,
                "source_collection": request.source_collection,
                "destination_collection": request.destination_collection,
                "items": [asdict(item) for item in request.items],
                "files_done": 0,
                "files_total": None,
                "bytes_done": 0,
                "message": "",
                "faults": [],
            },
        )
        self._copy(task_id)
        return task_id

    def status(self, task_id: str) -> TransferProgress:
        record = self._read(task_id)
        if record is None:
            raise TaskNotFound(f"The local backend has no transfer {task_id}.")
        if record["status"] == TaskStatus.ACTIVE and not _alive(record["pid"]):
            # Its process died mid-copy: finish it here.
            record["pid"] = os.getpid()
            self._write(task_id, record)
            record = self._copy(task_id)
        return TransferProgress(
            status=TaskStatus(record["status"]),
            files_done=record["files_done"],
            files_total=record["files_total"],
            bytes_done=record["bytes_done"],
            message=record["message"],
            faults=tuple(Fault(**fault) for fault in record.get("faults", [])),
        )

    def list_files(self, collection: str, path: str) -> list[ListedFile]:
        folder = self.path(collection, path)
        if not (self.root / collection).is_dir():
            raise PathNotFound(f"There is no collection {collection} (local folders under {self.root}).")
        if not folder.is_dir():
            raise PathNotFound(f"{path} does not exist on collection {collection}.")
        return sorted(
            (
                ListedFile(entry.name, 0 if entry.is_dir() else entry.stat().st_size, entry.is_dir())
                for entry in folder.iterdir()
                if not entry.name.startswith(".")
            ),
            key=lambda listed: listed.name,
        )

    def task_url(self, task_id: str) -> str | None:
        return None

    def local_path(self, collection: str, path: str) -> Path:
        return self.path(collection, path)

    # --- the copy ---------------------------------------------------------------------------

    def _copy(self, task_id: str) -> dict[str, Any]:
        record = self._read(task_id)
        assert record is not None
        source_collection = record["source_collection"]
        destination_collection = record["destination_collection"]
        pairs = []
        for item in [TransferItem(**fields) for fields in record["items"]]:
            try:
                pairs += self._file_pairs(source_collection, destination_collection, item)
            except (TransferError, OSError) as error:
                reason = str(error) if isinstance(error, TransferError) else error.strerror or str(error)
                return self._failed(task_id, record, Fault(reason, item.source_path))
        record.update(files_total=len(pairs), files_done=0, bytes_done=0)
        for number, (source, destination) in enumerate(pairs, start=1):
            try:
                record["bytes_done"] += _copy_file(source, destination, task_id)
            except OSError as error:
                # Name the file as the collections know it, on the side that failed.
                written = str(error.filename or "").startswith(str(destination.parent))
                side, collection = (
                    (destination, destination_collection) if written else (source, source_collection)
                )
                path = "/" + side.relative_to(self.collection_root(collection).resolve()).as_posix()
                return self._failed(task_id, record, Fault(error.strerror or str(error), path))
            record["files_done"] = number
            if number % PROGRESS_EVERY_FILES == 0:
                self._write(task_id, record)
        record.update(status=TaskStatus.SUCCEEDED, message="", faults=[])
        self._write(task_id, record)
        return record

    def _failed(self, task_id: str, record: dict[str, Any], fault: Fault) -> dict[str, Any]:
        record.update(
            status=TaskStatus.FAILED, message=f"{fault.reason}: {fault.path}", faults=[asdict(fault)]
        )
        self._write(task_id, record)
        return record

    def _file_pairs(self, source_collection: str, destination_collection: str, item: TransferItem):
        """(source, destination) of each file; a file that links out of its collection, on either
        side, fails the whole transfer before anything is copied."""
        source = self.path(source_collection, item.source_path)
        destination = self.path(destination_collection, item.destination_path)
        if not source.exists():
            raise PathNotFound("file not found")
        if not item.recursive:
            return [(source, destination)]
        if not source.is_dir():
            raise TransferError("not a folder")
        try:
            files = files_inside(self.collection_root(source_collection), source)
        except PathRefused as error:
            raise PathOutsideCollection(str(error)) from None
        destination_path = item.destination_path.rstrip("/")
        return [
            (path, self.path(destination_collection, f"{destination_path}/{path.relative_to(source)}"))
            for path in files
        ]

    # --- task records -----------------------------------------------------------------------

    def _read(self, task_id: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._task_file(task_id).read_text())
        except FileNotFoundError:
            return None

    def _write(self, task_id: str, record: dict[str, Any]) -> None:
        path = self._task_file(task_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(json.dumps(record))
        partial.replace(path)


def _copy_file(source: Path, destination: Path, task_id: str) -> int:
    """Copy one file unless an identical one is there; returns its size."""
    size = source.stat().st_size
    if destination.is_file() and destination.stat().st_size == size:
        return size  # copied before this task was interrupted, or by an earlier one
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{task_id}.part")
    shutil.copyfile(source, partial)
    partial.replace(destination)
    return size


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
