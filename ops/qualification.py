"""Qualification service: runs the pure rules of ops.qualify and records verdict events."""

from __future__ import annotations

from collections.abc import Collection


def qualify_programs(*, program_ids: Collection[str] | None = None) -> None:
    """Qualify the given OPs (None: every OP whose settle date has passed)."""
