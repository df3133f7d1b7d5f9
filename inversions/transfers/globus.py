"""The Globus transfer backend: the service's own confidential client moves the data.

The client's tokens come from the client-credentials grant and live in memory only:
globus-sdk renews one shortly before it expires, and once more when Globus answers 401
(a token revoked early); a second 401 means the credentials themselves no longer work.
Network errors and 5xx answers are retried with backoff by globus-sdk's retry config.
Every Globus error leaves this module as a TransferError whose message a user can act on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import globus_sdk
from django.conf import settings
from globus_sdk.config import get_webapp_url
from globus_sdk.scopes import GCSCollectionScopes, Scope, TransferScopes
from globus_sdk.transport import RetryConfig

from inversions.transfers.base import (
    CollectionNotReadable,
    Fault,
    ListedFile,
    PathNotFound,
    SubmissionIdUnavailable,
    TaskNotFound,
    TaskStatus,
    TransferError,
    TransferProgress,
    TransferRequest,
    describe_faults,
)

log = logging.getLogger(__name__)

# A retried transfer copies only the files missing at the destination or different there.
SYNC_LEVEL = "checksum"
# Globus's nice_status values of a task that is not struggling.
UNTROUBLED = {None, "OK", "Queued"}
# The newest events of a failed task that are read for the paths that failed (one page).
EVENTS_READ = 100
# The faults kept of a failed task: its error events repeat one fault many times over.
FAULTS_KEPT = 10
# Globus's error details are GridFTP's account, one "Name: value" line each: the path is on the
# "File:" (or "Path:") line, else it ends the "Command:" line (RETR /p, MLSD /p/, CKSM MD5 0 -1 /p).
PATH_LINE = re.compile(r"^\s*(?:File|Path):\s*(?P<path>[/~].*?)\s*$", re.MULTILINE)
COMMAND_LINE = re.compile(r"^\s*Command:\s*\S+(?:\s+[^\s/~]\S*)*\s+(?P<path>[/~].*?)\s*$", re.MULTILINE)
LONGEST_PATH = 512
LONGEST_REASON = 200
LONGEST_DETAILS = 4000


def service_scope(*, data_access_collections: Sequence[str]) -> Scope:
    """Transfer, with a data_access consent for each GCS mapped collection that needs one
    (a confidential client's consents are granted by asking for them)."""
    return TransferScopes.all.with_dependencies(
        GCSCollectionScopes(collection).data_access.with_optional(True)
        for collection in data_access_collections
    )


class GlobusBackend:
    name = "globus"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        data_access_collections: Sequence[str] = (),
        max_retry_sleep_s: float = 10,
    ) -> None:
        self.client_id = client_id
        self._max_retry_sleep_s = max_retry_sleep_s
        self._scope = service_scope(data_access_collections=data_access_collections)
        self._auth = globus_sdk.ConfidentialAppAuthClient(
            client_id=client_id,
            client_secret=client_secret,
            retry_config=RetryConfig(max_sleep=max_retry_sleep_s),
        )
        self._transfer: globus_sdk.TransferClient | None = None

    @classmethod
    def from_settings(cls) -> GlobusBackend:
        return cls(
            client_id=settings.GLOBUS_CLIENT_ID,
            client_secret=settings.GLOBUS_CLIENT_SECRET,
            data_access_collections=getattr(settings, "GLOBUS_DATA_ACCESS_COLLECTIONS", []),
        )

    @property
    def identity(self) -> str:
        """The Globus identity of the service's client: the one collections grant access to."""
        return f"{self.client_id}@clients.auth.globus.org"

    # --- the interface ----------------------------------------------------------------------

    def new_submission_id(self) -> str:
        """Globus's own submission id (``GET /submission_id``), as the Transfer API asks."""
        try:
            value = self._client().get_submission_id()["value"]
        except globus_sdk.GlobusError as error:
            fault = self._fault(
                error,
                denied=f"the service's client {self.identity} may not submit transfers",
                not_found="no submission ids to be had",
            )
            raise SubmissionIdUnavailable(f"No submission id: {fault}") from error
        except (KeyError, TypeError) as error:
            raise SubmissionIdUnavailable("Globus answered without a submission id.") from error
        try:
            return str(uuid.UUID(str(value)))
        except ValueError as error:
            raise SubmissionIdUnavailable(
                f"Globus gave a submission id that is not a UUID: {str(value)[:64]!r}"
            ) from error

    def submit(self, request: TransferRequest) -> str:
        data = globus_sdk.TransferData(
            request.source_collection,
            request.destination_collection,
            label=request.label,
            submission_id=request.submission_id,
            sync_level=SYNC_LEVEL,
            verify_checksum=True,
            preserve_timestamp=True,
        )
        for item in request.items:
            data.add_item(item.source_path, item.destination_path, recursive=item.recursive)
        try:
            response = self._client().submit_transfer(data)
        except globus_sdk.GlobusError as error:
            raise self._fault(
                error,
                denied=(
                    f"grant {self.identity} read access on collection {request.source_collection} "
                    f"and write access on collection {request.destination_collection}"
                ),
                not_found=(
                    f"collection {request.source_collection} or {request.destination_collection} "
                    "does not exist"
                ),
            ) from error
        if response.get("code") == "Duplicate":
            log.info("Globus had submission %s already: task %s", request.submission_id, response["task_id"])
        return response["task_id"]

    def status(self, task_id: str) -> TransferProgress:
        try:
            task = self._client().get_task(task_id).data
        except globus_sdk.GlobusAPIError as error:
            if error.http_status == 404:
                log.warning("Globus does not know task %s: %s %s", task_id, error.code, error.message)
                raise TaskNotFound("Globus does not know the task any more") from error
            raise self._status_fault(error, task_id) from error
        except globus_sdk.GlobusError as error:
            raise self._status_fault(error, task_id) from error
        progress = _progress(task)
        if progress.status == TaskStatus.FAILED:
            # fatal_error holds a code and a description only: the paths are in the events.
            fatal = task.get("fatal_error") or {}
            faults = _faults(self._error_events(task_id), fatal_code=fatal.get("code"))
            if faults:
                progress = replace(progress, faults=faults)
        return progress

    def list_files(self, collection: str, path: str) -> list[ListedFile]:
        try:
            listing = self._client().operation_ls(collection, path=path, show_hidden=False)
        except globus_sdk.GlobusError as error:
            raise self._fault(
                error,
                denied=f"grant {self.identity} read access on collection {collection}",
                not_found=f"{path} does not exist on collection {collection}",
                consent_for=collection,
            ) from error
        return sorted(
            (
                ListedFile(entry["name"], entry.get("size") or 0, entry.get("type") == "dir")
                for entry in listing
            ),
            key=lambda listed: listed.name,
        )

    def task_url(self, task_id: str) -> str | None:
        return f"{get_webapp_url(self._auth.environment).rstrip('/')}/activity/{quote(task_id)}"

    def local_path(self, collection: str, path: str) -> None:
        return None  # the collections are elsewhere: files are read once copied to scratch

    # --- Globus -----------------------------------------------------------------------------

    def _client(self) -> globus_sdk.TransferClient:
        # Made on first use: the authorizer asks Globus Auth for a token as it is made.
        if self._transfer is None:
            self._transfer = globus_sdk.TransferClient(
                authorizer=globus_sdk.ClientCredentialsAuthorizer(self._auth, self._scope),
                app_name="Level 2",
                retry_config=RetryConfig(max_sleep=self._max_retry_sleep_s),
            )
        return self._transfer

    def _status_fault(self, error: globus_sdk.GlobusError, task_id: str) -> TransferError:
        return self._fault(
            error,
            denied=f"the service's client {self.identity} may not see task {task_id}",
            not_found=f"there is no task {task_id}",
        )

    def _error_events(self, task_id: str) -> list[dict[str, Any]]:
        """The newest error events of a task, newest first; none when Globus cannot say now
        (the failure is then reported with what the task itself says)."""
        try:
            events = list(self._client().task_event_list(task_id, limit=EVENTS_READ))
        except globus_sdk.GlobusError as error:
            log.warning("the events of failed task %s could not be read: %s", task_id, error)
            return []
        return [event for event in events if isinstance(event, dict) and event.get("is_error")]

    def _fault(
        self,
        error: globus_sdk.GlobusError,
        *,
        denied: str,
        not_found: str,
        consent_for: str = "",
    ) -> TransferError:
        """The TransferError that says what went wrong and what to do about it."""
        if isinstance(error, globus_sdk.NetworkError):
            log.warning("Globus could not be reached: %s", error)
            return TransferError(f"Globus could not be reached ({error}); retrying did not help.")
        if not isinstance(error, globus_sdk.GlobusAPIError):
            log.error("globus-sdk refused a request: %s", error)
            return TransferError(f"The request to Globus was not valid: {error}")
        log.warning(
            "Globus answered HTTP %s %s (request %s): %s",
            error.http_status,
            error.code,
            error.request_id,
            error.message,
        )
        said = error.message or error.code or f"HTTP {error.http_status}"
        if error.http_status == 401:
            # On a transfer call this is the second 401: globus-sdk renewed the token after the first.
            return TransferError(
                "Globus rejected the service's credentials (GLOBUS_CLIENT_ID / GLOBUS_CLIENT_SECRET): "
                f"check that the client still exists and that its secret is current. Globus said: {said}"
            )
        if isinstance(error, globus_sdk.AuthAPIError):
            return TransferError(f"Globus Auth gave the service no token (HTTP {error.http_status}): {said}")
        if error.info.consent_required:
            scopes = " ".join(error.info.consent_required.required_scopes)
            where = f"collection {consent_for}" if consent_for else "a collection of this transfer"
            return CollectionNotReadable(
                f"Globus needs a data_access consent for {where}: add the collection's id to "
                f"GLOBUS_DATA_ACCESS_COLLECTIONS so that the service asks for it ({scopes})."
            )
        if error.http_status == 403 or "PermissionDenied" in (error.code or ""):
            return CollectionNotReadable(f"Globus refused access ({said}): {denied}.")
        if error.http_status == 404 or "NotFound" in (error.code or ""):
            return PathNotFound(f"Globus: {not_found} ({said}).")
        return TransferError(f"Globus refused the request (HTTP {error.http_status}, {error.code}): {said}")


