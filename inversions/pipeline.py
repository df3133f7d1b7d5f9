"""The worker's steps of an OP's work: preprocess, generate, publish.

Each step moves the OP through ``ops.history`` as the worker. Transfers go through
``inversions.transfers``: a submission id is had from the backend first (Globus gives them;
SubmissionIdUnavailable leaves the OP as it is, and the Celery task tries again), then a
Transfer row with it is committed together with the event that starts the step, then
submitted; the poller (``poll_transfers``) follows it and, when it succeeds, takes the step
on. A step that fails for good records ``error`` with the step and the message, from which
"Retry" starts it again with a new transfer. No transfer waits for ever: one that fails, that
the backend no longer knows, or that is not done by its deadline ends its step in ``error``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inversions import catalog
from inversions.models import Inversion, Transfer
from inversions.paths import PathRefused, files_inside, inside, level1_on_scratch
from inversions.publication import PublishRefused, publication_bucket
from inversions.stale import level1_snapshot
from inversions.steps import start_after_commit
from inversions.transfers import (
    Fault,
    PathNotFound,
    TaskNotFound,
    TaskStatus,
    TransferError,
    TransferItem,
    TransferRequest,
    collections,
    describe_faults,
    get_backend,
)
from ops import selectors as ops_selectors
from ops.history import Actor, StaleStateError, record_event
from ops.metadata.client import MetadataClient, MetadataStoreError
from ops.metadata.inventory import ensure_l2_inversion_inventory
from ops.models import Dataset, ProgramEvent
from ops.states import ActorKind, State

log = logging.getLogger(__name__)

WORKER = Actor(ActorKind.WORKER)
STEP_STATES = {
    Transfer.Step.PREPROCESS: State.PREPROCESSING,
    Transfer.Step.RESULTS: State.GENERATING,
    Transfer.Step.PUBLISH: State.PUBLISHING,
}


def _program_state(inversion: Inversion) -> str:
    return type(inversion.program).objects.values_list("state", flat=True).get(pk=inversion.program_id)


def fail_step(*, inversion: Inversion, state: State, message: str, **facts: Any) -> ProgramEvent | None:
    """``error`` for the step under way in ``state``, unless someone moved the OP meanwhile."""
    log.warning("%s %s failed: %s", inversion.program_id, state, message)
    try:
        return record_event(
            program_id=inversion.program_id,
            to_state=State.ERROR,
            actor=WORKER,
            details={"inversion": inversion.id, "step": state.value, "message": message, **facts},
            expected_state=state,
        )
    except StaleStateError as error:
        log.info("not recording the error of %s: %s", inversion.program_id, error)
        return None


# --- transfers ------------------------------------------------------------------------------


def _request(transfer: Transfer) -> TransferRequest:
    return TransferRequest(
        submission_id=str(transfer.submission_id),
        label=transfer.label,
        source_collection=transfer.source_collection,
        destination_collection=transfer.destination_collection,
        items=[TransferItem(**item) for item in transfer.items],
    )


def _new_transfer(
    *,
    inversion: Inversion,
    step: Transfer.Step,
    submission_id: str,
    label: str,
    source: str,
    destination: str,
    items: list[TransferItem],
) -> Transfer:
    """The transfer's row, with the submission id the backend gave (``new_submission_id``,
    asked outside any transaction: it may be a call to Globus)."""
    return Transfer.objects.create(
        inversion=inversion,
        step=step,
        submission_id=submission_id,
        backend=get_backend().name,
        label=label[:128],
        source_collection=source,
        destination_collection=destination,
        items=[vars(item) | {} for item in items],
    )


def submit_transfer(*, transfer: Transfer) -> None:
    """Submit (or submit again, with the same submission id) and follow it at once."""
    backend = get_backend()
    try:
        task_id = backend.submit(_request(transfer))
    except TransferError as error:
        _finish_transfer(transfer=transfer, status=TaskStatus.FAILED, message=str(error))
        return
    Transfer.objects.filter(pk=transfer.pk, status=Transfer.Status.PENDING).update(
        task_id=task_id, status=Transfer.Status.ACTIVE, submitted_at=timezone.now()
    )
    poll_transfer(transfer_id=transfer.pk)


def poll_transfers() -> int:
    """The periodic task: bring every open transfer of an open attempt up to date."""
    open_ids = list(
        Transfer.objects.filter(
            status__in=[Transfer.Status.PENDING, Transfer.Status.ACTIVE], inversion__ended_at__isnull=True
        ).values_list("pk", flat=True)
    )
    for transfer_id in open_ids:
        try:
            poll_transfer(transfer_id=transfer_id)
        except Exception:  # one transfer's trouble must not stop the others being followed
            log.exception("polling transfer %s failed", transfer_id)
    return len(open_ids)


def poll_transfer(*, transfer_id: int) -> None:
    transfer = Transfer.objects.select_related("inversion").get(pk=transfer_id)
    now = timezone.now()
    if transfer.status == Transfer.Status.PENDING:
        # Recorded but never accepted: the worker died in between. The same id again.
        if now - transfer.created_at > timedelta(seconds=settings.LEVEL2_TRANSFER_RESUBMIT_AFTER_S):
            submit_transfer(transfer=transfer)
        return
    if transfer.status != Transfer.Status.ACTIVE:
        return
    hours = settings.LEVEL2_TRANSFER_DEADLINE_HOURS
    past_deadline = now > (transfer.submitted_at or transfer.created_at) + timedelta(hours=hours)
    try:
        progress = get_backend().status(transfer.task_id)
    except TaskNotFound as error:
        _finish_transfer(
            transfer=transfer, status=TaskStatus.FAILED, message=_failure(transfer, str(error).rstrip("."))
        )
        return
    except TransferError as error:
        Transfer.objects.filter(pk=transfer.pk).update(message=str(error), polled_at=now)
        if past_deadline:
            message = f"The state of the transfer was still unknown after {hours:g} hours: {error}"
            _finish_transfer(transfer=transfer, status=TaskStatus.FAILED, message=_failure(transfer, message))
        return
    Transfer.objects.filter(pk=transfer.pk).update(
        files_done=progress.files_done,
        files_total=progress.files_total,
        bytes_done=progress.bytes_done,
        message=progress.message,
        status_details=progress.details,
        polled_at=now,
    )
    if progress.status == TaskStatus.ACTIVE and past_deadline:
        message = f"The transfer did not finish within {hours:g} hours"
        if progress.message:
            message += f": {progress.message}"
        _finish_transfer(transfer=transfer, status=TaskStatus.FAILED, message=_failure(transfer, message))
    elif progress.status == TaskStatus.FAILED:
        faults = progress.faults or (Fault(progress.message or "the transfer failed"),)
        _finish_transfer(
            transfer=transfer,
            status=TaskStatus.FAILED,
            message=_failure(transfer, describe_faults(faults)),
            facts={"reason": faults[0].reason, "paths": [fault.path for fault in faults if fault.path]},
        )
    elif progress.status == TaskStatus.SUCCEEDED:
        _finish_transfer(transfer=transfer, status=progress.status, message=progress.message)


def _failure(transfer: Transfer, what: str) -> str:
    """``what`` went wrong, said of this transfer: "Permission denied on /data/pid_1_10/AQDCK/
    (level1 → scratch, task 8af3…)"."""
    names = {value: name for name, value in vars(collections()).items() if isinstance(value, str)}
    source = names.get(transfer.source_collection, transfer.source_collection)
    destination = names.get(transfer.destination_collection, transfer.destination_collection)
    task = f"task {transfer.task_id[:8]}…" if len(transfer.task_id) > 8 else f"task {transfer.task_id}"
    return f"{what[:1].upper()}{what[1:]} ({source} → {destination}, {task})."


