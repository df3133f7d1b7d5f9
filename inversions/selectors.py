"""Reads of the work for pages: an OP's work panel, the queue, the board."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import PurePosixPath
from typing import Any

from django.contrib.auth import get_user_model
from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, F, FilteredRelation, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from inversions import actions, overdue
from inversions.models import Campaign, Inversion, Transfer
from inversions.products.spec import HEADER_VERSION
from inversions.transfers import collections, get_backend
from ops import selectors as ops_selectors
from ops.models import Dataset, ObservingProgram, ProgramEvent, Scan
from ops.states import State

# States the worker moves on by itself: their pages follow it live.
MOVING_STATES = frozenset(
    {State.QUEUED, State.PREPROCESSING, State.INVERTED, State.GENERATING, State.PUBLISHING}
)


@dataclass(frozen=True)
class TransferView:
    transfer: Transfer
    url: str | None

    @property
    def percent(self) -> int | None:
        total = self.transfer.files_total
        return round(100 * self.transfer.files_done / total) if total else None

    @property
    def bytes_per_second(self) -> float | None:
        """The mean rate so far (to the last poll, or to the end)."""
        transfer = self.transfer
        until = transfer.completed_at or transfer.polled_at
        if not (transfer.submitted_at and until and transfer.bytes_done):
            return None
        seconds = (until - transfer.submitted_at).total_seconds()
        return transfer.bytes_done / seconds if seconds > 0 else None


@dataclass(frozen=True)
class GenerationView:
    frames_done: int
    frames_total: int | None
    rate_per_min: float | None
    minutes_left: float | None

    @property
    def percent(self) -> int | None:
        return round(100 * self.frames_done / self.frames_total) if self.frames_total else None


@dataclass(frozen=True)
class ProductsView:
    """Where an attempt's products lie: a folder of the scratch collection, with the ASDF."""

    collection: str
    folder: str  # absolute on the collection, ending with /
    asdf: str  # the ASDF's absolute path on the collection
    # Written before the current format (former line names, no units): Regenerate updates them.
    earlier_format: bool = False

    @classmethod
    def of(cls, inversion: Inversion) -> ProductsView | None:
        asdf = inversion.products.get("asdf") if inversion.products else None
        if not asdf:
            return None
        folder = PurePosixPath("/", asdf).parent
        return cls(
            collection=collections().scratch,
            folder=f"{folder}/",
            asdf=f"/{asdf}",
            earlier_format=inversion.products.get("header_version") != HEADER_VERSION,
        )


@dataclass(frozen=True)
class WorkPanel:
    program: ObservingProgram
    state: str
    since: datetime | None
    inversion: Inversion | None
    transfers: list[TransferView]
    actions: list[actions.Action]
    forms: dict[str, Any] = field(default_factory=dict)
    overdue_days: float | None = None
    generation: GenerationView | None = None
    moving: bool = False
    products: ProductsView | None = None
    read_only: bool = False

    # Read only where a page shows them: the status that the page polls every 2 s does not.
    @cached_property
    def stale(self) -> StaleNotice | None:
        return stale_notice(program=self.program)

    @cached_property
    def inversions(self) -> list[InversionRow]:
        """Every attempt, newest first (the program page's list)."""
        return program_inversions(program_id=self.program.pk) if self.inversion else []

    @property
    def days_in_state(self) -> float | None:
        return (timezone.now() - self.since).total_seconds() / 86400 if self.since else None


def latest_attempt(*, program_id: str) -> QuerySet[Inversion]:
    """The OP's attempts, the open one first, then the latest ended (``.first()`` for the one)."""
    return Inversion.objects.filter(program_id=program_id).order_by(
        F("ended_at").desc(nulls_first=True), "-created_at"
    )


@dataclass(frozen=True)
class StaleChange:
    """One dataset's change that made the OP stale, as the scanner's event recorded it."""

    dataset_id: str
    found_at: datetime
    # None: not known (an attempt older than snapshots is compared with its start).
    update_date_old: datetime | None
    update_date_new: datetime | None
    # (field, old, new); old or new is None where only a digest of it was kept.
    fields: list[tuple[str, Any, Any]]


@dataclass(frozen=True)
class StaleNotice:
    """ "Level 1 changed since inv.X": the changes since the OP became stale, oldest first."""

    inversion_id: str
    since: datetime
    changes: list[StaleChange]

    @property
    def dataset_ids(self) -> list[str]:
        return sorted({change.dataset_id for change in self.changes})


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _datetime(value: Any) -> datetime | None:
    try:
        return parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None


