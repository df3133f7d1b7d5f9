"""The cluster's JSON API (django-ninja): the programs, one program, and its events.

Routes stay thin: parse, call ops' selectors or this app's services, map exceptions to
statuses. Mounted at /api/; its schema is /api/openapi.json, its page /api/docs. Examples for
each route: docs/api.md.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, ModelSchema, NinjaAPI, Path, Query, Schema, Status
from ninja.errors import HttpError, ValidationError
from ninja.security import APIKeyHeader, SessionAuth
from pydantic import field_validator

from inversions import actions, campaigns, roles, selectors, services
from inversions.access import role_required
from inversions.forms import DoneReportForm, commit_prefix
from inversions.models import Campaign
from inversions.tokens import authenticate_token
from ops import selectors as ops_selectors
from ops.history import StaleStateError, TransitionError
from ops.metadata.records import SAFE_ID
from ops.models import Dataset, InstrumentProgram, ObservingProgram, ProgramEvent
from ops.states import RETRY_STATE_AFTER_FAILED_STEP, State

log = logging.getLogger(__name__)


def _with_role(user):
    """The user, who must have a role to use the API at all (403 otherwise, saying so)."""
    if user is not None and not roles.has_any_role(user):
        raise PermissionDenied(
            f"{user.get_username()} has no role in Level 2 yet: ask its admins for one (viewers to read)."
        )
    return user


class TokenAuth(APIKeyHeader):
    """``Authorization: Token <token>``; the request's ``auth`` is the token's user."""

    param_name = "Authorization"

    def authenticate(self, request: HttpRequest, key: str | None):
        scheme, _, raw = (key or "").partition(" ")
        token = authenticate_token(raw.strip()) if scheme == "Token" and raw.strip() else None
        return _with_role(token.user if token else None)


class RoleSessionAuth(SessionAuth):
    """A logged-in session, of a user with a role."""

    def authenticate(self, request: HttpRequest, key: str | None):
        return _with_role(super().authenticate(request, key))


token_auth = TokenAuth()

api = NinjaAPI(
    title="Level 2",
    version="1",
    description=(
        "The cluster's API. Send `Authorization: Token <token>` with every request (a token is made "
        "in admin or by `manage.py create_api_token USERNAME`). Reads also accept a logged-in session."
    ),
    urls_namespace="api",
    # Reads: a token or a logged-in session; writes say `auth=token_auth` (no cookies, no CSRF).
    auth=[token_auth, RoleSessionAuth()],
    # The schema and its page are read like any page: with a role.
    docs_decorator=role_required,
)


# --- schemas ---------------------------------------------------------------------------------


class InstrumentProgramOut(Schema):
    id: str
    instrument: str
    dataset_ids: list[str]
    invertible: bool | None
    failed_rules: list[str]


class ProgramOut(Schema):
    """One OP as `manage.py programs --json` writes it (docs/programs-export.md)."""

    program_id: str
    proposal_id: str
    experiment_id: str | None
    state: str | None
    state_since: str | None
    settles_at: str | None
    dataset_count: int
    invertible: bool | None
    qualified_at: str | None
    instrument_programs: list[InstrumentProgramOut]


class ProgramPage(Schema):
    count: int = Field(description="OPs that match the filters, on every page.")
    limit: int
    offset: int
    items: list[ProgramOut]


MAX_OFFSET = 10**9


class ProgramFilters(Schema):
    state: State | None = None
    proposal: str | None = Field(None, description="A proposal id, e.g. pid_2_10.")
    instrument: str | None = Field(None, description="OPs with an instrument program of it, e.g. VISP.")
    commit: str | None = Field(
        None,
        description="OPs whose latest reported inversion's software commit starts with this: "
        "4 to 40 hexadecimal digits, any case.",
        examples=["1a2b3c4"],
    )
    stale: bool | None = Field(
        None, description="Stale OPs (Level 1 data changed since the latest inversion), or not."
    )
    limit: int = Field(100, ge=1, le=500)
    # Bounded: PostgreSQL's OFFSET is a bigint, and no installation holds a billion OPs.
    offset: int = Field(0, ge=0, le=MAX_OFFSET)

    @field_validator("commit")
    @classmethod
    def _commit_prefix(cls, value: str | None) -> str | None:
        return commit_prefix(value) if value is not None else None


class DatasetOut(ModelSchema):
    class Meta:
        model = Dataset
        fields = [
            "id",
            "instrument_program",
            "instrument_name",
            "create_date",
            "update_date",
            "start_time",
            "end_time",
            "bounding_box",
            "stokes_parameters",
            "wavelength_min",
            "wavelength_max",
            "spectral_lines",
            "frame_count",
            "health_good",
            "gos_open",
            "ao_locked",
            "is_embargoed",
            "embargo_end_date",
            "bucket",
            "product_id",
            "vanished_at",
        ]


class EventOut(Schema):
    id: int
    program_id: str
    from_state: str
    to_state: str
    actor: str = Field(description="The user's name, or what acted (scanner, qualifier, worker).")
    actor_kind: str
    created_at: datetime
    details: dict[str, Any]

    @staticmethod
    def resolve_actor(event: ProgramEvent) -> str:
        return event.actor_label


class InversionOut(Schema):
    """One attempt at inverting the OP."""

    id: str
    owner: str
    software_commit: str
    created_at: datetime
    reported_at: datetime | None
    ended_at: datetime | None
    end_reason: str = Field(description='"published", "put_back", or "" while under way.')
    dataset_ids: list[str]
    products_folder: str | None = Field(description="The products' folder on the scratch collection.")
    archive_folder: str | None = Field(description="The products' folder on the publish collection.")
    store_record: dict[str, Any] | None = Field(description="The metadata store's record, once published.")


class ProgramDetailOut(ProgramOut):
    stale_since: datetime | None = Field(
        description="Since when the Level 1 data of the latest inversion changed (null: not stale); "
        "the events with `stale` details say which datasets and what changed."
    )
    inversions: list[InversionOut] = Field(description="Every attempt, newest first.")
    datasets: list[DatasetOut]
    events: list[EventOut] = Field(description="The full history, newest first.")


class EventIn(Schema):
    """An action on an OP: ``state`` is where it goes, ``expected_state`` where the caller saw it."""

    state: State
    expected_state: State
    note: str = Field("", max_length=4000, description="Work on this next (optional); a note.")
    reason: str = Field("", max_length=2000, description="Put back, archive; restore (optional).")
    software_commit: str = ""
    result_collection: str = ""
    result_path: str = ""
    dataset_ids: list[str] = []
    notes: str = ""
    inversion: str = Field(
        "",
        max_length=16,
        description="Report done (optional): the attempt the results are for; 409 when another "
        "attempt is under way.",
    )

    # Shown on /api/docs; the schema tests send them too.
    model_config = {
        "json_schema_extra": {
            "examples": [
                {"state": "queued", "expected_state": "invertible", "note": "Best seeing of the cycle."},
                {"state": "working", "expected_state": "working", "note": "Waiting for cluster time."},
                {"state": "invertible", "expected_state": "working", "reason": "Needs another line."},
            ]
        }
    }


class CurrentState(Schema):
    state: str
    since: datetime
    by: str


class Conflict(Schema):
    detail: str
    current: CurrentState | None


class FieldErrors(Schema):
    errors: dict[str, list[str]]


class Detail(Schema):
    detail: str


# The answers every route may give beside its own: a bad parameter or a NUL byte (field errors;
# a body that is not JSON: a detail), no or a bad token.
COMMON_ERRORS = {400: FieldErrors | Detail, 401: Detail}

# --- errors ----------------------------------------------------------------------------------


@api.exception_handler(ValidationError)
def field_errors(request: HttpRequest, error: ValidationError) -> HttpResponse:
    """Schema errors as the field errors of every 400: ``{"errors": {"field": ["message"]}}``."""
    errors: dict[str, list[str]] = {}
    for item in error.errors:
        # loc is ("query", "limit") or ("body", "body", "dataset_ids", 0); ("body", "body") for
        # a body that is not an object.
        source, *names = item["loc"]
        names = names[1:] if source == "body" else names
        errors.setdefault(str(names[0]) if names else "body", []).append(item["msg"])
    return api.create_response(request, {"errors": errors}, status=400)


@api.exception_handler(PermissionDenied)
def forbidden(request: HttpRequest, error: PermissionDenied) -> HttpResponse:
    return api.create_response(request, {"detail": str(error) or "Forbidden"}, status=403)


@api.exception_handler(SuspiciousOperation)
def bad_request(request: HttpRequest, error: SuspiciousOperation) -> HttpResponse:
    """What Django refuses while reading the request (e.g. too many query parameters): 400, as
    Django answers on pages."""
    return api.create_response(request, {"errors": {"request": [str(error)]}}, status=400)


@api.exception_handler(Exception)
def unexpected(request: HttpRequest, error: Exception) -> HttpResponse:
    user = getattr(request, "auth", None)
    log.exception("API %s %s by %s failed", request.method, request.path, user or "nobody")
    return api.create_response(request, {"detail": "Something went wrong, we logged it."}, status=500)


def _current_event(program_id: str) -> ProgramEvent | None:
    """The OP's newest event (None before the first); 404 for an unknown OP."""
    program = (
        ObservingProgram.objects.select_related("current_event__actor_user").filter(pk=program_id).first()
    )
    if program is None:
        raise HttpError(404, f"There is no observing program {program_id}.")
    return program.current_event


