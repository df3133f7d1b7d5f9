"""The preprocess step end to end on the local backend, with real files."""

import os
import shutil
from datetime import timedelta

import pytest
from django.utils import timezone

from inversions import pipeline, services
from inversions.models import Transfer
from inversions.transfers import TaskStatus
from ops.history import Actor, record_event
from ops.states import ActorKind, State
from tests.factories import events_of
from tests.inversions.conftest import invertible_program

pytestmark = pytest.mark.django_db


def write_level1(root, program, frames: int = 3) -> int:
    """Level 1 frames of each dataset of the OP in the local L1 collection; returns bytes."""
    written = 0
    for dataset in program.datasets.all():
        folder = root / "level1" / dataset.bucket / dataset.proposal_id / dataset.id
        folder.mkdir(parents=True)
        for n in range(frames):
            content = f"{dataset.id} frame {n}".encode() * 100
            (folder / f"VISP_{n}_I_{dataset.id}_L1.fits").write_bytes(content)
            written += len(content)
    return written


def test_work_on_this_next_moves_the_level1_data_to_scratch(
    inverter, local_collections, eager_tasks, django_capture_on_commit_callbacks
):
    program = invertible_program(datasets=3)
    written = write_level1(local_collections, program)
    with django_capture_on_commit_callbacks(execute=True):
        services.queue_program(program_id=program.pk, user=inverter)
    program.refresh_from_db()
    assert program.state == State.PREPROCESSED
    states = [event.to_state for event in events_of(program)]
    assert states[-3:] == ["queued", "preprocessing", "preprocessed"]
    preprocessing, preprocessed = events_of(program)[-2:]
    transfer = Transfer.objects.get()
    assert preprocessing.details["submission_id"] == str(transfer.submission_id)
    assert sorted(preprocessing.details["datasets"]) == sorted(program.datasets.values_list("id", flat=True))
    assert (preprocessed.details["files"], preprocessed.details["bytes"]) == (9, written)
    for dataset in program.datasets.all():
        copied = local_collections / "scratch" / dataset.proposal_id / dataset.id
        assert len(list(copied.iterdir())) == 3


def test_missing_level1_folders_are_an_error_naming_the_datasets_that_retry_starts_again(
    inverter, local_collections, eager_tasks, django_capture_on_commit_callbacks
):
    program = invertible_program(datasets=3)
    write_level1(local_collections, program)
    without = list(program.datasets.order_by("id"))[1:]  # the first one keeps its folder
    for dataset in without:
        shutil.rmtree(local_collections / "level1" / dataset.bucket / dataset.proposal_id / dataset.id)
    with django_capture_on_commit_callbacks(execute=True):
        services.queue_program(program_id=program.pk, user=inverter)
    program.refresh_from_db()
    error = events_of(program)[-1]
    assert program.state == State.ERROR
    assert error.details["step"] == "preprocessing"
    folders = [f"/{dataset.bucket}/{dataset.proposal_id}/{dataset.id}/" for dataset in without]
    assert error.details["message"] == (
        f"The Level 1 collection level1 has no files for datasets {without[0].id}, {without[1].id}: "
        "retry once they are there."
    )
    assert (error.details["reason"], error.details["paths"]) == ("file not found", folders)

    shutil.rmtree(local_collections / "level1")
    write_level1(local_collections, program)
    with django_capture_on_commit_callbacks(execute=True):
        services.retry(program_id=program.pk, user=inverter)
    program.refresh_from_db()
    assert program.state == State.PREPROCESSED
    assert [t.status for t in Transfer.objects.order_by("id")] == ["failed", "succeeded"]


