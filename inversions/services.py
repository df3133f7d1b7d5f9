"""The actions on an OP's work, one function each (keyword-only, typed).

Each checks the user's role (PermissionDenied), appends through ``ops.history.record_events``
with the state the user saw as ``expected_state`` (StaleStateError says who acted first,
TransitionError when the move is not allowed) and, after commit, starts the worker's next
step. Role checks live here, so that the pages and the API cannot differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Min

from inversions import roles
from inversions.models import Inversion
from inversions.paths import PathRefused, level1_on_scratch
from inversions.publication import check_embargo, publication_bucket
from inversions.steps import start_automatic_step
from inversions.transfers import TransferError, get_backend
from ops.history import Actor, TransitionError, lock_in_state, record_event, state_before
from ops.models import ObservingProgram, ProgramEvent
from ops.states import RETRY_STATE_AFTER_FAILED_STEP, ActorKind, State


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


def open_inversion(*, program_id: str, lock: bool = False) -> Inversion | None:
    """The OP's current attempt (not put back, not published), if any."""
    inversions = Inversion.objects.filter(program_id=program_id, ended_at__isnull=True)
    if lock:
        inversions = inversions.select_for_update()
    return inversions.first()


def _current_inversion(program_id: str) -> Inversion:
    inversion = open_inversion(program_id=program_id, lock=True)
    if inversion is None:
        raise TransitionError(f"{program_id} has no inversion under way.")
    return inversion


def _user_actor(user: AbstractBaseUser, kind: ActorKind) -> Actor:
    return Actor(kind, user)


def queue_program(
    *, program_id: str, user: AbstractBaseUser, note: str = "", expected_state: State = State.INVERTIBLE
) -> Inversion:
    """A new attempt owned by ``user``: "Work on this next" from invertible (inverters), or
    "Invert again" from published (inverters, or publishers in a campaign), whose event names
    the attempt it follows (``again_after``). The earlier attempt stays, ended as published."""
    if expected_state == State.INVERTIBLE:
        _require(roles.is_inverter(user), "Only inverters may choose what to work on next.")
        kind = ActorKind.INVERTER
    elif expected_state == State.PUBLISHED:
        _require(
            roles.is_inverter(user) or roles.is_publisher(user),
            "Only inverters and publishers may invert a program again.",
        )
        kind = ActorKind.INVERTER if roles.is_inverter(user) else ActorKind.PUBLISHER
    else:
        raise TransitionError(
            f"A program that is {expected_state} cannot be queued: only invertible programs "
            "(work on this next) and published ones (invert again)."
        )
    with transaction.atomic():
        inversion = Inversion(program_id=program_id, owner=user, note=note.strip())
        details = {"inversion": inversion.id, "owner": user.get_username()}
        if inversion.note:
            details["note"] = inversion.note
        if expected_state == State.PUBLISHED:
            # Under the OP's lock, so that the attempt named is the one the user saw published.
            lock_in_state(program_id=program_id, expected_state=expected_state)
            earlier = latest_published_inversion(program_id=program_id)
            if earlier is not None:
                details["again_after"] = earlier.id
        # The event locks the OP (if not locked already): of two clicks at once only one gets here.
        record_event(
            program_id=program_id,
            to_state=State.QUEUED,
            actor=_user_actor(user, kind),
            details=details,
            expected_state=expected_state,
        )
        last = Inversion.objects.filter(ended_at__isnull=True).order_by("-queue_position").first()
        inversion.queue_position = (last.queue_position + 1) if last else 0
        inversion.save(force_insert=True)
        start_automatic_step(state=State.QUEUED, inversion_id=inversion.id)
    return inversion


def latest_published_inversion(*, program_id: str) -> Inversion | None:
    """The OP's attempt published last, if any."""
    return (
        Inversion.objects.filter(program_id=program_id, end_reason=Inversion.EndReason.PUBLISHED)
        .order_by("-ended_at", "-created_at")
        .first()
    )