def _finish_transfer(
    *, transfer: Transfer, status: TaskStatus, message: str, facts: dict[str, Any] | None = None
) -> None:
    """Close the transfer and take its step on, once: of two pollers, one closes it. ``facts``
    go into the details of the ``error`` event of a failure."""
    transfer.refresh_from_db()
    inversion = transfer.inversion
    state = STEP_STATES[Transfer.Step(transfer.step)]
    try:
        with transaction.atomic():
            closed = Transfer.objects.filter(
                pk=transfer.pk, status__in=[Transfer.Status.PENDING, Transfer.Status.ACTIVE]
            ).update(
                status=Transfer.Status.SUCCEEDED
                if status == TaskStatus.SUCCEEDED
                else Transfer.Status.FAILED,
                message=message,
                status_details="",
                completed_at=timezone.now(),
            )
            if not closed:
                return
            transfer.refresh_from_db()
            if status != TaskStatus.SUCCEEDED:
                facts = {"transfer": transfer.pk, "task_id": transfer.task_id, **(facts or {})}
                if fail_step(
                    inversion=inversion, state=state, message=message or "The transfer failed.", **facts
                ):
                    return
                raise StaleStateError("moved meanwhile", current=None)
            _transfer_succeeded(transfer=transfer)
    except StaleStateError as error:
        # The OP is no longer in the step's state (archived, put back): the transfer stays
        # open, and the poller takes it on if the OP comes back.
        log.info("transfer %s finished, but %s moved on: %s", transfer.pk, inversion.program_id, error)