def _conflict(error: TransitionError, current: ProgramEvent | None) -> Status:
    """409 with the message (who acted first, when) and the state the OP is in."""
    if isinstance(error, StaleStateError):
        current = error.current
    state = (
        {"state": current.to_state, "since": current.created_at, "by": current.actor_label}
        if current
        else None
    )
    return Status(409, {"detail": str(error), "current": state})


# --- reads -----------------------------------------------------------------------------------


@api.get("/programs", response={200: ProgramPage, **COMMON_ERRORS}, summary="The programs, a page at a time")
def list_programs(request: HttpRequest, filters: Query[ProgramFilters]):
    """OPs ordered by program id, with the fields of `manage.py programs --json`."""
    programs = ObservingProgram.objects.order_by("pk")
    if filters.state:
        programs = programs.filter(state=filters.state)
    if filters.proposal:
        programs = programs.filter(proposal_id=filters.proposal)
    if filters.instrument:
        with_instrument = InstrumentProgram.objects.filter(
            program_id=OuterRef("pk"), instrument__iexact=filters.instrument
        )
        programs = programs.filter(Exists(with_instrument))
    if filters.commit:
        programs = programs.filter(pk__in=selectors.programs_by_latest_commit(filters.commit))
    if filters.stale is not None:
        programs = programs.filter(stale_since__isnull=not filters.stale)
    page_ids = list(programs.values_list("pk", flat=True)[filters.offset : filters.offset + filters.limit])
    return {
        "count": programs.count(),
        "limit": filters.limit,
        "offset": filters.offset,
        "items": list(ops_selectors.program_export(program_ids=page_ids, chunk_size=filters.limit)),
    }


