"""Reads that pages and exports make."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from ops.models import ObservingProgram


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