def stale_notice(*, program: ObservingProgram) -> StaleNotice | None:
    """What changed in the Level 1 data of the OP's latest attempt, if it is stale (one query)."""
    if program.stale_since is None:
        return None
    events = (
        ProgramEvent.objects.filter(
            program_id=program.pk, created_at__gte=program.stale_since, details__has_key="stale"
        )
        .order_by("id")
        .values_list("created_at", "details__stale")
    )
    inversion_id, changes = "", []
    for found_at, stale in events:
        stale = _as_dict(stale)
        inversion_id = str(stale.get("inversion", inversion_id))
        for dataset_id, change in sorted(_as_dict(stale.get("datasets")).items()):
            change = _as_dict(change)
            update_date = _as_dict(change.get("update_date"))
            changes.append(
                StaleChange(
                    dataset_id=dataset_id,
                    found_at=found_at,
                    update_date_old=_datetime(update_date.get("old")),
                    update_date_new=_datetime(update_date.get("new")),
                    fields=[
                        (name, _as_dict(values).get("old"), _as_dict(values).get("new"))
                        for name, values in sorted(_as_dict(change.get("fields")).items())
                    ],
                )
            )
    return StaleNotice(inversion_id=inversion_id, since=program.stale_since, changes=changes)


@dataclass(frozen=True)
class InversionRow:
    """One attempt of the OP's list: where its products are, and its store record."""

    inversion: Inversion
    products: ProductsView | None
    # The store's record of a published attempt: its asdfObjectKey, bucket, datasets.
    store_record: dict[str, Any]

    @property
    def archive_folder(self) -> str:
        """The products' folder on the publish collection (bucket/proposal/inv_X/), once published."""
        key = self.store_record.get("asdfObjectKey") or ""
        bucket = self.store_record.get("bucket") or ""
        return f"/{bucket}/{PurePosixPath(key).parent}/" if key and bucket else ""


def program_inversions(*, program_id: str) -> list[InversionRow]:
    """Every attempt of the OP, newest first (one query)."""
    inversions = (
        Inversion.objects.filter(program_id=program_id)
        .select_related("owner", "reported_by")
        .order_by("-created_at")
    )
    return [
        InversionRow(
            inversion=inversion,
            products=ProductsView.of(inversion),
            store_record=_as_dict(_as_dict(inversion.store_record).get("record")),
        )
        for inversion in inversions
    ]


def _generation(inversion: Inversion, now: datetime) -> GenerationView:
    rate = left = None
    if inversion.generation_started_at and inversion.frames_done:
        minutes = max((now - inversion.generation_started_at).total_seconds() / 60, 1 / 60)
        rate = inversion.frames_done / minutes
        if inversion.frames_total:
            left = (inversion.frames_total - inversion.frames_done) / rate
    return GenerationView(inversion.frames_done, inversion.frames_total, rate, left)


def work_panel(*, program: ObservingProgram, user, now: datetime | None = None) -> WorkPanel:
    """The OP's attempt (the open one, else the latest), its transfers, the user's buttons."""
    now = now or timezone.now()
    state = program.state
    inversion = latest_attempt(program_id=program.pk).select_related("owner", "reported_by").first()
    backend = get_backend()
    transfers = (
        [
            TransferView(transfer, backend.task_url(transfer.task_id) if transfer.task_id else None)
            for transfer in inversion.transfers.order_by("-id")
        ]
        if inversion
        else []
    )
    since = program.state_since
    overdue_days = None
    if since and overdue.is_overdue(state=state, since=since, now=now):
        overdue_days = overdue.expected_days(state)
    forms = {}
    allowed = actions.allowed_actions(state=state, user=user) if state else []
    for action in allowed:
        if not action.page:
            forms[action.slug] = action.form(initial={"expected_state": state}, prefix=action.slug)
    return WorkPanel(
        program=program,
        state=state,
        since=since,
        inversion=inversion,
        transfers=transfers,
        actions=allowed,
        forms=forms,
        overdue_days=overdue_days,
        generation=_generation(inversion, now) if inversion and state == State.GENERATING else None,
        moving=state in MOVING_STATES,
        products=ProductsView.of(inversion) if inversion and state != State.GENERATING else None,
        read_only=not actions.may_act(user),
    )