@api.get(
    "/programs/{program_id}",
    response={200: ProgramDetailOut, **COMMON_ERRORS, 404: Detail},
    summary="One program",
)
def get_program(request: HttpRequest, program_id: str):
    """One OP: the fields of the list, its datasets and its full history."""
    try:
        detail = ops_selectors.program_detail(program_id=program_id, now=timezone.now())
    except ObservingProgram.DoesNotExist:
        raise HttpError(404, f"There is no observing program {program_id}.") from None
    (row,) = ops_selectors.program_export(program_ids=[program_id])
    inversions = [
        {
            **{name: getattr(row.inversion, name) for name in _INVERSION_FIELDS},
            "owner": row.inversion.owner.get_username(),
            "products_folder": row.products.folder if row.products else None,
            "archive_folder": row.archive_folder or None,
            "store_record": row.store_record or None,
        }
        for row in selectors.program_inversions(program_id=program_id)
    ]
    return {
        **row,
        "stale_since": detail.program.stale_since,
        "inversions": inversions,
        "datasets": detail.datasets,
        "events": [entry.event for entry in detail.history],
    }


_INVERSION_FIELDS = (
    "id",
    "software_commit",
    "created_at",
    "reported_at",
    "ended_at",
    "end_reason",
    "dataset_ids",
)


# --- the one write ---------------------------------------------------------------------------

# Where each action of the OP's page takes it; retry, restore and a note go where the OP's
# history says (below).
_TARGETS = {
    "queue": State.QUEUED,
    "invert-again": State.QUEUED,
    "start": State.WORKING,
    "put-back": State.INVERTIBLE,
    "report-done": State.INVERTED,
    "regenerate": State.INVERTED,
    "publish": State.PUBLISHING,
    "archive": State.ARCHIVED,
}
# (the state the caller saw, the state asked for) → the action.
_MOVES = {
    **{
        (source, target): slug
        for slug, target in _TARGETS.items()
        for source in actions.ACTIONS_BY_SLUG[slug].sources
    },
    **{(State.ERROR, state): "retry" for state in RETRY_STATE_AFTER_FAILED_STEP.values()},
    **{(State.ARCHIVED, state): "restore" for state in State if state != State.ARCHIVED},
    **{(state, state): "note" for state in State},
}