def test_a_folder_gone_between_the_check_and_the_copy_fails_the_copy_naming_it(
    inverter, local_collections, eager_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(pipeline, "datasets_without_files", lambda datasets, collection: [])
    program = invertible_program(datasets=2)
    with django_capture_on_commit_callbacks(execute=True):
        services.queue_program(program_id=program.pk, user=inverter)
    program.refresh_from_db()
    error = events_of(program)[-1]
    assert program.state == State.ERROR
    first = program.datasets.order_by("id").first()
    folder = f"/{first.bucket}/{first.proposal_id}/{first.id}/"
    task_id = Transfer.objects.get().task_id
    assert error.details["message"] == f"File not found on {folder} (level1 → scratch, task {task_id[:8]}…)."
    assert (error.details["reason"], error.details["paths"]) == ("file not found", [folder])


def test_a_proposal_folder_missing_names_every_dataset(inverter, local_collections, eager_tasks):
    program = invertible_program(datasets=1)
    (local_collections / "level1").mkdir(parents=True)
    services.queue_program(program_id=program.pk, user=inverter)
    pipeline.preprocess(inversion_id=program.inversions.get().id)
    program.refresh_from_db()
    assert program.state == State.ERROR
    assert program.datasets.get().id in events_of(program)[-1].details["message"]


def test_a_worker_killed_before_submitting_is_finished_by_the_poller_with_the_same_submission(
    inverter, local_collections, settings
):
    """The transfer row and the event were committed, then the worker died: the poller
    submits with the recorded submission id, and the copy happens once."""
    program = invertible_program(datasets=1)
    write_level1(local_collections, program)
    services.queue_program(program_id=program.pk, user=inverter)
    inversion = program.inversions.get()
    transfer = pipeline._new_transfer(
        inversion=inversion,
        step=Transfer.Step.PREPROCESS,
        submission_id=pipeline.get_backend().new_submission_id(),
        label="killed",
        source="level1",
        destination="scratch",
        items=[
            pipeline.TransferItem(f"/data/{d.proposal_id}/{d.id}/", f"/{d.proposal_id}/{d.id}/")
            for d in program.datasets.all()
        ],
    )
    record_event(program_id=program.pk, to_state=State.PREPROCESSING, actor=Actor(ActorKind.WORKER))
    settings.LEVEL2_TRANSFER_RESUBMIT_AFTER_S = 0
    pipeline.poll_transfers()
    program.refresh_from_db()
    transfer.refresh_from_db()
    assert program.state == State.PREPROCESSED
    assert transfer.status == Transfer.Status.SUCCEEDED and transfer.task_id == str(transfer.submission_id)
    assert len(list((local_collections / ".tasks").glob("*.json"))) == 1


def started_preprocessing(inverter, local_collections):
    """An OP whose Level 1 copy was submitted, with the local backend's task record to edit."""
    program = invertible_program(datasets=1)
    write_level1(local_collections, program)
    services.queue_program(program_id=program.pk, user=inverter)
    transfer = pipeline.preprocess(inversion_id=program.inversions.get().pk)
    transfer.refresh_from_db()
    return program, transfer


def test_a_copy_killed_mid_way_is_resumed_by_the_poller(inverter, local_collections):
    _program, transfer = started_preprocessing(inverter, local_collections)
    backend = pipeline.get_backend()
    record = backend._read(transfer.task_id)
    record.update(status=TaskStatus.ACTIVE, pid=2**22 + 12345)  # no such process
    backend._write(transfer.task_id, record)
    progress = backend.status(transfer.task_id)
    assert (progress.status, progress.files_done) == (TaskStatus.SUCCEEDED, 3)


def copying_since(inverter, *, days: float):
    """An OP in preprocessing whose Level 1 copy is still under way, in this very process, since
    ``days`` ago (its Level 1 data is there)."""
    program = invertible_program(datasets=1)
    write_level1(pipeline.get_backend().root, program)
    services.queue_program(program_id=program.pk, user=inverter)
    transfer = pipeline._new_transfer(
        inversion=program.inversions.get(),
        step=Transfer.Step.PREPROCESS,
        submission_id=pipeline.get_backend().new_submission_id(),
        label="slow",
        source="level1",
        destination="scratch",
        items=[],
    )
    record_event(program_id=program.pk, to_state=State.PREPROCESSING, actor=Actor(ActorKind.WORKER))
    pipeline.get_backend()._write(
        str(transfer.submission_id),
        {
            "status": "ACTIVE",
            "pid": os.getpid(),
            "files_done": 1,
            "files_total": 9,
            "bytes_done": 10,
            "message": "",
        },
    )
    Transfer.objects.filter(pk=transfer.pk).update(
        status=Transfer.Status.ACTIVE,
        task_id=str(transfer.submission_id),
        submitted_at=timezone.now() - timedelta(days=days),
    )
    transfer.refresh_from_db()
    return program, transfer


def test_a_transfer_past_its_deadline_fails_the_step(inverter, local_collections):
    program, _transfer = copying_since(inverter, days=10)
    pipeline.poll_transfers()
    program.refresh_from_db()
    assert program.state == State.ERROR
    assert "did not finish within 72 hours" in events_of(program)[-1].details["message"]
    assert Transfer.objects.get().status == Transfer.Status.FAILED


def test_a_copy_that_cannot_write_names_the_file_on_its_collection(inverter, local_collections):
    program = invertible_program(datasets=1)
    write_level1(local_collections, program, frames=1)
    dataset = program.datasets.get()
    # Where the frame should go, a folder stands: the copy cannot write the file.
    frame = next((local_collections / "level1").rglob("*.fits")).name
    (local_collections / "scratch" / dataset.proposal_id / dataset.id / frame).mkdir(parents=True)
    services.queue_program(program_id=program.pk, user=inverter)

    pipeline.preprocess(inversion_id=program.inversions.get().pk)

    program.refresh_from_db()
    error = events_of(program)[-1]
    assert program.state == State.ERROR
    assert error.details["paths"] == [f"/{dataset.proposal_id}/{dataset.id}/{frame}"]
    assert str(local_collections) not in error.details["message"]  # paths on collections, not on disk


def test_a_task_the_backend_does_not_know_ends_the_step_and_retry_starts_afresh(
    inverter, local_collections, eager_tasks, django_capture_on_commit_callbacks
):
    program, first = copying_since(inverter, days=0)
    (local_collections / ".tasks" / f"{first.task_id}.json").unlink()  # the backend lost it

    pipeline.poll_transfers()

    program.refresh_from_db()
    assert program.state == State.ERROR
    assert (
        events_of(program)[-1]
        .details["message"]
        .startswith(f"The local backend has no transfer {first.task_id}")
    )

    with django_capture_on_commit_callbacks(execute=True):
        services.retry(program_id=program.pk, user=inverter)

    program.refresh_from_db()
    second = Transfer.objects.exclude(pk=first.pk).get()
    assert second.submission_id != first.submission_id
    assert (program.state, second.status) == (State.PREPROCESSED, Transfer.Status.SUCCEEDED)