@dataclass(frozen=True)
class QueueRow:
    inversion: Inversion
    state: str
    since: datetime
    overdue: bool


# Rows per page of the Work queue: a campaign queues thousands, and the page refreshes itself.
QUEUE_ROWS_PER_PAGE = 50


def work_queue(*, page_number: Any = 1, now: datetime | None = None) -> Page:
    """One page of the open attempts in queue order, each with its OP's state and how long it
    has been there (``QueueRow``s)."""
    now = now or timezone.now()
    inversions = (
        Inversion.objects.filter(ended_at__isnull=True)
        .select_related("owner", "program")
        .only(
            "id",
            "program_id",
            "queue_position",
            "created_at",
            "owner__username",
            "program__state",
            "program__state_since",
        )
        .order_by("queue_position", "created_at")
    )
    page = Paginator(inversions, QUEUE_ROWS_PER_PAGE).get_page(page_number)
    page.object_list = [
        QueueRow(
            inversion=inversion,
            state=inversion.program.state,
            since=inversion.program.state_since,
            overdue=overdue.is_overdue(
                state=inversion.program.state, since=inversion.program.state_since, now=now
            ),
        )
        for inversion in page.object_list
    ]
    return page


# --- the work board ---------------------------------------------------------------------------

# Rows per section: the page costs the same at 20 OPs and at 20,000; the rest is a link away.
BOARD_ROWS = 10
BOARD_FAILED_SCANS = 5
# A failed scan older than this is history, not something to act on.
FAILED_SCANS_SHOWN_FOR = timedelta(days=7)

UP_NEXT_STATES = (State.QUEUED, State.PREPROCESSING, State.PREPROCESSED)
IN_PROGRESS_STATES = (State.WORKING,)
TO_PUBLISH_STATES = (State.INVERTED, State.GENERATING, State.GENERATED, State.PUBLISHING)
# The OP columns a row shows. Never the current event's details: a qualification report is
# kilobytes, and the page reads dozens of rows every five seconds.
_ROW_FIELDS = (
    "id",
    "stale_since",
    "proposal_id",
    "dataset_count",
    "state",
    "state_since",
    "score",
    "score_parts",
    "first_seen_at",
)


@dataclass(frozen=True)
class Progress:
    done: int
    total: int | None
    unit: str

    @property
    def percent(self) -> int | None:
        return round(100 * self.done / self.total) if self.total else None


@dataclass(frozen=True)
class BoardRow:
    program: ObservingProgram
    days_in_state: float | None
    overdue: bool
    owner: str = ""
    progress: Progress | None = None
    failed_step: str = ""
    error_message: str = ""


@dataclass(frozen=True)
class StateCount:
    state: str
    label: str
    count: int


@dataclass(frozen=True)
class BoardSection:
    rows: list[BoardRow]
    total: int
    # The section's states with their counts, each a link to the programs table.
    states: list[StateCount] = field(default_factory=list)

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


@dataclass(frozen=True)
class Board:
    counts: list[StateCount]
    candidates: BoardSection
    up_next: BoardSection
    in_progress: BoardSection
    to_publish: BoardSection
    errors: BoardSection
    overdue: BoardSection
    # Published (or under way) with Level 1 data changed since: candidates to invert again.
    stale: BoardSection
    failed_scans: list[Scan]
    failed_scans_total: int
    may_queue: bool
    # No button of the table is ever the user's (a viewer): the page says why there are none.
    read_only: bool

    @property
    def needs_attention(self) -> bool:
        return bool(self.errors.rows or self.overdue.rows or self.stale.rows or self.failed_scans)


def _with_open_inversion(programs: QuerySet[ObservingProgram]) -> QuerySet[ObservingProgram]:
    """The OPs' row columns with their open attempt's queue place, owner and frames, joined in
    the same query (at most one attempt per OP is open)."""
    open_inversion = FilteredRelation("inversions", condition=Q(inversions__ended_at__isnull=True))
    return (
        programs.only(*_ROW_FIELDS)
        .annotate(open_inversion=open_inversion)
        .annotate(
            queue_position=F("open_inversion__queue_position"),
            queued_at=F("open_inversion__created_at"),
            owner_name=F(f"open_inversion__owner__{get_user_model().USERNAME_FIELD}"),
            frames_done=F("open_inversion__frames_done"),
            frames_total=F("open_inversion__frames_total"),
        )
    )


