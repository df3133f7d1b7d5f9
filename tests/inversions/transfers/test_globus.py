"""The Globus backend through globus-sdk, against a local HTTP server standing in for Globus
Auth and Transfer (the SDK's GLOBUS_SDK_SERVICE_URL_* variables point at it)."""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import globus_sdk
import pytest
import time_machine
from django.db import connection
from django.urls import reverse
from werkzeug import Request, Response

from inversions import pipeline, services
from inversions.models import Transfer
from inversions.transfers import (
    CollectionNotReadable,
    Fault,
    PathNotFound,
    SubmissionIdUnavailable,
    TaskNotFound,
    TaskStatus,
    TransferError,
    TransferItem,
    TransferRequest,
    _backend_for,
    get_backend,
)
from inversions.transfers.globus import GlobusBackend
from level2.celery import app
from ops.states import State
from tests.factories import events_of
from tests.inversions.conftest import invertible_program

CLIENT_ID = "6c1a1a6e-1111-4a4a-9b9b-000000000001"
CLIENT_SECRET = "the-service-secret"
L1 = "1e1e1e1e-0000-4000-8000-00000000000a"
SCRATCH = "5c5c5c5c-0000-4000-8000-00000000000b"


@dataclass
class FakeGlobus:
    """Globus Auth's token endpoint and the Transfer calls the backend makes, with state."""

    secret: str = CLIENT_SECRET
    token_lifetime_s: int = 3600
    tokens_issued: int = 0
    revoked: set[str] = field(default_factory=set)
    # Status codes to answer the next Transfer requests with, before answering for real.
    failures: list[int] = field(default_factory=list)
    tasks: dict[str, dict] = field(default_factory=dict)  # by task id
    events: dict[str, list[dict]] = field(default_factory=dict)  # by task id, newest first
    # Submission ids handed out; a submission with any other id is refused, as Globus does.
    submission_ids: list[str] = field(default_factory=list)
    # Answers to give GET /submission_id before answering for real.
    submission_id_failures: list[tuple[int, dict]] = field(default_factory=list)
    task_of_submission: dict[str, str] = field(default_factory=dict)
    listings: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    ls_errors: dict[tuple[str, str], tuple[int, dict]] = field(default_factory=dict)

    def handle(self, request: Request) -> Response:
        if request.path.startswith("/auth/"):
            return self._token(request)
        if self.failures:
            status = self.failures.pop(0)
            return _json({"code": "ServiceUnavailable", "message": "Try again later"}, status)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not token.startswith("token-") or token in self.revoked:
            return _json({"code": "AuthenticationFailed", "message": "Token is not active"}, 401)
        path = request.path.removeprefix("/transfer/v0.10")
        if path == "/submission_id":
            return self._submission_id()
        if request.method == "POST" and path == "/transfer":
            return self._submit(request.get_json())
        if match := re.fullmatch(r"/task/([\w-]+)/event_list", path):
            if match[1] not in self.tasks:
                return _json({"code": "TaskNotFound", "message": f"Task {match[1]} not found"}, 404)
            limit, events = int(request.args.get("limit", 10)), self.events.get(match[1], [])
            page = {"DATA": events[:limit], "limit": limit, "offset": 0, "total": len(events)}
            return _json({"DATA_TYPE": "event_list", **page})
        if match := re.fullmatch(r"/task/([\w-]+)", path):
            task = self.tasks.get(match[1])
            if task is None:
                return _json({"code": "TaskNotFound", "message": f"Task {match[1]} not found"}, 404)
            return _json(task)
        if match := re.fullmatch(r"/operation/endpoint/([\w-]+)/ls", path):
            key = (match[1], request.args["path"])
            if key in self.ls_errors:
                status, body = self.ls_errors[key]
                return _json(body, status)
            return _json({"DATA_TYPE": "file_list", "DATA": self.listings[key], "path": key[1]})
        return _json({"code": "ClientError.NotFound", "message": f"no route {path}"}, 404)

    def _token(self, request: Request) -> Response:
        expected = base64.b64encode(f"{CLIENT_ID}:{self.secret}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return _json({"error": "invalid_client", "errors": [{"code": "UNAUTHORIZED"}]}, 401)
        self.tokens_issued += 1
        return _json(
            {
                "access_token": f"token-{self.tokens_issued}",
                "expires_in": self.token_lifetime_s,
                "resource_server": "transfer.api.globus.org",
                "scope": request.form["scope"],
                "token_type": "Bearer",
                "other_tokens": [],
            }
        )

    def _submission_id(self) -> Response:
        if self.submission_id_failures:
            return _json(*self.submission_id_failures.pop(0))
        self.submission_ids.append(str(uuid.uuid4()))
        return _json({"value": self.submission_ids[-1]})

    def _submit(self, document: dict) -> Response:
        submission_id = document["submission_id"]
        if submission_id not in self.submission_ids:
            return _json({"code": "ClientError.BadRequest", "message": "Invalid submission_id"}, 400)
        if submission_id in self.task_of_submission:
            task_id = self.task_of_submission[submission_id]
            return _json({"code": "Duplicate", "task_id": task_id, "submission_id": submission_id}, 200)
        task_id = str(uuid.uuid4())
        self.task_of_submission[submission_id] = task_id
        self.tasks[task_id] = {"task_id": task_id, "status": "ACTIVE", "nice_status": "Queued", "files": 0}
        return _json({"code": "Accepted", "task_id": task_id, "submission_id": submission_id}, 202)


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


@pytest.fixture
def globus(httpserver, monkeypatch) -> FakeGlobus:
    fake = FakeGlobus()
    httpserver.expect_request(re.compile(".*")).respond_with_handler(fake.handle)
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_AUTH", httpserver.url_for("/auth/"))
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_TRANSFER", httpserver.url_for("/transfer/"))
    return fake


@pytest.fixture
def backend(globus) -> GlobusBackend:
    return GlobusBackend(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, max_retry_sleep_s=0)


@pytest.fixture
def globus_in_settings(globus, settings):
    """The service's credentials set: get_backend() is the Globus backend."""
    settings.GLOBUS_CLIENT_ID, settings.GLOBUS_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET
    _backend_for.cache_clear()
    yield
    _backend_for.cache_clear()


def sent(httpserver, path: str) -> list[Request]:
    return [request for request, _ in httpserver.log if request.path == path]


def l1_request(backend: GlobusBackend) -> TransferRequest:
    return TransferRequest(
        submission_id=backend.new_submission_id(),
        label="Level 2 7: Level 1 data of pid_1_118",
        source_collection=L1,
        destination_collection=SCRATCH,
        items=[
            TransferItem("/visp/pid_1_118/ABCDE/", "/pid_1_118/ABCDE/"),
            TransferItem("/visp/pid_1_118/notes.txt", "/pid_1_118/notes.txt", recursive=False),
        ],
    )


def test_submit_then_active_with_progress_then_succeeded(backend, globus, httpserver):
    request = l1_request(backend)

    task_id = backend.submit(request)

    (posted,) = sent(httpserver, "/transfer/v0.10/transfer")
    document = posted.get_json()
    assert document["submission_id"] == request.submission_id
    assert (document["source_endpoint"], document["destination_endpoint"]) == (L1, SCRATCH)
    assert document["sync_level"] == 3  # checksum: a retry copies only what is missing
    assert document["verify_checksum"] is True
    assert [(item["source_path"], item["recursive"]) for item in document["DATA"]] == [
        ("/visp/pid_1_118/ABCDE/", True),
        ("/visp/pid_1_118/notes.txt", False),
    ]

    globus.tasks[task_id].update(
        nice_status="OK", files=40, files_transferred=10, files_skipped=2, bytes_transferred=5_000_000
    )
    progress = backend.status(task_id)
    assert (progress.status, progress.files_done, progress.files_total) == (TaskStatus.ACTIVE, 12, 40)
    assert (progress.bytes_done, progress.message) == (5_000_000, "")

    globus.tasks[task_id].update(
        nice_status="PERMISSION_DENIED", nice_status_short_description="permission denied"
    )
    assert backend.status(task_id).message == "permission denied"

    globus.tasks[task_id].update(
        status="SUCCEEDED", nice_status=None, files_transferred=38, bytes_transferred=9_000_000
    )
    progress = backend.status(task_id)
    assert (progress.status, progress.files_done, progress.bytes_done) == (
        TaskStatus.SUCCEEDED,
        40,
        9_000_000,
    )
    assert globus.tokens_issued == 1  # one token, kept for the following calls


def test_submission_ids_come_from_globus(backend, globus, httpserver):
    submission_id = backend.new_submission_id()

    assert globus.submission_ids == [submission_id]
    assert len(sent(httpserver, "/transfer/v0.10/submission_id")) == 1


@pytest.mark.parametrize(
    "answers, said",
    [
        ([(503, {"code": "ServiceUnavailable", "message": "Try again later"})] * 6, "Try again later"),
        ([(403, {"code": "PermissionDenied", "message": "No"})], "may not submit transfers"),
        ([(200, {"value": "../../etc/passwd"})], "not a UUID"),
        ([(200, {"DATA_TYPE": "submission_id"})], "without a submission id"),
    ],
)
def test_no_submission_id_is_a_fault_to_try_again(backend, globus, answers, said):
    globus.submission_id_failures = [(body, status) for status, body in answers]

    with pytest.raises(SubmissionIdUnavailable, match=said):
        backend.new_submission_id()

    assert globus.submission_ids == []


def gridftp_error(command: str, message: str, file: str = "") -> str:
    """An error event's details as Globus gives them: GridFTP's account, a line each."""
    lines = ["Error (transfer)", f"Endpoint: Level 1 ({L1})", "Server: gridftp.example.org:443"]
    lines += [f"File: {file}"] if file else []
    return "\n".join([*lines, f"Command: {command}", f"Message: {message}", "---", "Details: 500-..."])


def error_event(code: str, description: str, details: str) -> dict:
    return {
        "DATA_TYPE": "event",
        "code": code,
        "description": description,
        "details": details,
        "is_error": True,
        "time": "2026-03-01T12:00:00+00:00",
    }


PERMISSION_DENIED = {"code": "PERMISSION_DENIED", "description": "permission denied"}


def test_a_failed_task_names_the_paths_in_its_error_events(backend, globus):
    task_id = backend.submit(l1_request(backend))
    globus.tasks[task_id].update(status="FAILED", nice_status=None, fatal_error=PERMISSION_DENIED)
    denied = "500 Permission denied"
    globus.events[task_id] = [  # newest first
        error_event(
            "PERMISSION_DENIED", "permission denied", gridftp_error("MLSD /visp/pid_1_118/ABCDE/", denied)
        ),
        {"DATA_TYPE": "event", "code": "STARTED", "description": "started", "details": "", "is_error": False},
        error_event(
            "PERMISSION_DENIED",
            "permission denied",
            gridftp_error(
                "CKSM MD5 0 -1 /visp/pid_1_118/notes.txt", denied, file="/visp/pid_1_118/notes.txt"
            ),
        ),
        error_event(
            "PERMISSION_DENIED", "permission denied", gridftp_error("MLSD /visp/pid_1_118/ABCDE/", denied)
        ),
        # An earlier fault that Globus got past: not why the task failed.
        error_event("CONNECTION_RESET", "connection reset", gridftp_error("RETR /visp/pid_1_118/x", "reset")),
    ]

    progress = backend.status(task_id)

    assert (progress.status, progress.message) == (TaskStatus.FAILED, "permission denied")
    assert progress.faults == (
        Fault("permission denied", "/visp/pid_1_118/ABCDE/"),
        Fault("permission denied", "/visp/pid_1_118/notes.txt"),
    )


def test_a_failed_task_without_error_events_carries_globus_message(backend, globus):
    task_id = backend.submit(l1_request(backend))
    globus.tasks[task_id].update(
        status="FAILED",
        nice_status="FILE_NOT_FOUND",
        nice_status_short_description="file not found",
        fatal_error={"code": "FILE_NOT_FOUND", "description": "No such file or directory: /visp/pid_1_118"},
    )

    progress = backend.status(task_id)

    assert progress.status == TaskStatus.FAILED
    assert progress.message == "No such file or directory: /visp/pid_1_118"
    assert progress.faults == (Fault("No such file or directory: /visp/pid_1_118"),)


def test_a_struggling_task_says_where_and_gives_globus_account(backend, globus):
    task_id = backend.submit(l1_request(backend))
    account = gridftp_error("RETR /visp/pid_1_118/ABCDE/frame_1.fits", "Fatal FTP response\x1b[0m")
    globus.tasks[task_id].update(
        nice_status="PERMISSION_DENIED",
        nice_status_short_description="permission denied",
        nice_status_details=account,
    )

    progress = backend.status(task_id)

    assert progress.status == TaskStatus.ACTIVE
    assert progress.message == "permission denied on /visp/pid_1_118/ABCDE/frame_1.fits"
    assert progress.details.splitlines()[3] == "Command: RETR /visp/pid_1_118/ABCDE/frame_1.fits"
    assert "\x1b" not in progress.details  # only printable text reaches the page

    globus.tasks[task_id].update(nice_status="OK", nice_status_details=None)
    assert (backend.status(task_id).message, backend.status(task_id).details) == ("", "")


def test_a_task_globus_does_not_know_is_not_found(backend, globus):
    with pytest.raises(TaskNotFound, match="does not know the task"):
        backend.status(str(uuid.uuid4()))


def test_paused_task_is_active_with_the_reason(backend, globus):
    task_id = backend.submit(l1_request(backend))
    globus.tasks[task_id].update(status="INACTIVE", nice_status_short_description="credentials expired")

    progress = backend.status(task_id)

    assert (progress.status, progress.message) == (TaskStatus.ACTIVE, "paused by Globus: credentials expired")


def test_server_errors_are_retried_until_globus_answers(backend, globus, httpserver):
    task_id = backend.submit(l1_request(backend))
    globus.failures = [503, 502]

    assert backend.status(task_id).status == TaskStatus.ACTIVE
    assert len(sent(httpserver, f"/transfer/v0.10/task/{task_id}")) == 3


def test_server_errors_that_last_become_a_transfer_error(backend, globus):
    task_id = backend.submit(l1_request(backend))
    globus.failures = [500] * 6  # the first try and five retries

    with pytest.raises(TransferError, match="Try again later"):
        backend.status(task_id)


def test_network_errors_are_retried_then_reported(monkeypatch, globus):
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_TRANSFER", "http://127.0.0.1:9/")  # nothing listens
    backend = GlobusBackend(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, max_retry_sleep_s=0)

    with pytest.raises(TransferError, match="Globus could not be reached"):
        backend.status("some-task")


def test_token_is_renewed_before_it_expires(backend, globus, httpserver):
    with time_machine.travel("2026-03-01 12:00 +0000", tick=False) as traveller:
        task_id = backend.submit(l1_request(backend))
        traveller.shift(timedelta(hours=2))
        backend.status(task_id)

    assert globus.tokens_issued == 2
    (task_request,) = sent(httpserver, f"/transfer/v0.10/task/{task_id}")
    assert task_request.headers["Authorization"] == "Bearer token-2"


def test_token_rejected_early_is_renewed_once(backend, globus, httpserver):
    task_id = backend.submit(l1_request(backend))
    globus.revoked.add("token-1")

    assert backend.status(task_id).status == TaskStatus.ACTIVE
    assert globus.tokens_issued == 2
    answers = [response.status_code for _, response in httpserver.log if "/task/" in _.path]
    assert answers == [401, 200]


def test_credentials_that_stop_working_are_reported_clearly(backend, globus, httpserver):
    task_id = backend.submit(l1_request(backend))
    globus.revoked.add("token-1")
    globus.secret = "rotated-in-globus"

    with pytest.raises(TransferError, match="Globus rejected the service's credentials") as raised:
        backend.status(task_id)

    assert len(sent(httpserver, "/auth/v2/oauth2/token")) == 2  # the first token, one renewal
    assert CLIENT_SECRET not in str(raised.value) and "token-" not in str(raised.value)


def test_tokens_that_globus_keeps_rejecting_are_reported_clearly(backend, globus, httpserver):
    task_id = backend.submit(l1_request(backend))
    globus.revoked.update({"token-1", "token-2"})

    with pytest.raises(TransferError, match="Globus rejected the service's credentials"):
        backend.status(task_id)

    assert len(sent(httpserver, f"/transfer/v0.10/task/{task_id}")) == 2  # renewed once, not more


def test_resubmitting_a_submission_id_ends_with_one_task(globus, httpserver):
    """A worker that died after submitting, before recording the task id: its restart (a new
    process, a new backend) submits the same submission id again."""
    request = l1_request(GlobusBackend(client_id=CLIENT_ID, client_secret=CLIENT_SECRET))
    first = GlobusBackend(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).submit(request)

    again = GlobusBackend(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).submit(request)

    assert again == first
    assert list(globus.tasks) == [first]
    posted = sent(httpserver, "/transfer/v0.10/transfer")
    assert [post.get_json()["submission_id"] for post in posted] == [request.submission_id] * 2
    assert [response.status_code for _, response in httpserver.log if _.path.endswith("/transfer")] == [
        202,
        200,
    ]


def test_list_files(backend, globus):
    globus.listings[("team-collection", "/runs/pid_1_118/")] = [
        {"DATA_TYPE": "file", "name": "inv_res_pre.fits", "type": "file", "size": 2048},
        {"DATA_TYPE": "file", "name": "inv_res_mod.fits", "type": "file", "size": 1024},
        {"DATA_TYPE": "file", "name": "plots", "type": "dir", "size": 4096},
    ]

    listed = backend.list_files("team-collection", "/runs/pid_1_118/")

    assert [(entry.name, entry.size, entry.is_dir) for entry in listed] == [
        ("inv_res_mod.fits", 1024, False),
        ("inv_res_pre.fits", 2048, False),
        ("plots", 4096, True),
    ]


def test_list_files_of_a_missing_path(backend, globus):
    globus.ls_errors[("team-collection", "/nowhere/")] = (
        404,
        {"code": "ClientError.NotFound", "message": "Directory '/nowhere/' not found on endpoint"},
    )

    with pytest.raises(PathNotFound, match="/nowhere/ does not exist on collection team-collection"):
        backend.list_files("team-collection", "/nowhere/")


def test_list_files_without_permission_names_what_to_grant(backend, globus):
    globus.ls_errors[("team-collection", "/runs/")] = (
        403,
        {"code": "EndpointPermissionDenied", "message": "No permission to access this collection"},
    )

    with pytest.raises(CollectionNotReadable) as raised:
        backend.list_files("team-collection", "/runs/")

    assert f"grant {CLIENT_ID}@clients.auth.globus.org read access on collection team-collection" in str(
        raised.value
    )


def test_list_files_needing_consent_names_the_collection(backend, globus):
    scope = f"https://auth.globus.org/scopes/{SCRATCH}/data_access"
    globus.ls_errors[(SCRATCH, "/runs/")] = (
        403,
        {
            "code": "ConsentRequired",
            "message": "Missing required data_access consent",
            "required_scopes": [scope],
        },
    )

    with pytest.raises(CollectionNotReadable) as raised:
        backend.list_files(SCRATCH, "/runs/")

    assert f"collection {SCRATCH}" in str(raised.value)
    assert "GLOBUS_DATA_ACCESS_COLLECTIONS" in str(raised.value)


def test_data_access_collections_are_asked_for_with_the_token(globus, httpserver):
    backend = GlobusBackend(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, data_access_collections=[SCRATCH]
    )
    globus.listings[(SCRATCH, "/")] = []

    backend.list_files(SCRATCH, "/")

    (token_request,) = sent(httpserver, "/auth/v2/oauth2/token")
    assert token_request.form["scope"] == (
        f"urn:globus:auth:scope:transfer.api.globus.org:all[*https://auth.globus.org/scopes/{SCRATCH}/data_access]"
    )


def test_task_url_follows_the_sdk_environment(monkeypatch):
    monkeypatch.delenv("GLOBUS_SDK_SERVICE_URL_APP", raising=False)
    monkeypatch.setenv("GLOBUS_SDK_ENVIRONMENT", "preview")
    backend = GlobusBackend(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert backend.task_url("abc-123") == "https://app.preview.globus.org/activity/abc-123"

    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_APP", "https://app.example.org")
    assert backend.task_url("abc-123") == "https://app.example.org/activity/abc-123"


def test_credentials_in_settings_select_globus_without_calling_it(globus_in_settings, httpserver):
    backend = get_backend()

    assert (backend.name, backend.identity) == ("globus", f"{CLIENT_ID}@clients.auth.globus.org")
    assert httpserver.log == []


def test_a_worker_killed_before_recording_the_task_id_ends_with_one_task(
    globus_in_settings, globus, httpserver, settings, inverter
):
    """The pipeline end to end on Globus: the transfer was submitted, then the worker died
    before recording the task id; the poller submits the same submission again."""
    settings.GLOBUS_L1_COLLECTION, settings.GLOBUS_SCRATCH_COLLECTION = L1, SCRATCH
    settings.LEVEL2_TRANSFER_RESUBMIT_AFTER_S = 0
    program = invertible_program(datasets=1)
    services.queue_program(program_id=program.pk, user=inverter)
    transfer = pipeline.preprocess(inversion_id=program.inversions.get().pk)
    (task_id,) = globus.tasks
    # As if the worker had died between Globus's answer and recording it.
    Transfer.objects.filter(pk=transfer.pk).update(status=Transfer.Status.PENDING, task_id="")

    pipeline.poll_transfers()

    transfer.refresh_from_db()
    assert (transfer.status, transfer.task_id) == (Transfer.Status.ACTIVE, task_id)
    posted = sent(httpserver, "/transfer/v0.10/transfer")
    assert [post.get_json()["submission_id"] for post in posted] == [str(transfer.submission_id)] * 2
    assert list(globus.tasks) == [task_id]

    globus.tasks[task_id].update(status="SUCCEEDED", files=3, files_transferred=3, bytes_transferred=300)
    pipeline.poll_transfers()

    program.refresh_from_db()
    assert program.state == State.PREPROCESSED


# --- the pipeline on Globus -------------------------------------------------------------------


@pytest.fixture
def on_globus(globus_in_settings, globus, settings):
    settings.GLOBUS_L1_COLLECTION, settings.GLOBUS_SCRATCH_COLLECTION = L1, SCRATCH
    return globus


def queued_program(inverter):
    program = invertible_program(datasets=1)
    services.queue_program(program_id=program.pk, user=inverter)
    return program


def test_the_submission_id_is_had_from_globus_and_stored_before_the_submit(
    on_globus, httpserver, monkeypatch, inverter
):
    program = queued_program(inverter)
    seen_at_submit = []
    submit_transfer = globus_sdk.TransferClient.submit_transfer

    def observed(client, data):
        # What the database holds at the moment Globus is asked to start the transfer.
        stored = Transfer.objects.filter(submission_id=data["submission_id"])
        seen_at_submit.append(
            {
                "stored": list(stored.values_list("status", flat=True)),
                "event": events_of(program)[-1].details.get("submission_id"),
                # Only the test's own transaction is open: preprocess's has ended (committed).
                "open_transactions": len(connection.atomic_blocks),
            }
        )
        return submit_transfer(client, data)

    monkeypatch.setattr(globus_sdk.TransferClient, "submit_transfer", observed)

    transfer = pipeline.preprocess(inversion_id=program.inversions.get().pk)

    (submission_id,) = on_globus.submission_ids
    assert str(transfer.submission_id) == submission_id
    asked = [request.path.rsplit("/", 1)[-1] for request, _ in httpserver.log if "/auth/" not in request.path]
    assert asked[:2] == ["submission_id", "transfer"]
    (posted,) = sent(httpserver, "/transfer/v0.10/transfer")
    assert posted.get_json()["submission_id"] == submission_id
    assert seen_at_submit == [{"stored": ["pending"], "event": submission_id, "open_transactions": 1}]
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.ACTIVE


def test_no_submission_id_leaves_the_op_queued_and_the_task_tries_again(
    on_globus, httpserver, inverter, eager_tasks, django_capture_on_commit_callbacks
):
    program = invertible_program(datasets=1)
    unavailable = {"code": "ServiceUnavailable", "message": "Globus is down for maintenance"}
    on_globus.submission_id_failures = [(unavailable, 400), (unavailable, 400)]
    # Eagerly run, a task's retry runs at once, as the worker would after its countdown
    # (propagating the task's exceptions would stop it instead).
    app.conf.task_eager_propagates = False

    with django_capture_on_commit_callbacks(execute=True):
        services.queue_program(program_id=program.pk, user=inverter)

    assert len(sent(httpserver, "/transfer/v0.10/submission_id")) == 3  # two refusals, then an id
    assert [event.to_state for event in events_of(program)][-2:] == ["queued", "preprocessing"]
    (transfer,) = Transfer.objects.all()
    assert str(transfer.submission_id) == on_globus.submission_ids[0]


def test_no_submission_id_for_an_op_put_back_asks_nothing(on_globus, httpserver, inverter):
    program = queued_program(inverter)
    services.put_back(program_id=program.pk, user=inverter, reason="not now", expected_state=State.QUEUED)

    assert pipeline.preprocess(inversion_id=program.inversions.get().pk) is None

    assert sent(httpserver, "/transfer/v0.10/submission_id") == []


def preprocessing_on_globus(inverter) -> tuple:
    program = queued_program(inverter)
    transfer = pipeline.preprocess(inversion_id=program.inversions.get().pk)
    transfer.refresh_from_db()
    return program, transfer, program.datasets.get()


def test_a_failed_task_ends_the_step_naming_the_path(on_globus, inverter):
    program, transfer, dataset = preprocessing_on_globus(inverter)
    folder = f"/{dataset.bucket}/{dataset.proposal_id}/{dataset.id}/"
    on_globus.tasks[transfer.task_id].update(status="FAILED", fatal_error=PERMISSION_DENIED)
    on_globus.events[transfer.task_id] = [
        error_event("PERMISSION_DENIED", "permission denied", gridftp_error(f"MLSD {folder}", "denied"))
    ]

    pipeline.poll_transfers()

    program.refresh_from_db()
    error = events_of(program)[-1]
    expected = f"Permission denied on {folder} (level1 → scratch, task {transfer.task_id[:8]}…)."
    assert (program.state, error.details["message"]) == (State.ERROR, expected)
    assert (error.details["reason"], error.details["paths"]) == ("permission denied", [folder])
    assert error.details["task_id"] == transfer.task_id
    transfer.refresh_from_db()
    assert (transfer.status, transfer.message) == (Transfer.Status.FAILED, expected)


def test_a_struggling_task_shows_globus_account_on_the_program_page(on_globus, inverter, client):
    program, transfer, dataset = preprocessing_on_globus(inverter)
    frame = f"/{dataset.bucket}/{dataset.proposal_id}/{dataset.id}/frame_1.fits"
    on_globus.tasks[transfer.task_id].update(
        nice_status="PERMISSION_DENIED",
        nice_status_short_description="permission denied",
        nice_status_details=gridftp_error(f"RETR {frame}", "<b>Fatal FTP response</b>"),
    )

    pipeline.poll_transfers()

    transfer.refresh_from_db()
    assert transfer.message == f"permission denied on {frame}"
    client.force_login(inverter)
    html = client.get(reverse("program-detail", args=[program.pk])).content.decode()
    assert f"permission denied on {frame}" in html
    assert f"Command: RETR {frame}" in html
    assert "&lt;b&gt;Fatal FTP response&lt;/b&gt;" in html  # Globus's text, escaped

    on_globus.tasks[transfer.task_id].update(nice_status="OK", nice_status_details=None)
    pipeline.poll_transfers()
    html = client.get(reverse("program-detail", args=[program.pk])).content.decode()
    assert "Command: RETR" not in html


def test_a_task_globus_forgot_ends_in_error_and_retry_reaches_preprocessed(
    on_globus, inverter, eager_tasks, django_capture_on_commit_callbacks
):
    program, first, _dataset = preprocessing_on_globus(inverter)
    del on_globus.tasks[first.task_id]

    pipeline.poll_transfers()

    program.refresh_from_db()
    error = events_of(program)[-1]
    assert program.state == State.ERROR
    assert error.details["message"] == (
        f"Globus does not know the task any more (level1 → scratch, task {first.task_id[:8]}…)."
    )

    with django_capture_on_commit_callbacks(execute=True):
        services.retry(program_id=program.pk, user=inverter)

    first.refresh_from_db()
    second = Transfer.objects.exclude(pk=first.pk).get()
    assert on_globus.submission_ids == [str(first.submission_id), str(second.submission_id)]
    assert (first.status, second.status) == (Transfer.Status.FAILED, Transfer.Status.ACTIVE)
    on_globus.tasks[second.task_id].update(status="SUCCEEDED", files=3, files_transferred=3)
    pipeline.poll_transfers()
    program.refresh_from_db()
    assert program.state == State.PREPROCESSED


def test_a_task_whose_state_stays_unknown_fails_at_the_deadline(on_globus, inverter):
    with time_machine.travel("2026-03-01 12:00 +0000", tick=False) as traveller:
        program, transfer, _dataset = preprocessing_on_globus(inverter)
        on_globus.secret = "rotated-in-globus"  # Globus refuses the service from now on

        traveller.shift(timedelta(hours=71))
        pipeline.poll_transfers()
        program.refresh_from_db()
        transfer.refresh_from_db()
        assert program.state == State.PREPROCESSING
        assert "Globus rejected the service's credentials" in transfer.message

        traveller.shift(timedelta(hours=2))
        pipeline.poll_transfers()

    program.refresh_from_db()
    message = events_of(program)[-1].details["message"]
    assert program.state == State.ERROR
    assert message.startswith("The state of the transfer was still unknown after 72 hours: Globus rejected")
    assert message.endswith(f"(level1 → scratch, task {transfer.task_id[:8]}…).")
