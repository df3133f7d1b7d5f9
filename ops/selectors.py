"""Reads that pages and exports make."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, Exists, JSONField, OuterRef, QuerySet
from django.db.models.expressions import RawSQL

from ops.models import Dataset, InstrumentProgram, ObservingProgram, ProgramEvent, Scan, ScanError


def programs_with_state() -> QuerySet[ObservingProgram]:
    """OPs with their current event in the same query (one query for any number of OPs)."""
    return ObservingProgram.objects.select_related("current_event", "proposal", "experiment")


def program_page(*, state: str = "", search: str = "", page_number: Any = 1, per_page: int = 50) -> Page:
    """One page of the programs list, newest first, with each OP's state and current event.

    The page's ids come from the index alone; only those OPs are joined to their events,
    proposals and experiments, so a page deep in 20,000 OPs costs what the first one does.
    """
    ids = ObservingProgram.objects.order_by("-first_seen_at", "id")
    if state:
        ids = ids.filter(state=state)
    if search:
        ids = ids.filter(id__icontains=search)
    page = Paginator(ids.values_list("pk", flat=True), per_page).get_page(page_number)
    programs = programs_with_state().in_bulk(list(page.object_list))
    page.object_list = [programs[pk] for pk in page.object_list]
    return page


def state_counts() -> dict[str, int]:
    """How many OPs are in each state, in one grouped query."""
    rows = ObservingProgram.objects.values("state").annotate(n=Count("pk")).order_by()
    return {row["state"]: row["n"] for row in rows}


# --- qualification reports (written by ops.qualification) -------------------------------------


def latest_reports(*, program_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """The report of each OP's newest qualification event (verdict or information), one query."""
    rows = (
        ProgramEvent.objects.filter(program_id__in=list(program_ids), details__has_key="report")
        .order_by("program_id", "-id")
        .distinct("program_id")
        .values_list("program_id", "details__report")
    )
    return dict(rows)


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
