"""Reads that pages and exports make."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, QuerySet

from ops.models import ObservingProgram, ProgramEvent


def programs_with_state() -> QuerySet[ObservingProgram]:
    """OPs with their current event in the same query (one query for any number of OPs)."""
    return ObservingProgram.objects.select_related("current_event", "proposal", "experiment")


def program_list(*, state: str | None = None, search: str = "") -> QuerySet[ObservingProgram]:
    programs = programs_with_state().order_by("-first_seen_at", "id")
    if state:
        programs = programs.filter(current_event__to_state=state)
    if search:
        programs = programs.filter(id__icontains=search)
    return programs


def state_counts() -> dict[str, int]:
    """How many OPs are in each state, in one grouped query."""
    rows = ObservingProgram.objects.values("current_event__to_state").annotate(n=Count("pk"))
    return {row["current_event__to_state"] or "": row["n"] for row in rows}


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
        ObservingProgram.objects.filter(
            current_event__to_state__in=list(states), newest_dataset_created_at__lte=now - settle
        )
        .exclude(Exists(qualified_since_settling))
        .order_by("pk")
        .values_list("pk", flat=True)
        .iterator(chunk_size=5000)
    )
