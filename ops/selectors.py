"""Reads that pages and exports make."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, Exists, F, JSONField, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from ops import json_text
from ops.models import (
    Dataset,
    Experiment,
    InstrumentProgram,
    ObservingProgram,
    ProgramEvent,
    Proposal,
    Scan,
    ScanError,
)
from ops.plots import BoxPlot, box_plot
from ops.qualify import INSTRUMENT, Thresholds, rule_order
from ops.states import State


def programs_with_state() -> QuerySet[ObservingProgram]:
    """OPs with their current event in the same query (one query for any number of OPs)."""
    return ObservingProgram.objects.select_related("current_event", "proposal", "experiment")


# The programs table's orders, by the ``sort`` URL parameter ("-" reverses an order). Each ends
# in a unique column so that pages never overlap; OPs without a state or score go last either way.
PROGRAM_SORTS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "newest": ("newest first", ("-first_seen_at", "id")),
    "state_age": ("longest in its state", (F("state_since").asc(nulls_last=True), "id")),
    "-state_age": ("newest in its state", (F("state_since").desc(nulls_last=True), "id")),
    "datasets": ("most datasets", ("-dataset_count", "-first_seen_at", "id")),
    "-datasets": ("fewest datasets", ("dataset_count", "-first_seen_at", "id")),
    # The board's order (op_state_score_idx): ties go to the OP seen first.
    "score": ("best score", (F("score").desc(nulls_last=True), "first_seen_at", "id")),
}
DEFAULT_PROGRAM_SORT = "newest"


def _filter_programs(
    programs: QuerySet[ObservingProgram],
    *,
    instrument: str = "",
    proposal: str = "",
    search: str = "",
    stale: bool | None = None,
    within: QuerySet | None = None,
) -> QuerySet[ObservingProgram]:
    """``within``: a query of OP ids that keeps only those, for a filter of another app's
    facts (the inversions app's software commit): ops does not know them."""
    if within is not None:
        programs = programs.filter(pk__in=within)
    if stale is not None:
        programs = programs.filter(stale_since__isnull=not stale)
    if instrument:
        programs = programs.filter(
            Exists(InstrumentProgram.objects.filter(program_id=OuterRef("pk"), instrument=instrument))
        )
    if proposal:
        programs = programs.filter(proposal_id=proposal)
    if search:
        # Proposal and experiment ids are matched in their own (small) tables, so that each OP
        # row costs one pattern match and two hash look-ups rather than three pattern matches.
        programs = programs.filter(
            Q(id__icontains=search)
            | Q(proposal__in=Proposal.objects.filter(id__icontains=search))
            | Q(experiment__in=Experiment.objects.filter(id__icontains=search))
        )
    return programs


def program_ids(
    *,
    state: str = "",
    instrument: str = "",
    proposal: str = "",
    search: str = "",
    stale: bool | None = None,
    within: QuerySet | None = None,
    sort: str = DEFAULT_PROGRAM_SORT,
) -> QuerySet:
    """The ids of the OPs that the filters keep, in the order ``sort`` (a PROGRAM_SORTS key)."""
    ids = _filter_programs(
        ObservingProgram.objects.all(),
        instrument=instrument,
        proposal=proposal,
        search=search,
        stale=stale,
        within=within,
    ).order_by(*PROGRAM_SORTS[sort][1])
    if state:
        ids = ids.filter(state=state)
    return ids.values_list("pk", flat=True)


def program_page(
    *,
    state: str = "",
    instrument: str = "",
    proposal: str = "",
    search: str = "",
    stale: bool | None = None,
    within: QuerySet | None = None,
    sort: str = DEFAULT_PROGRAM_SORT,
    page_number: Any = 1,
    per_page: int = 50,
    count: int | None = None,
) -> Page:
    """One page of the programs list in the order ``sort`` (a PROGRAM_SORTS key), with each OP's
    state, current event and ``instruments`` (sorted names). ``count``, the number of OPs the
    filters keep, spares the COUNT query when the caller has it (the state tabs count them).

    The page's ids come from a query of ids and sort keys only (an index for the default
    order and for score or state age within a state); only those OPs are joined to their
    events, proposals, experiments and instruments, so a page deep in 20,000 OPs costs about
    what the first one does.
    """
    ids = program_ids(
        state=state,
        instrument=instrument,
        proposal=proposal,
        search=search,
        stale=stale,
        within=within,
        sort=sort,
    )
    paginator = Paginator(ids, per_page)
    if count is not None:
        paginator.count = count  # a cached_property: once set, it is not queried
    page = paginator.get_page(page_number)
    programs = programs_with_state().annotate(instruments=program_instruments())
    programs = programs.in_bulk(list(page.object_list))
    page.object_list = [programs[pk] for pk in page.object_list]
    return page


def program_instruments() -> ArraySubquery:
    """An OP's instruments, their names sorted, for ``.annotate(instruments=…)``."""
    return ArraySubquery(
        InstrumentProgram.objects.filter(program_id=OuterRef("pk"))
        .order_by("instrument")
        .values("instrument")
        .distinct()
    )


def state_counts(
    *,
    instrument: str = "",
    proposal: str = "",
    search: str = "",
    stale: bool | None = None,
    within: QuerySet | None = None,
) -> dict[str, int]:
    """How many OPs (of those the other filters keep) are in each state, in one grouped query."""
    programs = _filter_programs(
        ObservingProgram.objects.all(),
        instrument=instrument,
        proposal=proposal,
        search=search,
        stale=stale,
        within=within,
    )
    rows = programs.values("state").annotate(n=Count("pk")).order_by()
    return {row["state"]: row["n"] for row in rows}


# A loose index scan (ip_instrument_idx): one index probe per instrument, where DISTINCT would
# read every IP.
_INSTRUMENT_NAMES = """
    WITH RECURSIVE names (instrument) AS (
        (SELECT instrument FROM ops_instrumentprogram ORDER BY instrument LIMIT 1)
        UNION ALL
        SELECT (SELECT ip.instrument FROM ops_instrumentprogram AS ip
                WHERE ip.instrument > names.instrument ORDER BY ip.instrument LIMIT 1)
        FROM names WHERE names.instrument IS NOT NULL
    )
    SELECT instrument FROM names WHERE instrument IS NOT NULL
"""


def instrument_names() -> list[str]:
    """Every instrument that some IP has, sorted (a handful of names), in one cheap query."""
    with connection.cursor() as cursor:
        cursor.execute(_INSTRUMENT_NAMES)
        return [name for (name,) in cursor.fetchall()]


# --- qualification reports (written by ops.qualification) -------------------------------------


def latest_reports(*, program_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """The report of each OP's newest qualification event (verdict or information), one query.

    Each OP's events are read newest first (its index) down to the first with a report, so
    that only that one's details are read whole: they are kilobytes, stored out of line, and
    reading those of all its events cost a re-scan three times as much. A plain cursor reads
    the reports as text, decoded by msgspec: json.loads of a re-scan's few hundred reports
    cost the qualification more than its rules.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT program.id, newest.report
            FROM unnest(%s::text[]) AS program (id)
            CROSS JOIN LATERAL (
                SELECT details -> 'report' AS report
                FROM {ProgramEvent._meta.db_table}
                WHERE program_id = program.id AND details ? 'report'
                ORDER BY id DESC
                LIMIT 1
            ) AS newest
            """,
            [list(program_ids)],
        )
        return {program_id: json_text.loads(text) for program_id, text in cursor.fetchall()}


def programs_due_for_qualification(*, now: datetime, states: Collection[str]) -> Iterator[str]:
    """Ids of OPs in ``states`` that are settled and have no report from after their settle date."""
    settle = timedelta(days=settings.LEVEL2_SETTLE_DAYS)
    qualified_since_settling = ProgramEvent.objects.filter(
        program_id=OuterRef("pk"),
        details__has_key="report",
        created_at__gte=OuterRef("newest_dataset_created_at") + settle,
    )
    return (
        ObservingProgram.objects.filter(state__in=list(states), newest_dataset_created_at__lte=now - settle)
        .exclude(Exists(qualified_since_settling))
        .order_by("pk")
        .values_list("pk", flat=True)
        .iterator(chunk_size=5000)
    )


# What the export and the list need of a report: each IP's verdict, not its rule details.
_REPORT_VERDICTS = """
    SELECT jsonb_build_object(
        'invertible', "ops_programevent"."details" -> 'report' -> 'invertible',
        'instrument_programs', coalesce(jsonb_object_agg(ip ->> 'id', jsonb_build_object(
            'invertible', ip -> 'invertible', 'failed_rules', ip -> 'failed_rules'
        )) FILTER (WHERE ip IS NOT NULL), '{}'::jsonb)
    )
    FROM jsonb_array_elements("ops_programevent"."details" -> 'report' -> 'instrument_programs') AS ip
"""


def latest_verdicts(*, program_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """Per OP, from its newest report: ``{"invertible", "qualified_at", "instrument_programs":
    {ip_id: {"invertible", "failed_rules"}}}``. The rule details stay in the database."""
    rows = (
        ProgramEvent.objects.filter(program_id__in=list(program_ids), details__has_key="report")
        .order_by("program_id", "-id")
        .distinct("program_id")
        .annotate(verdicts=RawSQL(f"({_REPORT_VERDICTS})", [], output_field=JSONField()))
        .values_list("program_id", "created_at", "verdicts")
    )
    return {program_id: {**verdicts, "qualified_at": created_at} for program_id, created_at, verdicts in rows}


def program_export(
    *, state: str | None = None, program_ids: Collection[str] | None = None, chunk_size: int = 2000
) -> Iterator[dict[str, Any]]:
    """Every OP (or those in ``state``, or of ``program_ids``) as the export's JSON object,
    ordered by program id.

    Read in chunks of ``chunk_size`` OPs (four queries each), so memory stays bounded. The
    format is documented in docs/programs-export.md.
    """
    programs = programs_with_state().order_by("pk")
    if state:
        programs = programs.filter(state=state)
    if program_ids is not None:
        programs = programs.filter(pk__in=list(program_ids))
    after = None
    while True:
        chunk = list((programs.filter(pk__gt=after) if after is not None else programs)[:chunk_size])
        if not chunk:
            return
        ids = [program.pk for program in chunk]
        instrument_programs: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for ip_id, program_id, instrument in (
            InstrumentProgram.objects.filter(program_id__in=ids)
            .order_by("id")
            .values_list("id", "program_id", "instrument")
        ):
            instrument_programs[program_id].append((ip_id, instrument))
        dataset_ids: dict[str, list[str]] = defaultdict(list)
        for ip_id, dataset_id in (
            Dataset.objects.filter(program_id__in=ids, vanished_at__isnull=True)
            .order_by("id")
            .values_list("instrument_program_id", "id")
        ):
            dataset_ids[ip_id].append(dataset_id)
        verdicts = latest_verdicts(program_ids=ids)
        for program in chunk:
            verdict = verdicts.get(program.pk, {})
            ip_verdicts = verdict.get("instrument_programs", {})
            settles_at = program.settles_at()
            qualified_at = verdict.get("qualified_at")
            yield {
                "program_id": program.pk,
                "proposal_id": program.proposal_id,
                "experiment_id": program.experiment_id,
                "state": program.current_event.to_state if program.current_event_id else None,
                "state_since": program.state_since.isoformat() if program.state_since else None,
                "settles_at": settles_at.isoformat() if settles_at else None,
                "dataset_count": sum(len(dataset_ids[ip_id]) for ip_id, _ in instrument_programs[program.pk]),
                "invertible": verdict.get("invertible"),
                "qualified_at": qualified_at.isoformat() if qualified_at else None,
                "instrument_programs": [
                    {
                        "id": ip_id,
                        "instrument": instrument,
                        "dataset_ids": dataset_ids[ip_id],
                        "invertible": ip_verdicts.get(ip_id, {}).get("invertible"),
                        "failed_rules": ip_verdicts.get(ip_id, {}).get("failed_rules", []),
                    }
                    for ip_id, instrument in instrument_programs[program.pk]
                ],
            }
        after = chunk[-1].pk


# --- one program's page ---------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    """One event of an OP's history, with its details summarised for people."""

    event: ProgramEvent
    verdict: str | None
    previous_verdict: str | None
    lines: list[str]


@dataclass(frozen=True)
class ProgramDetail:
    program: ObservingProgram
    settles_at: datetime | None
    # Newest createDate + settle days still ahead: data are arriving, the verdict waits.
    settling: bool
    datasets: list[Dataset]
    history: list[HistoryEntry]
    report: dict[str, Any] | None
    report_event: ProgramEvent | None
    # The event that entered the current state: a later information event (a note, the scan
    # marking the OP stale) is not who put the OP in its state, nor when.
    state_entered: ProgramEvent | None

    # Derived from the report and the datasets, built when a page shows them (the API and the
    # work panel's polling do not).
    @functools.cached_property
    def matrix(self) -> RuleMatrix:
        return rule_matrix(report=self.report, datasets=self.datasets, thresholds=Thresholds.from_settings())

    @functools.cached_property
    def r0_plot(self) -> BoxPlot:
        return box_plot(
            title="Fried parameter r0",
            unit="cm",
            series=[(dataset.id, dataset.fried_parameter) for dataset in self.datasets],
            factor=100,  # the store gives metres; seeing reads in centimetres
        )

    @functools.cached_property
    def light_plot(self) -> BoxPlot:
        return box_plot(
            title="Light level",
            unit="LIGHTLVL, as the store gives it",
            series=[(dataset.id, dataset.light_level) for dataset in self.datasets],
        )


def _verdict_label(invertible: bool | None) -> str | None:
    return None if invertible is None else ("invertible" if invertible else "not invertible")


_FRACTION_RULES = {"health", "gos", "ao"}


def rule_value_text(name: str, value: Any) -> str:
    """A rule's measured value or threshold as the page shows it ("75 %", "944.6″")."""
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "none"
    if name in _FRACTION_RULES and isinstance(value, int | float):
        return f"{100 * value:.1f}".removesuffix(".0") + " %"
    if name == "on_disk" and isinstance(value, int | float):
        return f"{value:.1f}″"
    return str(value)


def _detail_lines(details: dict[str, Any]) -> list[str]:
    """A report as its summary and each IP's failed rules; other details as "key: value"."""
    lines = []
    report = details.get("report")
    if report is not None:
        lines.append(details.get("summary", ""))
        for ip in report.get("instrument_programs", []):
            outcome = f"fails {', '.join(ip['failed_rules'])}" if ip["failed_rules"] else "passes every rule"
            lines.append(f"{ip['id']} ({ip['instrument']}): {outcome}")
    for key, value in details.items():
        if key in {"report", "summary", "previous_invertible"}:
            continue
        if isinstance(value, list):
            value = ", ".join(str(item) for item in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items() if not isinstance(v, dict | list))
        lines.append(f"{key.replace('_', ' ')}: {value}")
    return [line for line in lines if line]


def _report_for_page(report: dict[str, Any]) -> dict[str, Any]:
    """The stored report with each rule's values as text (the stored one is left as it is)."""
    return {
        **report,
        "instrument_programs": [
            {
                **ip,
                "rules": [
                    {
                        **rule,
                        "measured_text": rule_value_text(rule["name"], rule["measured"]),
                        "threshold_text": rule_value_text(rule["name"], rule["threshold"]),
                    }
                    for rule in ip["rules"]
                ],
            }
            for ip in report.get("instrument_programs", [])
        ],
    }


@dataclass(frozen=True)
class MatrixColumn:
    name: str
    label: str


@dataclass(frozen=True)
class MatrixCell:
    """One rule for one dataset (or one IP): its mark, a short value, measured vs threshold."""

    passed: bool | None  # None: the latest report has no result for it
    shown: str
    tip: str


@dataclass(frozen=True)
class MatrixDatasetRow:
    dataset: Dataset
    cells: list[MatrixCell]  # one per per-dataset column
    # One per IP-level column: whether this dataset is where the IP's line was seen.
    shows_line: list[bool]


@dataclass(frozen=True)
class MatrixGroup:
    """An IP's header row (its verdict and IP-level rules) and its datasets' rows."""

    id: str
    instrument: str
    supported: bool
    invertible: bool | None  # None: not in the latest report
    failed_rules: list[str]
    instrument_message: str
    line_cells: list[MatrixCell]  # one per IP-level column
    optional_lines: list[dict[str, Any]]
    rows: list[MatrixDatasetRow]


@dataclass(frozen=True)
class RuleMatrix:
    dataset_columns: list[MatrixColumn]
    ip_columns: list[MatrixColumn]
    groups: list[MatrixGroup]

    @property
    def rule_column_count(self) -> int:
        return len(self.dataset_columns) + len(self.ip_columns)


_RULE_LABELS = {"on_disk": "On disk", "stokes": "Stokes", "health": "Health", "gos": "GOS", "ao": "AO"}
# What the on-disk rule measures and compares against, in the hover text.
_VALUE_NAMES = {"on_disk": ("farthest corner", "solar radius")}
_NOT_QUALIFIED = "not in the latest qualification report"


def _rule_cell(rule: dict[str, Any], label: str) -> MatrixCell:
    name, measured, threshold = rule["name"], rule["measured"], rule["threshold"]
    outcome = "passes" if rule["passed"] else "fails"
    if measured is None:
        tip = f"{label} {outcome}: {rule['message']}"
    else:
        measured_name, threshold_name = _VALUE_NAMES.get(name, ("measured", "threshold"))
        tip = (
            f"{label} {outcome}: {measured_name} {rule['measured_text']},"
            f" {threshold_name} {rule['threshold_text']}"
        )
    if name == "on_disk" and isinstance(measured, int | float) and isinstance(threshold, int | float):
        shown = f"{measured:.0f} / {threshold:.0f}″"
    elif rule["dataset_id"] is None:
        shown = ""  # IP-level rules (lines): the mark says it, the hover says which dataset
    else:
        shown = rule["measured_text"] if measured is not None else "—"
    return MatrixCell(rule["passed"], shown, tip)


def _unqualified_cell(name: str, dataset: Dataset | None) -> MatrixCell:
    """A cell without a verdict; the dataset's own counts still show what it holds."""
    shown = ""
    if dataset is not None:
        if name == "stokes":
            shown = dataset.stokes_parameters or "—"
        elif name in _FRACTION_RULES and dataset.frame_count:
            counts = {"health": dataset.health_good, "gos": dataset.gos_open, "ao": dataset.ao_locked}
            shown = rule_value_text(name, counts[name] / dataset.frame_count)
        else:
            shown = "—"
    return MatrixCell(None, shown, _NOT_QUALIFIED)


def rule_matrix(
    *, report: dict[str, Any] | None, datasets: Sequence[Dataset], thresholds: Thresholds
) -> RuleMatrix:
    """The page's report (``_report_for_page``) as rows of datasets grouped by IP, one column
    per rule. Rows come from the datasets as they are now, so one that arrived after the
    report shows without marks; an IP's rules without a dataset (the lines) go on its row."""
    report_ips = {ip["id"]: ip for ip in (report or {}).get("instrument_programs", [])}
    line_labels = {line.name: f"{line.ion} {line.wavelength_nm:g}" for line in thresholds.lines}
    report_rules = [rule for ip in report_ips.values() for rule in ip["rules"]]
    # A report written under other settings may name rules the current ones do not.
    names = [
        name
        for name in dict.fromkeys([*rule_order(thresholds), *(rule["name"] for rule in report_rules)])
        if name != INSTRUMENT
    ]
    per_dataset = set(_RULE_LABELS) | {rule["name"] for rule in report_rules if rule["dataset_id"]}
    dataset_columns = [
        MatrixColumn(name, _RULE_LABELS.get(name, name)) for name in names if name in per_dataset
    ]
    ip_columns = [
        MatrixColumn(name, line_labels.get(name, name)) for name in names if name not in per_dataset
    ]

    by_ip: dict[str, list[Dataset]] = defaultdict(list)
    for dataset in datasets:
        by_ip[dataset.instrument_program_id].append(dataset)
    groups = []
    for ip_id in sorted(set(by_ip) | set(report_ips)):
        ip = report_ips.get(ip_id)
        ip_datasets = by_ip.get(ip_id, [])
        instrument = ip["instrument"] if ip else ip_datasets[0].instrument_name
        rules = {(rule["dataset_id"], rule["name"]): rule for rule in ip["rules"]} if ip else {}
        instrument_rule = rules.get((None, INSTRUMENT))
        seen_in = {line["name"]: set(line["dataset_ids"]) for line in ip["lines"]} if ip else {}
        rows = [
            MatrixDatasetRow(
                dataset=dataset,
                cells=[
                    _rule_cell(rule, column.label)
                    if (rule := rules.get((dataset.id, column.name)))
                    else _unqualified_cell(column.name, dataset)
                    for column in dataset_columns
                ],
                shows_line=[dataset.id in seen_in.get(column.name, ()) for column in ip_columns],
            )
            for dataset in ip_datasets
        ]
        groups.append(
            MatrixGroup(
                id=ip_id,
                instrument=instrument,
                supported=instrument_rule["passed"]
                if instrument_rule
                else instrument.upper() in thresholds.invertible_instruments,
                invertible=ip["invertible"] if ip else None,
                failed_rules=ip["failed_rules"] if ip else [],
                instrument_message=instrument_rule["message"] if instrument_rule else "",
                line_cells=[
                    _rule_cell(rule, column.label)
                    if (rule := rules.get((None, column.name)))
                    else _unqualified_cell(column.name, None)
                    for column in ip_columns
                ],
                optional_lines=[line for line in ip["lines"] if not line["required"]] if ip else [],
                rows=rows,
            )
        )
    return RuleMatrix(dataset_columns, ip_columns, groups)


def program_detail(*, program_id: str, now: datetime) -> ProgramDetail:
    """Everything the program page shows, in three queries; ObservingProgram.DoesNotExist if none."""
    program = programs_with_state().select_related("current_event__actor_user").get(pk=program_id)
    events = list(program.events.select_related("actor_user").order_by("-id"))
    report_event = next((event for event in events if "report" in event.details), None)
    history = [
        HistoryEntry(
            event=event,
            verdict=_verdict_label(event.details["report"].get("invertible"))
            if "report" in event.details
            else None,
            previous_verdict=_verdict_label(event.details.get("previous_invertible")),
            lines=_detail_lines(event.details),
        )
        for event in events
    ]
    settles_at = program.settles_at()
    return ProgramDetail(
        program=program,
        settles_at=settles_at,
        settling=settles_at is not None and settles_at > now,
        datasets=list(program.datasets.defer("raw").order_by("instrument_program_id", "id")),
        history=history,
        report=_report_for_page(report_event.details["report"]) if report_event else None,
        report_event=report_event,
        state_entered=next((event for event in events if not event.is_information), None),
    )


# --- scans -----------------------------------------------------------------------------------


# pg_try_advisory_lock key that ops.scan holds while a scan runs ("L2SC"); below 2**31, so
# pg_locks shows it as classid 0, objid SCAN_LOCK_KEY.
SCAN_LOCK_KEY = 0x4C325343


def scan_is_running() -> bool:
    """Whether a scan holds the scan lock now, whatever the scan rows say."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT EXISTS (
                SELECT 1 FROM pg_locks
                WHERE locktype = 'advisory' AND granted AND classid = 0 AND objid = %s AND objsubid = 1
                  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            )
            """,
            [SCAN_LOCK_KEY],
        )
        return cursor.fetchone()[0]


def scan_list() -> QuerySet[Scan]:
    return Scan.objects.select_related("triggered_by").order_by("-id")


def scan_detail(*, scan_id: int) -> Scan:
    return Scan.objects.select_related("triggered_by").get(pk=scan_id)


def scan_errors(*, scan: Scan) -> QuerySet[ScanError]:
    return scan.errors.order_by("id")


# --- proposals -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProposalSummary:
    """A proposal with what its OPs add up to."""

    proposal: Proposal
    experiments: list[Experiment]
    # (state, label, OPs) in the order of the states, for the states that some OP is in.
    state_counts: list[tuple[str, str, int]]
    program_count: int
    instruments: list[str]


def proposal_summaries(proposals: Sequence[Proposal]) -> list[ProposalSummary]:
    """Each proposal with its experiments, its OPs per state and its instruments, in three
    queries whatever the number of proposals."""
    ids = [proposal.pk for proposal in proposals]
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    experiment_ids: dict[str, set[str]] = defaultdict(set)
    for proposal_id, experiment_id, state, count in (
        ObservingProgram.objects.filter(proposal_id__in=ids)
        .values_list("proposal_id", "experiment_id", "state")
        .annotate(count=Count("pk"))
        .order_by()
    ):
        counts[proposal_id][state] += count
        if experiment_id:
            experiment_ids[proposal_id].add(experiment_id)
    # By id, not joined to the OPs: DISTINCT over thousands of OP rows with each description
    # costs more than this second look-up.
    experiments = Experiment.objects.in_bulk(set().union(*experiment_ids.values()))
    instruments: dict[str, list[str]] = defaultdict(list)
    for proposal_id, instrument in (
        InstrumentProgram.objects.filter(program__proposal_id__in=ids)
        .values_list("program__proposal_id", "instrument")
        .order_by("program__proposal_id", "instrument")
        .distinct()
    ):
        instruments[proposal_id].append(instrument)
    return [
        ProposalSummary(
            proposal=proposal,
            experiments=sorted(
                (experiments[experiment_id] for experiment_id in experiment_ids[proposal.pk]),
                key=lambda experiment: (experiment.cycle, experiment.number, experiment.id),
            ),
            state_counts=[
                (state, label, counts[proposal.pk][state])
                for state, label in State.choices
                if state in counts[proposal.pk]
            ],
            program_count=sum(counts[proposal.pk].values()),
            instruments=instruments[proposal.pk],
        )
        for proposal in proposals
    ]


def proposal_page(*, page_number: Any = 1, per_page: int = 50) -> Page:
    """One page of every proposal, in numeric order (pid_2_9 before pid_2_10), as summaries."""
    proposals = Proposal.objects.order_by("cycle", "number", "id")
    page = Paginator(proposals, per_page).get_page(page_number)
    page.object_list = proposal_summaries(list(page.object_list))
    return page


def proposal_summary(*, proposal_id: str) -> ProposalSummary:
    """One proposal's summary; Proposal.DoesNotExist if there is none."""
    return proposal_summaries([Proposal.objects.get(pk=proposal_id)])[0]
