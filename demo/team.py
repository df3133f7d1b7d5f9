"""The demo science team: where its results of an OP are on the team collection, and the
"Report done" form filled with them. Kept apart from demo.files, whose synthetic frames need
numpy and astropy that the web process does not otherwise load."""

from __future__ import annotations

from django.conf import settings

TEAM_FOLDER = "demo"


def result_path(program_id: str) -> str:
    """Where the demo team's results of an OP are on the team collection."""
    return f"/{TEAM_FOLDER}/{program_id}/"


def report_prefill(program_id: str) -> dict[str, str]:
    """The "Report done" form's result location (``LEVEL2_REPORT_PREFILL``): the demo team's
    results of the OP, for a newcomer to try."""
    return {"result_collection": settings.LEVEL2_DEMO_TEAM_COLLECTION, "result_path": result_path(program_id)}