def _transfer_facts(transfer: Transfer) -> dict[str, Any]:
    duration = transfer.duration
    return {
        "transfer": transfer.pk,
        "task_id": transfer.task_id,
        "files": transfer.files_done,
        "bytes": transfer.bytes_done,
        "duration_s": round(duration.total_seconds(), 1) if duration else None,
    }


def _transfer_succeeded(*, transfer: Transfer) -> None:
    inversion = transfer.inversion
    if transfer.step == Transfer.Step.PREPROCESS:
        record_event(
            program_id=inversion.program_id,
            to_state=State.PREPROCESSED,
            actor=WORKER,
            details={"inversion": inversion.id, **_transfer_facts(transfer)},
            expected_state=State.PREPROCESSING,
        )
    elif transfer.step == Transfer.Step.RESULTS:
        start_after_commit("generate_products", inversion.id)
    else:
        record_event(
            program_id=inversion.program_id,
            to_state=State.PUBLISHING,
            actor=WORKER,
            details={"inversion": inversion.id, "published_files": True, **_transfer_facts(transfer)},
            expected_state=State.PUBLISHING,
        )
        start_after_commit("publish", inversion.id)


# --- preprocess -----------------------------------------------------------------------------


def datasets_to_preprocess(*, program_id: str) -> list[Dataset]:
    """The datasets of the OP's invertible IPs by its newest report (listed, not vanished)."""
    report = ops_selectors.latest_reports(program_ids=[program_id]).get(program_id) or {}
    ip_ids = [ip["id"] for ip in report.get("instrument_programs", []) if ip.get("invertible")]
    return list(
        Dataset.objects.filter(instrument_program_id__in=ip_ids, vanished_at__isnull=True)
        .only("id", "bucket", "proposal_id", "instrument_program_id")
        .order_by("id")
    )


def _submission_id(*, inversion_id: str, state: State) -> str | None:
    """A submission id from the backend for the step that starts from ``state``, or None when
    the attempt is not there (any more): then nothing is asked, and a retried task stops.
    SubmissionIdUnavailable when the backend has none to give now."""
    inversion = Inversion.objects.select_related("program").get(pk=inversion_id)
    if inversion.ended_at is not None or _program_state(inversion) != state:
        return None
    return get_backend().new_submission_id()


def preprocess(*, inversion_id: str) -> Transfer | None:
    """queued → preprocessing: copy the Level 1 data of the invertible IPs to scratch."""
    submission_id = _submission_id(inversion_id=inversion_id, state=State.QUEUED)
    if submission_id is None:
        return None
    with transaction.atomic():
        inversion = Inversion.objects.select_for_update().select_related("program").get(pk=inversion_id)
        if inversion.ended_at is not None:
            return None
        datasets = datasets_to_preprocess(program_id=inversion.program_id)
        places = collections()
        transfer = _new_transfer(
            inversion=inversion,
            step=Transfer.Step.PREPROCESS,
            submission_id=submission_id,
            label=f"Level 2 {inversion.id}: Level 1 data of {inversion.program_id}",
            source=places.level1,
            destination=places.scratch,
            items=[
                TransferItem(level1_folder(dataset), f"/{dataset.proposal_id}/{dataset.id}/")
                for dataset in datasets
            ],
        )
        # What the copy takes: a later change of these records makes the attempt stale.
        inversion.level1_snapshot = level1_snapshot(dataset_ids=[dataset.id for dataset in datasets])
        inversion.save(update_fields=["level1_snapshot"])
        try:
            record_event(
                program_id=inversion.program_id,
                to_state=State.PREPROCESSING,
                actor=WORKER,
                details={
                    "inversion": inversion.id,
                    "transfer": transfer.pk,
                    "submission_id": str(transfer.submission_id),
                    "datasets": [dataset.id for dataset in datasets],
                },
                expected_state=State.QUEUED,
            )
        except StaleStateError as error:
            log.info("not preprocessing %s: %s", inversion.program_id, error)
            transaction.set_rollback(True)
            return None
    if not datasets:
        _finish_transfer(
            transfer=transfer,
            status=TaskStatus.FAILED,
            message="The program has no invertible instrument program with listed datasets to copy.",
        )
        return transfer
    missing = datasets_without_files(datasets, collection=places.level1)
    if missing:
        _finish_transfer(
            transfer=transfer,
            status=TaskStatus.FAILED,
            message=f"The Level 1 collection {places.level1} has no files for "
            f"{'datasets' if len(missing) > 1 else 'dataset'} {', '.join(d.id for d in missing)}: "
            "retry once they are there.",
            facts={"reason": "file not found", "paths": [level1_folder(dataset) for dataset in missing]},
        )
        return transfer
    submit_transfer(transfer=transfer)
    return transfer