def start_work(*, program_id: str, user: AbstractBaseUser) -> ProgramEvent:
    """ "Start": preprocessed → working."""
    _require(roles.is_inverter(user), "Only inverters may start work.")
    with transaction.atomic():
        event = record_event(
            program_id=program_id,
            to_state=State.WORKING,
            actor=_user_actor(user, ActorKind.INVERTER),
            details={"inversion": _current_inversion(program_id).id},
            expected_state=State.PREPROCESSED,
        )
    return event


def put_back(*, program_id: str, user: AbstractBaseUser, reason: str, expected_state: State) -> ProgramEvent:
    """ "Put back": queued, preprocessed or working → invertible; the attempt ends."""
    _require(roles.is_inverter(user), "Only inverters may put a program back.")
    reason = reason.strip()
    if not reason:
        raise TransitionError("Say why the program is put back.")
    with transaction.atomic():
        inversion = _current_inversion(program_id)
        event = record_event(
            program_id=program_id,
            to_state=State.INVERTIBLE,
            actor=_user_actor(user, ActorKind.INVERTER),
            details={"inversion": inversion.id, "reason": reason},
            expected_state=expected_state,
        )
        inversion.ended_at = event.created_at
        inversion.end_reason = Inversion.EndReason.PUT_BACK
        inversion.save(update_fields=["ended_at", "end_reason"])
    return event


class ReportRefused(ValueError):
    """A report whose results cannot be taken: from where, whose, or they do not fit the OP.
    ``field`` is the report's field it concerns (a 400 with that field's error)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def check_result_collection(collection: str) -> None:
    """ReportRefused unless ``collection`` is one of LEVEL2_RESULT_COLLECTIONS: the service's own
    transfer client lists and copies from these alone."""
    allowed = settings.LEVEL2_RESULT_COLLECTIONS
    if collection not in allowed:
        raise ReportRefused(
            "result_collection",
            f"{collection} is not a result collection; results are taken from {', '.join(allowed)}.",
        )


def _check_results_fit(*, program_id: str, report: DoneReport) -> None:
    """The results' raster steps and slit against the OP's canonical Level 1 dataset on scratch,
    by generation's own rule (products.fit_results). Where the results cannot be read directly
    (Globus), generation applies the same rule once they are copied in."""
    from inversions import products  # astropy and friends: only when a report comes in

    backend = get_backend()
    try:
        folder = backend.local_path(report.result_collection, report.result_path)
        if folder is None:
            return
        for name in settings.LEVEL2_RESULT_FILES:  # each may be a link out of the collection
            backend.local_path(report.result_collection, f"{report.result_path.rstrip('/')}/{name}")
        proposal_id = ObservingProgram.objects.values_list("proposal_id", flat=True).get(pk=program_id)
        products.fit_results(
            folder,
            level1_on_scratch(
                settings.LEVEL2_SCRATCH_DIR, proposal_id=proposal_id, dataset_ids=report.dataset_ids
            ),
            dataset_ids=list(report.dataset_ids),
        )
    except (PathRefused, TransferError) as error:
        raise ReportRefused("result_path", str(error)) from None
    except products.ProductInputError as error:
        raise ReportRefused(
            "result_path", f"The results do not fit this program's Level 1 data: {error}"
        ) from None


def _check_folder_is_new(*, program_id: str, report: DoneReport) -> None:
    """A result folder belongs to one OP: ReportRefused, naming the OP, when another OP's report
    named it. Under a lock of the folder's name, so that two reports at once cannot both pass."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            [f"level2 result folder {report.result_collection} {report.result_path}"],
        )
    other = (
        Inversion.objects.filter(result_collection=report.result_collection, result_path=report.result_path)
        .exclude(program_id=program_id)
        .order_by("created_at")
        .first()
    )
    if other is not None:
        raise ReportRefused(
            "result_path",
            f"{report.result_path} on {report.result_collection} holds the results of {other.program_id}: "
            "a result folder belongs to one program.",
        )


@dataclass(frozen=True)
class DoneReport:
    """What the science team hands over (validated by inversions.forms.DoneReportForm)."""

    software_commit: str
    result_collection: str
    result_path: str
    dataset_ids: Sequence[str]
    notes: str = ""
    # The attempt the results are for, as the reporter saw it ("" when not said): a report of
    # an attempt that was put back, or inverted again since, must not become another's.
    inversion_id: str = ""