def _progress(task: dict[str, Any]) -> TransferProgress:
    done = {
        "files_done": (task.get("files_transferred") or 0) + (task.get("files_skipped") or 0),
        "bytes_done": task.get("bytes_transferred") or 0,
    }
    trouble = _text(task.get("nice_status_short_description") or task.get("nice_status"), LONGEST_REASON)
    if task["status"] == "SUCCEEDED":
        return TransferProgress(status=TaskStatus.SUCCEEDED, files_total=task.get("files"), **done)
    if task["status"] == "FAILED":
        fatal = _text((task.get("fatal_error") or {}).get("description"), LONGEST_REASON) or trouble
        return TransferProgress(
            status=TaskStatus.FAILED,
            files_total=task.get("files"),
            message=fatal,
            faults=(Fault(fatal),) if fatal else (),
            **done,
        )
    troubled = task["status"] == "INACTIVE" or task.get("nice_status") not in UNTROUBLED
    details = _text(task.get("nice_status_details"), LONGEST_DETAILS, lines=True) if troubled else ""
    faults = (Fault(trouble, _path_in(task.get("nice_status_details"))),) if trouble and troubled else ()
    message = describe_faults(faults)
    if task["status"] == "INACTIVE":
        message = f"paused by Globus: {message}" if message else "paused by Globus"
    # While Globus still lists the folders, its count of files is not the total yet.
    return TransferProgress(
        status=TaskStatus.ACTIVE,
        files_total=task.get("files") or None,
        message=message,
        faults=faults,
        details=details,
        **done,
    )