def _row(program: ObservingProgram, *, now: datetime, **facts: Any) -> BoardRow:
    since = program.state_since
    return BoardRow(
        program=program,
        days_in_state=(now - since).total_seconds() / 86400 if since else None,
        overdue=bool(since) and overdue.is_overdue(state=program.state, since=since, now=now),
        owner=program.owner_name or "",
        **facts,
    )


def _progress(program: ObservingProgram) -> Progress | None:
    """The preprocessing transfer's files (up next), or the generation's frames, while under way."""
    if program.state == State.PREPROCESSING and getattr(program, "files_done", None) is not None:
        return Progress(program.files_done, program.files_total, "files")
    if program.state == State.GENERATING:
        return Progress(program.frames_done, program.frames_total, "frames")
    return None


def _state_counts(states: tuple[State, ...], counts: dict[str, int]) -> list[StateCount]:
    return [StateCount(state.value, state.label, counts.get(state, 0)) for state in states]


def _section(
    programs: QuerySet[ObservingProgram], *, states: tuple[State, ...], counts: dict[str, int], now: datetime
) -> BoardSection:
    """The first rows of ``programs`` (filtered to ``states`` and ordered) and their total."""
    state_counts = _state_counts(states, counts)
    rows = [
        _row(program, now=now, progress=_progress(program))
        for program in programs.filter(state__in=states)[:BOARD_ROWS]
    ]
    return BoardSection(rows=rows, total=sum(count.count for count in state_counts), states=state_counts)


def _errors(programs: QuerySet[ObservingProgram], *, counts: dict[str, int], now: datetime) -> BoardSection:
    """OPs in error, oldest first, with the step that failed and its message: those of the event
    that entered error (notes since then repeat the state; ops.history.state_before in SQL)."""
    failure = (
        ProgramEvent.objects.filter(program_id=OuterRef("pk"), to_state=State.ERROR)
        .exclude(from_state=State.ERROR)
        .order_by("-id")
    )
    errors = (
        programs.filter(state=State.ERROR)
        .annotate(
            failed_step=Subquery(failure.values("from_state")[:1]),
            error=Subquery(
                failure.annotate(message=KeyTextTransform("message", "details")).values("message")[:1]
            ),
        )
        .order_by("state_since", "id")[:BOARD_ROWS]
    )
    return BoardSection(
        rows=[
            _row(program, now=now, failed_step=program.failed_step or "", error_message=program.error or "")
            for program in errors
        ],
        total=counts.get(State.ERROR, 0),
        states=_state_counts((State.ERROR,), counts),
    )


def _overdue(programs: QuerySet[ObservingProgram], *, now: datetime) -> BoardSection:
    """Overdue OPs, longest in their state first; the window count is the total before the LIMIT."""
    rows = list(
        programs.filter(overdue.overdue_filter(now=now))
        .annotate(overdue_total=Window(Count("pk")))
        .order_by("state_since", "id")[:BOARD_ROWS]
    )
    return BoardSection(
        rows=[_row(program, now=now) for program in rows], total=rows[0].overdue_total if rows else 0
    )


def _stale(programs: QuerySet[ObservingProgram], *, now: datetime) -> BoardSection:
    """Stale OPs, longest stale first, each with the attempt its newest stale event names; the
    window count is the total before the LIMIT (one query, on the partial index op_stale_idx)."""
    newest_stale = ProgramEvent.objects.filter(program_id=OuterRef("pk"), details__has_key="stale").order_by(
        "-id"
    )
    rows = list(
        programs.filter(stale_since__isnull=False)
        .annotate(
            stale_total=Window(Count("pk")),
            stale_inversion=Subquery(
                newest_stale.annotate(
                    inversion=KeyTextTransform("inversion", KeyTransform("stale", "details"))
                ).values("inversion")[:1]
            ),
        )
        .order_by("stale_since", "id")[:BOARD_ROWS]
    )
    return BoardSection(
        rows=[_row(program, now=now) for program in rows], total=rows[0].stale_total if rows else 0
    )


def _failed_scans(*, now: datetime) -> list[Scan]:
    """Recent scans that failed since the last one that succeeded (a success means it recovered),
    newest first, each with ``failed_total``: how many there are in all."""
    last_success = Scan.objects.filter(status=Scan.Status.SUCCEEDED).order_by("-id").values("id")[:1]
    return list(
        Scan.objects.filter(
            status=Scan.Status.FAILED,
            started_at__gte=now - FAILED_SCANS_SHOWN_FOR,
            id__gt=Coalesce(Subquery(last_success), 0),
        )
        .annotate(failed_total=Window(Count("id")))
        .order_by("-id")[:BOARD_FAILED_SCANS]
    )