def level1_folder(dataset: Dataset) -> str:
    """The dataset's folder on the Level 1 collection: ``/{bucket}/{proposalId}/{datasetId}/``."""
    # Older records name no bucket: DKIST's archive has one, "data".
    return f"/{dataset.bucket or 'data'}/{dataset.proposal_id}/{dataset.id}/"


def datasets_without_files(datasets: list[Dataset], *, collection: str) -> list[Dataset]:
    """The datasets whose folder is not on the Level 1 collection (the store and the archive
    can disagree), one listing per proposal folder. A listing that fails for another reason
    (access, the network) leaves it to the transfer to tell."""
    by_folder: dict[str, list[Dataset]] = {}
    for dataset in datasets:
        by_folder.setdefault(level1_folder(dataset).removesuffix(f"{dataset.id}/"), []).append(dataset)
    missing: list[Dataset] = []
    for folder, in_folder in by_folder.items():
        try:
            present = {entry.name for entry in get_backend().list_files(collection, folder) if entry.is_dir}
        except PathNotFound:
            present = set()
        except TransferError as error:
            log.info("not checking the Level 1 folders in %s: %s", folder, error)
            continue
        missing.extend(dataset for dataset in in_folder if dataset.id not in present)
    return missing


# --- generate -------------------------------------------------------------------------------


def scratch_folder(inversion: Inversion, suffix: str = "") -> Path:
    """The worker's view of ``{scratch}/{proposalId}/{inversionDir}{suffix}/``, resolved inside
    scratch (PathRefused when a link leads elsewhere)."""
    return inside(settings.LEVEL2_SCRATCH_DIR, inversion.program.proposal_id, inversion.directory + suffix)


def _scratch_folders(inversion: Inversion) -> tuple[Path, Path]:
    """The products' folder and the quicklooks' beside it, checked with the Level 1 folders
    before generation reads or writes anything: a link there (the folders, the results brought
    in, the Level 1 files) must not point the worker at other files. PathRefused."""
    scratch = settings.LEVEL2_SCRATCH_DIR
    out_dir, quicklook_dir = scratch_folder(inversion), scratch_folder(inversion, "_quicklook")
    for folder in (out_dir, quicklook_dir):
        files_inside(scratch, folder)
    level1_on_scratch(scratch, proposal_id=inversion.program.proposal_id, dataset_ids=inversion.dataset_ids)
    return out_dir, quicklook_dir