def _check_as_seen(
    *, program_id: str, current: ProgramEvent | None, expected_state: State, state: State
) -> None:
    """Refuse when the OP is no longer where the caller saw it, or when a retry or a restore
    would take it elsewhere than ``state``. The services check again under their lock."""
    if current is None or current.to_state != expected_state:
        taken = (
            f"it is {current.to_state} since {current.created_at:%Y-%m-%d %H:%M} UTC by {current.actor_label}"
            if current
            else "it has no state yet"
        )
        raise StaleStateError(f"{program_id} is no longer {expected_state}: {taken}.", current=current)
    if state == expected_state:
        return  # a note: allowed in any state
    if expected_state == State.ERROR:
        back_to = RETRY_STATE_AFTER_FAILED_STEP.get(State(current.from_state))
        if state != back_to:
            raise TransitionError(f"A failed {current.from_state} step is retried from {back_to}.")
    if expected_state == State.ARCHIVED and state != current.from_state:
        raise TransitionError(f"An archived program goes back to {current.from_state} only.")


# The fields each action requires, beyond state and expected_state.
_REQUIRED = {"put-back": "reason", "archive": "reason", "note": "note"}


def _done_report_form(program_id: str, body: EventIn) -> DoneReportForm:
    """The page's form, the one check of a report, with the OP's datasets as choices."""
    datasets = Dataset.objects.filter(program_id=program_id, vanished_at__isnull=True).order_by("id")
    return DoneReportForm(
        body.model_dump(include=set(DoneReportForm.base_fields)),
        dataset_ids=list(datasets.values_list("id", flat=True)),
    )


def _run(
    slug: str, *, program_id: str, user, body: EventIn, report: services.DoneReport | None
) -> ProgramEvent:
    """The service of the action; the event it recorded."""
    match slug:
        case "queue" | "invert-again":
            inversion = services.queue_program(
                program_id=program_id, user=user, note=body.note, expected_state=body.expected_state
            )
            events = ProgramEvent.objects.select_related("actor_user").order_by("id")
            return events.filter(program_id=program_id, details__inversion=inversion.id).first()
        case "start":
            return services.start_work(program_id=program_id, user=user)
        case "put-back":
            return services.put_back(
                program_id=program_id, user=user, reason=body.reason, expected_state=body.expected_state
            )
        case "report-done":
            return services.report_done(program_id=program_id, user=user, report=report, via_api=True)
        case "retry":
            return services.retry(program_id=program_id, user=user)
        case "regenerate":
            return services.regenerate(program_id=program_id, user=user)
        case "publish":
            return services.publish(program_id=program_id, user=user)
        case "archive":
            return services.archive(
                program_id=program_id, user=user, reason=body.reason, expected_state=body.expected_state
            )
        case "restore":
            return services.restore(program_id=program_id, user=user, reason=body.reason)
        case "note":
            return services.add_note(
                program_id=program_id, user=user, text=body.note, expected_state=body.expected_state
            )
    raise ValueError(f"no service for {slug}")


@api.post(
    "/programs/{program_id}/events",
    auth=token_auth,
    response={201: EventOut, **COMMON_ERRORS, 403: Detail, 404: Detail, 409: Conflict, 413: Detail},
    summary="Act on a program (queue, start, put back, report done, …)",
)
def post_event(request: HttpRequest, program_id: str, body: EventIn):
    """Move the OP from `expected_state` (where the caller saw it) to `state`, or add a note
    (`state` equal to `expected_state`). Answers the new event."""
    user = request.auth
    current = _current_event(program_id)
    try:
        slug = _MOVES.get((body.expected_state, body.state))
        if slug is None:
            raise TransitionError(
                f"An observing program cannot be moved from {body.expected_state} to {body.state}."
            )
        action = actions.ACTIONS_BY_SLUG[slug]
        if not action.may(user):
            raise PermissionDenied(f"{action.label} needs {action.needs}.")
        _check_as_seen(
            program_id=program_id, current=current, expected_state=body.expected_state, state=body.state
        )
        required = _REQUIRED.get(slug)
        if required and not getattr(body, required).strip():
            return Status(400, {"errors": {required: ["This field is required."]}})
        report = None
        if slug == "report-done":
            form = _done_report_form(program_id, body)
            if not form.is_valid():
                errors = form.errors.get_json_data()
                messages = {field: [e["message"] for e in items] for field, items in errors.items()}
                return Status(400, {"errors": messages})
            report = form.report()
        event = _run(slug, program_id=program_id, user=user, body=body, report=report)
    except services.ReportRefused as error:
        return Status(400, {"errors": {error.field: [str(error)]}})
    except TransitionError as error:
        return _conflict(error, current)
    return Status(201, event)