def board(*, now: datetime, user) -> Board:
    """The lead's work board: the counts per state, then each section's first rows, one query
    per section whatever the number of OPs."""
    counts = ops_selectors.state_counts()
    programs = _with_open_inversion(ObservingProgram.objects.all())
    newest_preprocess = Transfer.objects.filter(
        inversion__program_id=OuterRef("pk"), inversion__ended_at__isnull=True, step=Transfer.Step.PREPROCESS
    ).order_by("-id")
    up_next = programs.annotate(
        files_done=Subquery(newest_preprocess.values("files_done")[:1]),
        files_total=Subquery(newest_preprocess.values("files_total")[:1]),
    ).order_by(F("queue_position").asc(nulls_last=True), F("queued_at").asc(nulls_last=True), "id")
    failed_scans = _failed_scans(now=now)
    return Board(
        counts=_state_counts(tuple(State), counts),
        candidates=_section(
            # What a lead chooses by, beside the score: instruments, proposal, datasets, and
            # when the OP was observed (its first dataset's start).
            programs.annotate(
                instruments=ops_selectors.program_instruments(),
                observed_at=Subquery(
                    Dataset.objects.filter(program_id=OuterRef("pk"), vanished_at__isnull=True)
                    .order_by(F("start_time").asc(nulls_last=True))
                    .values("start_time")[:1]
                ),
            ).order_by(*ops_selectors.PROGRAM_SORTS["score"][1]),
            states=(State.INVERTIBLE,),
            counts=counts,
            now=now,
        ),
        up_next=_section(up_next, states=UP_NEXT_STATES, counts=counts, now=now),
        in_progress=_section(
            programs.order_by("state_since", "id"), states=IN_PROGRESS_STATES, counts=counts, now=now
        ),
        to_publish=_section(
            programs.order_by("state_since", "id"), states=TO_PUBLISH_STATES, counts=counts, now=now
        ),
        errors=_errors(programs, counts=counts, now=now),
        overdue=_overdue(programs, now=now),
        stale=_stale(programs, now=now),
        failed_scans=failed_scans,
        failed_scans_total=failed_scans[0].failed_total if failed_scans else 0,
        may_queue=actions.ACTIONS_BY_SLUG["queue"].may(user),
        read_only=not actions.may_act(user),
    )


# --- the software commit filter and the campaigns ----------------------------------------------

def programs_by_latest_commit(prefix: str) -> QuerySet:
    """The ids of the OPs whose latest reported attempt ("Report done") names a software commit
    starting with ``prefix`` (inversions.forms.commit_prefix): a query for ops' ``within`` filters.

    An OP queued again keeps the commit of its last report until the new attempt reports.
    """
    later_report = Inversion.objects.filter(
        program_id=OuterRef("program_id"), reported_at__gt=OuterRef("reported_at")
    )
    return (
        Inversion.objects.filter(reported_at__isnull=False, software_commit__startswith=prefix)
        .exclude(Exists(later_report))
        .values("program_id")
    )


@dataclass(frozen=True)
class CampaignView:
    campaign: Campaign
    items: Page  # CampaignItem, each with ``program`` and its current event
    outcome: str  # the items shown: "" (all), or one CampaignItem.Outcome

    @property
    def outcomes(self) -> list[tuple[str, str]]:
        """The item tabs: (outcome, label with its count), from the campaign's counters."""
        campaign = self.campaign
        pending = campaign.requested - campaign.done_count
        tabs = [("", f"all {campaign.requested}"), ("queued", f"queued {campaign.queued}")]
        tabs.append(("refused", f"refused {campaign.refused}"))
        return tabs + ([("pending", f"pending {pending}")] if pending else [])


def campaign_view(
    *, campaign_id: int, outcome: str = "", page_number: Any = 1, per_page: int = 100
) -> CampaignView:
    """A campaign and one page of its items (of one outcome, or all), in the campaign's order;
    Campaign.DoesNotExist if there is none."""
    campaign = Campaign.objects.select_related("created_by").get(pk=campaign_id)
    items = campaign.items.select_related("program__current_event__actor_user").order_by("position")
    if outcome:
        items = items.filter(outcome=outcome)
    return CampaignView(campaign, Paginator(items, per_page).get_page(page_number), outcome)