def bring_results(*, inversion_id: str) -> Transfer | None:
    """inverted → generating: copy the team's three result files in, then generate."""
    submission_id = _submission_id(inversion_id=inversion_id, state=State.INVERTED)
    if submission_id is None:
        return None
    with transaction.atomic():
        inversion = Inversion.objects.select_for_update().select_related("program").get(pk=inversion_id)
        if inversion.ended_at is not None:
            return None
        folder = f"/{inversion.program.proposal_id}/{inversion.directory}/input/"
        transfer = _new_transfer(
            inversion=inversion,
            step=Transfer.Step.RESULTS,
            submission_id=submission_id,
            label=f"Level 2 {inversion.id}: inversion results",
            source=inversion.result_collection,
            destination=collections().scratch,
            items=[
                TransferItem(f"{inversion.result_path.rstrip('/')}/{name}", folder + name, recursive=False)
                for name in settings.LEVEL2_RESULT_FILES
            ],
        )
        try:
            record_event(
                program_id=inversion.program_id,
                to_state=State.GENERATING,
                actor=WORKER,
                details={"inversion": inversion.id, "transfer": transfer.pk},
                expected_state=State.INVERTED,
            )
        except StaleStateError as error:
            log.info("not generating %s: %s", inversion.program_id, error)
            transaction.set_rollback(True)
            return None
        Inversion.objects.filter(pk=inversion.pk).update(
            frames_done=0, frames_total=None, generation_started_at=timezone.now(), products={}
        )
    submit_transfer(transfer=transfer)
    return transfer


def generate_products(*, inversion_id: str, processes: int | None = None) -> ProgramEvent | None:
    """Write the Level 2 FITS and ASDF from the results on scratch: generating → generated."""
    # Imported here, not for a cycle: the web process imports this module (datasets_to_preprocess)
    # and would otherwise load numpy and astropy that only the worker needs.
    from inversions import products

    inversion = Inversion.objects.select_related("program").get(pk=inversion_id)
    if _program_state(inversion) != State.GENERATING or inversion.ended_at is not None:
        return None
    try:
        out_dir, quicklook_dir = _scratch_folders(inversion)
    except PathRefused as error:
        return fail_step(inversion=inversion, state=State.GENERATING, message=str(error))

    def on_progress(frames_done: int, frames_total: int) -> None:
        Inversion.objects.filter(pk=inversion.pk).update(frames_done=frames_done, frames_total=frames_total)

    try:
        result = products.generate(
            results_dir=out_dir / "input",
            l1_dir=out_dir.parent,
            out_dir=out_dir,
            inversion_id=inversion.id,
            proposal_id=inversion.program.proposal_id,
            dataset_ids=list(inversion.dataset_ids),
            processes=processes or settings.LEVEL2_GENERATION_PROCESSES,
            quicklook_dir=quicklook_dir,
            on_progress=on_progress,
        )
    except products.ProductInputError as error:
        return fail_step(inversion=inversion, state=State.GENERATING, message=str(error))
    scratch = Path(settings.LEVEL2_SCRATCH_DIR).resolve()  # as out_dir is
    summary = {
        "files": len(result.files) + 1,
        "bytes": result.bytes,
        "duration_s": round(result.duration_s, 1),
        "frames": result.frame_count,
        "frames_written": result.frames_written,
        "asdf": str(result.asdf_path.relative_to(scratch)),
        "quicklooks": [str(path.relative_to(scratch)) for path in result.quicklooks],
        "spectral_lines": list(result.spectral_lines),
        "canonical_dataset": result.canonical_dataset,
        "header_version": products.HEADER_VERSION,  # the format: products of another are written again
    }
    with transaction.atomic():
        Inversion.objects.filter(pk=inversion.pk).update(
            products={
                **summary,
                "file_list": [[file.name, file.bytes] for file in result.files]
                + [[result.asdf_path.name, result.asdf_path.stat().st_size]],
            }
        )
        try:
            return record_event(
                program_id=inversion.program_id,
                to_state=State.GENERATED,
                actor=WORKER,
                details={"inversion": inversion.id, **summary},
                expected_state=State.GENERATING,
            )
        except StaleStateError as error:
            log.info("products of %s written, but it moved on: %s", inversion.program_id, error)
            return None


# --- publish --------------------------------------------------------------------------------


def _is_product(name: str) -> bool:
    """A FITS or ASDF file directly in the products' folder."""
    return "/" not in name and not name.startswith(".") and name.endswith((".fits", ".asdf"))


def asdf_key(inversion: Inversion) -> str:
    return f"{inversion.program.proposal_id}/{inversion.directory}/INV_{inversion.id[4:]}_L2_metadata.asdf"