# --- reprocessing campaigns ------------------------------------------------------------------

class CampaignProgramIn(Schema):
    # An id as the scan takes them from the store (ops.metadata.records): anything else names no OP.
    program_id: str = Field(
        pattern=f"^{SAFE_ID.pattern}$", max_length=128, examples=["eid_2_10_opTest_R001.80001.13964206"]
    )
    expected_state: State = Field(
        description="The state the caller saw the OP in: published, to invert again."
    )


class CampaignIn(Schema):
    """The OPs to invert again, in the order they are to be queued."""

    programs: list[CampaignProgramIn] = Field(
        min_length=1,
        description=f"At most {campaigns.MAX_CAMPAIGN_PROGRAMS:,} (413 beyond), each once.",
    )
    description: str = Field("", max_length=300, description="Why, for the attempts' note.")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "programs": [
                        {"program_id": "eid_2_10_opTest_R001.80001.13964206", "expected_state": "published"}
                    ],
                    "description": "new stray-light correction",
                }
            ]
        }
    }


class CampaignItemOut(Schema):
    program_id: str
    expected_state: str
    outcome: str = Field(description="pending, queued or refused.")
    reason: str = Field(description="Why it was refused: who moved it and when, or what is not allowed.")
    inversion_id: str | None = Field(description="The new attempt, when queued.")


class CampaignOut(Schema):
    id: int
    status: str = Field(description="running (the worker queues them; GET it again) or done.")
    created_by: str
    created_at: datetime
    description: str
    requested: int
    queued: int
    refused: int
    finished_at: datetime | None
    items: list[CampaignItemOut]

    @staticmethod
    def resolve_created_by(campaign: Campaign) -> str:
        return campaign.created_by.get_username()

    @staticmethod
    def resolve_items(campaign: Campaign) -> list:
        return list(campaign.items.order_by("position"))


# A campaign's id is a bigint: a larger number names none (404, not a database error).
MAX_CAMPAIGN_ID = 2**63 - 1


def _campaign(campaign_id: int) -> Campaign:
    campaign = Campaign.objects.select_related("created_by").filter(pk=campaign_id).first()
    if campaign is None:
        raise HttpError(404, f"There is no campaign {campaign_id}.")
    return campaign


@api.post(
    "/campaigns",
    auth=token_auth,
    response={201: CampaignOut, 202: CampaignOut, **COMMON_ERRORS, 403: Detail, 413: Detail},
    summary="Invert again many published programs (a reprocessing campaign)",
)
def post_campaign(request: HttpRequest, body: CampaignIn):
    """Queue each OP to invert again, from the state the caller saw it in, each in a transaction
    of its own; an OP that moved meanwhile, or may not be queued, is refused with the reason.
    Publishers only. Up to 50 OPs are done before the answer (201); more are queued by the
    worker (202): `GET /api/campaigns/{id}` follows them."""
    user = request.auth
    try:
        campaign = campaigns.create_campaign(
            user=user,
            items=[(item.program_id, item.expected_state) for item in body.programs],
            description=body.description,
        )
    except campaigns.CampaignTooLarge as error:
        return Status(413, {"detail": str(error)})
    except campaigns.CampaignRefused as error:
        return Status(400, {"errors": {"programs": [str(error)]}})
    campaign = campaigns.start_campaign(campaign_id=campaign.pk, user=user)
    return Status(201 if campaign.status == Campaign.Status.DONE else 202, _campaign(campaign.pk))


@api.get(
    "/campaigns/{campaign_id}",
    response={200: CampaignOut, **COMMON_ERRORS, 404: Detail},
    summary="A campaign: its progress, or what it queued and refused",
)
def get_campaign(request: HttpRequest, campaign_id: int = Path(..., ge=1, le=MAX_CAMPAIGN_ID)):
    """A campaign's counts and each OP's outcome, in the campaign's order."""
    return _campaign(campaign_id)