def _faults(events: Iterable[dict[str, Any]], *, fatal_code: str | None) -> tuple[Fault, ...]:
    """The distinct (reason, path) of error events, newest first; those of the fatal error's
    code when there are any (a failed task's earlier, retried faults may be of other kinds)."""
    events = list(events)
    fatal_events = [event for event in events if fatal_code and event.get("code") == fatal_code]
    faults: list[Fault] = []
    for event in fatal_events or events:
        reason = _text(event.get("description") or event.get("code"), LONGEST_REASON)
        fault = Fault(reason or "error", _path_in(event.get("details")))
        if fault not in faults:
            faults.append(fault)
        if len(faults) == FAULTS_KEPT:
            break
    return tuple(faults)


def _path_in(details: Any, depth: int = 0) -> str:
    """The path an error's details name, or "". Some collections give their details as a JSON
    document; the path is then under a "path" key, at most a few levels down."""
    if isinstance(details, str) and details.lstrip().startswith("{"):
        with contextlib.suppress(ValueError, RecursionError):  # not JSON after all: read as text
            details = json.loads(details)
    if isinstance(details, dict):
        if isinstance(details.get("path"), str):
            return _text(details["path"], LONGEST_PATH)
        if depth == 3:
            return ""
        nested = (_path_in(value, depth + 1) for value in details.values())
        return next((path for path in nested if path), "")
    if not isinstance(details, str):
        return ""
    match = PATH_LINE.search(details) or COMMAND_LINE.search(details)
    return _text(match["path"], LONGEST_PATH) if match else ""


def _text(value: Any, longest: int, *, lines: bool = False) -> str:
    """Text from Globus, printable (with its line breaks if ``lines``), of at most ``longest``
    characters."""
    if not isinstance(value, str):
        return ""
    kept = "".join(char if char.isprintable() or (lines and char == "\n") else " " for char in value)
    kept = kept.strip()
    return kept if len(kept) <= longest else kept[: longest - 1] + "…"