def report_done(
    *, program_id: str, user: AbstractBaseUser, report: DoneReport, via_api: bool = False
) -> ProgramEvent:
    """ "Report done" (the form, or the cluster's API call): working → inverted, once the
    results are from a result collection, no other OP's, and fit the OP's Level 1 data
    (ReportRefused)."""
    _require(roles.is_inverter(user), "Only inverters may report an inversion done.")
    check_result_collection(report.result_collection)
    _check_results_fit(program_id=program_id, report=report)  # reads files: before the lock
    with transaction.atomic():
        inversion = _current_inversion(program_id)
        if report.inversion_id and report.inversion_id != inversion.id:
            raise TransitionError(
                f"This report is for {report.inversion_id}, but the attempt under way on {program_id} "
                f"is {inversion.id} (queued {inversion.created_at:%Y-%m-%d %H:%M} UTC by "
                f"{inversion.owner.get_username()}): report its results for {inversion.id}."
            )
        _check_folder_is_new(program_id=program_id, report=report)
        event = record_event(
            program_id=program_id,
            to_state=State.INVERTED,
            actor=_user_actor(user, ActorKind.API if via_api else ActorKind.INVERTER),
            details={
                "inversion": inversion.id,
                "software_commit": report.software_commit,
                "result_collection": report.result_collection,
                "result_path": report.result_path,
                "dataset_ids": list(report.dataset_ids),
                **({"notes": report.notes} if report.notes else {}),
            },
            expected_state=State.WORKING,
        )
        inversion.reported_at = event.created_at
        inversion.reported_by = user
        inversion.software_commit = report.software_commit
        inversion.result_collection = report.result_collection
        inversion.result_path = report.result_path
        inversion.dataset_ids = list(report.dataset_ids)
        inversion.notes = report.notes
        inversion.save()
        start_automatic_step(state=State.INVERTED, inversion_id=inversion.id)
    return event


def retry(*, program_id: str, user: AbstractBaseUser) -> ProgramEvent:
    """ "Retry": error → the state before the failed step, which starts that step again. A
    failed publication is retried by a publisher and resumes publishing at once."""
    with transaction.atomic():
        program = ObservingProgram.objects.select_related("current_event").get(pk=program_id)
        current = program.current_event
        if current is None or current.to_state != State.ERROR:
            raise TransitionError(f"{program_id} is not in error: there is nothing to retry.")
        failed_step = State(state_before(current))
        back_to = RETRY_STATE_AFTER_FAILED_STEP[failed_step]
        if failed_step == State.PUBLISHING:
            _require(roles.is_publisher(user), "Only publishers may retry a publication.")
            kind = ActorKind.PUBLISHER
        else:
            _require(roles.is_inverter(user), "Only inverters may retry this step.")
            kind = ActorKind.INVERTER
        inversion = _current_inversion(program_id)
        event = record_event(
            program_id=program_id,
            to_state=back_to,
            actor=_user_actor(user, kind),
            details={"inversion": inversion.id, "retry": failed_step.value},
            expected_state=State.ERROR,
        )
        if failed_step == State.PUBLISHING:
            event = record_event(
                program_id=program_id,
                to_state=State.PUBLISHING,
                actor=_user_actor(user, kind),
                details={"inversion": inversion.id, "retry": failed_step.value},
                expected_state=State.GENERATED,
            )
            back_to = State.PUBLISHING
        start_automatic_step(state=back_to, inversion_id=inversion.id)
    return event


def regenerate(*, program_id: str, user: AbstractBaseUser) -> ProgramEvent:
    """ "Regenerate": generated → inverted, which generates the products again."""
    _require(
        roles.is_inverter(user) or roles.is_publisher(user), "Only inverters and publishers may regenerate."
    )
    kind = ActorKind.INVERTER if roles.is_inverter(user) else ActorKind.PUBLISHER
    with transaction.atomic():
        inversion = _current_inversion(program_id)
        event = record_event(
            program_id=program_id,
            to_state=State.INVERTED,
            actor=_user_actor(user, kind),
            details={"inversion": inversion.id, "regenerate": True},
            expected_state=State.GENERATED,
        )
        start_automatic_step(state=State.INVERTED, inversion_id=inversion.id)
    return event