def publish(*, inversion_id: str) -> ProgramEvent | None:
    """publishing → published, one step at a time; each step done is kept, so a retry or a
    restarted worker goes on from the first step not done."""
    inversion = Inversion.objects.select_related("program").get(pk=inversion_id)
    if _program_state(inversion) != State.PUBLISHING or inversion.ended_at is not None:
        return None
    try:
        bucket = publication_bucket(inversion=inversion)
    except PublishRefused as error:
        return fail_step(inversion=inversion, state=State.PUBLISHING, message=str(error))
    directory = f"/{inversion.program.proposal_id}/{inversion.directory}/"

    # 1. The files, to the publish collection.
    transfers = list(inversion.transfers.filter(step=Transfer.Step.PUBLISH).order_by("id"))
    if not any(transfer.status == Transfer.Status.SUCCEEDED for transfer in transfers):
        if any(transfer.is_open for transfer in transfers):
            return None  # the poller takes it on when it is done
        # The products' own files alone: the team's input/ (and anything else on scratch)
        # never reaches the archive; the quicklooks stay beside, on scratch.
        names = [name for name, _size in inversion.products.get("file_list", []) if _is_product(name)]
        if not names:
            return fail_step(
                inversion=inversion,
                state=State.PUBLISHING,
                message="The products list no FITS or ASDF files.",
            )
        places = collections()
        transfer = _new_transfer(
            inversion=inversion,
            step=Transfer.Step.PUBLISH,
            submission_id=get_backend().new_submission_id(),
            label=f"Level 2 {inversion.id}: products to the archive",
            source=places.scratch,
            destination=places.publish,
            items=[
                TransferItem(f"{directory}{name}", f"/{bucket}{directory}{name}", recursive=False)
                for name in names
            ],
        )
        submit_transfer(transfer=transfer)
        return None

    fits_names = sorted(
        name for name, _size in inversion.products.get("file_list", []) if name.endswith(".fits")
    )
    key = asdf_key(inversion)

    # 2. The catalog messages.
    if inversion.messages_sent is None:
        if not inversion.publish_conversation_id:
            inversion.publish_conversation_id = str(uuid.uuid4())
            inversion.save(update_fields=["publish_conversation_id"])
        try:
            sent = catalog.send_catalog_messages(
                bucket=bucket,
                proposal_id=inversion.program.proposal_id,
                inversion_dir=inversion.directory,
                inversion_id=inversion.id,
                fits_names=fits_names,
                asdf_key=key,
                conversation_id=inversion.publish_conversation_id,
            )
        except catalog.CatalogError as error:
            return fail_step(inversion=inversion, state=State.PUBLISHING, message=str(error))
        inversion.messages_sent = sent.as_dict()
        inversion.save(update_fields=["messages_sent"])
        record_event(
            program_id=inversion.program_id,
            to_state=State.PUBLISHING,
            actor=WORKER,
            details={
                "inversion": inversion.id,
                "catalog_messages": inversion.messages_sent,
                "conversation_id": inversion.publish_conversation_id,
            },
            expected_state=State.PUBLISHING,
        )

    # 3. The metadata store's record.
    if inversion.store_record is None:
        ips = sorted(
            set(
                Dataset.objects.filter(pk__in=inversion.dataset_ids).values_list(
                    "instrument_program_id", flat=True
                )
            )
        )
        create_params = {
            "inversionId": inversion.id,
            "primaryProposalId": inversion.program.proposal_id,
            "instrumentProgramExecutionId": ips[0] if ips else "",
            "bucket": bucket,
            "asdfObjectKey": key,
            "datasetIds": list(inversion.dataset_ids),
            "spectralLines": list(inversion.products.get("spectral_lines", [])),
        }
        try:
            with MetadataClient() as client:
                record, created = ensure_l2_inversion_inventory(client=client, create_params=create_params)
        except MetadataStoreError as error:
            return fail_step(inversion=inversion, state=State.PUBLISHING, message=str(error))
        inversion.store_record = {"record": record, "created": created}
        inversion.save(update_fields=["store_record"])

    with transaction.atomic():
        event = record_event(
            program_id=inversion.program_id,
            to_state=State.PUBLISHED,
            actor=WORKER,
            details={
                "inversion": inversion.id,
                "asdf_key": key,
                "bucket": bucket,
                "created_in_store": inversion.store_record["created"],
            },
            expected_state=State.PUBLISHING,
        )
        Inversion.objects.filter(pk=inversion.pk).update(
            ended_at=event.created_at, end_reason=Inversion.EndReason.PUBLISHED
        )
    return event