def publish(*, program_id: str, user: AbstractBaseUser) -> ProgramEvent:
    """ "Publish": generated → publishing; the worker transfers, announces and records."""
    _require(roles.is_publisher(user), "Only publishers may publish.")
    with transaction.atomic():
        inversion = _current_inversion(program_id)
        check_embargo(inversion=inversion)
        bucket = publication_bucket(inversion=inversion)
        event = record_event(
            program_id=program_id,
            to_state=State.PUBLISHING,
            actor=_user_actor(user, ActorKind.PUBLISHER),
            details={"inversion": inversion.id, "bucket": bucket},
            expected_state=State.GENERATED,
        )
        start_automatic_step(state=State.PUBLISHING, inversion_id=inversion.id)
    return event


def archive(*, program_id: str, user: AbstractBaseUser, reason: str, expected_state: State) -> ProgramEvent:
    """ "Archive": the state the user saw → archived (staff)."""
    _require(roles.is_staff(user), "Only staff may archive a program.")
    reason = reason.strip()
    if not reason:
        raise TransitionError("Say why the program is archived.")
    return record_event(
        program_id=program_id,
        to_state=State.ARCHIVED,
        actor=_user_actor(user, ActorKind.STAFF),
        details={"reason": reason},
        expected_state=expected_state,
    )


def restore(*, program_id: str, user: AbstractBaseUser, reason: str = "") -> ProgramEvent:
    """ "Restore": archived → the state it was archived from (staff)."""
    _require(roles.is_staff(user), "Only staff may restore a program.")
    with transaction.atomic():
        program = ObservingProgram.objects.select_related("current_event").get(pk=program_id)
        current = program.current_event
        if current is None or current.to_state != State.ARCHIVED:
            raise TransitionError(f"{program_id} is not archived.")
        details = {"reason": reason.strip()} if reason.strip() else {}
        return record_event(
            program_id=program_id,
            to_state=State(state_before(current)),
            actor=_user_actor(user, ActorKind.STAFF),
            details=details,
            expected_state=State.ARCHIVED,
        )


def add_note(*, program_id: str, user: AbstractBaseUser, text: str, expected_state: State) -> ProgramEvent:
    """ "Add note": an information event in the state the user saw, whichever it is (inverters
    and staff). Refused when the OP moved meanwhile: the note may be about what it was."""
    _require(roles.is_inverter(user) or roles.is_staff(user), "Only inverters and staff may add notes.")
    text = text.strip()
    if not text:
        raise TransitionError("A note needs some text.")
    kind = ActorKind.INVERTER if roles.is_inverter(user) else ActorKind.STAFF
    return record_event(
        program_id=program_id,
        to_state=expected_state,
        actor=_user_actor(user, kind),
        details={"note": text},
        expected_state=expected_state,
    )


# The states in which an attempt waits in the queue, and so may be moved to its top.
QUEUE_STATES = frozenset({State.QUEUED, State.PREPROCESSING, State.PREPROCESSED})


def move_to_top(*, program_id: str, user: AbstractBaseUser, expected_state: State) -> Inversion:
    """ "Move to top": the OP's attempt goes first in the queue, if the OP is still in the state
    the user saw (checked under the OP's lock)."""
    _require(roles.is_inverter(user), "Only inverters may reorder the queue.")
    if expected_state not in QUEUE_STATES:
        raise TransitionError(f"A program that is {expected_state} is not in the queue.")
    with transaction.atomic():
        lock_in_state(program_id=program_id, expected_state=expected_state)
        inversion = _current_inversion(program_id)
        first = Inversion.objects.filter(ended_at__isnull=True).aggregate(first=Min("queue_position"))[
            "first"
        ]
        if first is not None and inversion.queue_position > first:
            inversion.queue_position = first - 1
            inversion.save(update_fields=["queue_position"])
    return inversion
