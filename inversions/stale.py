"""Stale inversions: Level 1 data that an inversion used changed after it used them (issue 21).

The scan sends ``ops.signals.datasets_changed`` inside each batch's transaction. For the OPs of
the batch whose latest attempt is queued or later (open, or ended published), the datasets
that attempt uses (those reported, else those copied to scratch, else the OP's) are compared
with what it used: the snapshot of their records taken when they were copied to scratch
(``Inversion.level1_snapshot``), else, for attempts older than snapshots, the attempt's start.
A dataset whose ``updateDate`` moved past that is a change; the changes of one OP make one
information event (the scanner's) whose details carry ``"stale"``, from which the database
marks the OP stale (ops migration 0011). A change that an earlier event of the same attempt
named (same dataset, same ``updateDate``) is not named again.

The cost follows the batch: one query for the attempts of its OPs, and more only for those.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from inversions.models import Inversion
from ops.history import Actor, EventRequest, record_events
from ops.models import Dataset, ObservingProgram, ProgramEvent, Scan
from ops.signals import datasets_changed
from ops.states import ActorKind, State

SCANNER = Actor(ActorKind.SCANNER)
# A record's field is kept as it is when its JSON is this short, else as a digest: the snapshot
# says which fields changed, and from what to what where it kept them.
KEPT_VALUE_CHARS = 200
# Changed fields named in an event's note, the others counted.
NOTE_FIELDS = 4


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def record_snapshot(*, update_date: datetime, raw: Any) -> dict[str, Any]:
    """One dataset's record as a snapshot: its update date, its short fields' values and the
    digests of the others (the store's text is untrusted: any size, any shape)."""
    values, digests = {}, {}
    for name, value in (raw if isinstance(raw, dict) else {}).items():
        if name == "updateDate":
            continue
        if len(json.dumps(value, default=str)) <= KEPT_VALUE_CHARS:
            values[name] = value
        else:
            digests[name] = _digest(value)
    return {"updateDate": update_date.isoformat(), "values": values, "digests": digests}


def level1_snapshot(*, dataset_ids: Iterable[str], now: datetime | None = None) -> dict[str, Any]:
    """The snapshot of these datasets' records as stored now (one query)."""
    rows = Dataset.objects.filter(pk__in=list(dataset_ids)).values_list("id", "update_date", "raw")
    return {
        "taken_at": (now or timezone.now()).isoformat(),
        "datasets": {
            dataset_id: record_snapshot(update_date=update_date, raw=raw)
            for dataset_id, update_date, raw in rows
        },
    }


def _field(snapshot: dict[str, Any], name: str) -> tuple[str, Any]:
    if name in snapshot["values"]:
        return "value", snapshot["values"][name]
    if name in snapshot["digests"]:
        return "digest", snapshot["digests"][name]
    return "absent", None


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The fields that differ between two record snapshots, each with ``old`` and ``new`` where
    the snapshot kept the value (a digest says only that it changed)."""
    changes = {}
    for name in sorted({*before["values"], *before["digests"], *after["values"], *after["digests"]}):
        old, new = _field(before, name), _field(after, name)
        if old != new:
            changes[name] = {
                key: value for key, (kind, value) in (("old", old), ("new", new)) if kind == "value"
            }
    return changes


def _latest_attempts(program_ids: Sequence[str]) -> list[Inversion]:
    """Each OP's latest attempt, where it is open or ended published (queued or later)."""
    latest = (
        Inversion.objects.filter(program_id__in=program_ids)
        .order_by("program_id", "-created_at")
        .distinct("program_id")
        .only("id", "program_id", "created_at", "ended_at", "end_reason", "dataset_ids", "level1_snapshot")
    )
    return [
        inversion
        for inversion in latest
        if inversion.ended_at is None or inversion.end_reason == Inversion.EndReason.PUBLISHED
    ]


def _used_dataset_ids(inversion: Inversion) -> list[str] | None:
    """The datasets the attempt uses; None for all the OP's (an attempt older than snapshots,
    not reported yet)."""
    return list(inversion.dataset_ids) or list(inversion.level1_snapshot.get("datasets", {})) or None


def _named_before(inversions: list[Inversion]) -> set[tuple[str, str, str]]:
    """(inversion, dataset, updateDate) of each change the attempts' stale events named."""
    events = ProgramEvent.objects.filter(
        program_id__in=[inversion.program_id for inversion in inversions], details__has_key="stale"
    ).values_list("details__stale", flat=True)
    return {
        (stale.get("inversion"), dataset_id, change.get("update_date", {}).get("new"))
        for stale in events
        if isinstance(stale, dict)
        for dataset_id, change in (stale.get("datasets") or {}).items()
        if isinstance(change, dict)
    }


def _note(inversion: Inversion, changes: dict[str, dict[str, Any]]) -> str:
    fields = sorted({name for change in changes.values() for name in change["fields"]})
    shown = ", ".join(fields[:NOTE_FIELDS]) + (
        f" and {len(fields) - NOTE_FIELDS} more" if len(fields) > NOTE_FIELDS else ""
    )
    what = f"; changed: updateDate{', ' + shown if shown else ''}"
    datasets = ", ".join(sorted(changes))
    plural = "s" if len(changes) > 1 else ""
    return f"Level 1 changed since {inversion.id}: dataset{plural} {datasets} reprocessed{what}."


def find_stale(*, program_ids: Sequence[str], scan: Scan | None = None) -> list[ProgramEvent]:
    """One stale event on each of these OPs whose latest attempt's Level 1 data changed since it
    used them, for the changes not named before. Call inside the transaction that wrote the
    datasets (the scan's batch)."""
    inversions = _latest_attempts(program_ids)
    if not inversions:
        return []
    # The used datasets' update dates first; the records (kilobytes) only of those that moved.
    used_ids = {inversion.pk: _used_dataset_ids(inversion) for inversion in inversions}
    named = [ids for ids in used_ids.values() if ids is not None]
    whole = [inversion.program_id for inversion in inversions if used_ids[inversion.pk] is None]
    rows = list(
        Dataset.objects.filter(
            Q(pk__in=[dataset_id for ids in named for dataset_id in ids]) | Q(program_id__in=whole)
        ).values_list("id", "program_id", "update_date")
    )
    update_dates = {dataset_id: update_date for dataset_id, _program_id, update_date in rows}
    of_program: dict[str, list[str]] = {}
    for dataset_id, program_id, _update_date in rows:
        of_program.setdefault(program_id, []).append(dataset_id)

    moved: dict[str, list[str]] = {}
    for inversion in inversions:
        snapshot = inversion.level1_snapshot.get("datasets", {})
        for dataset_id in used_ids[inversion.pk] or of_program.get(inversion.program_id, []):
            update_date = update_dates.get(dataset_id)
            before = snapshot.get(dataset_id)
            reference = parse_datetime(before["updateDate"]) if before else inversion.created_at
            if update_date is not None and reference is not None and update_date > reference:
                moved.setdefault(inversion.pk, []).append(dataset_id)
    if not moved:
        return []

    # Locked in id order as ops.history does (the scan's batch holds these locks already), so
    # that the state read here is the state the information event is checked against.
    states = dict(
        ObservingProgram.objects.select_for_update()
        .filter(pk__in=[inversion.program_id for inversion in inversions if inversion.pk in moved])
        .order_by("pk")
        .values_list("pk", "state")
    )
    named_before = _named_before([inversion for inversion in inversions if inversion.pk in moved])
    records = {record["id"]: record for record in _records([d for ids in moved.values() for d in ids])}
    requests = []
    for inversion in inversions:
        snapshot = inversion.level1_snapshot.get("datasets", {})
        changes = {}
        for dataset_id in sorted(moved.get(inversion.pk, [])):
            after = record_snapshot(
                update_date=records[dataset_id]["update_date"], raw=records[dataset_id]["raw"]
            )
            if (inversion.pk, dataset_id, after["updateDate"]) in named_before:
                continue
            before = snapshot.get(dataset_id)
            changes[dataset_id] = {
                "update_date": {"old": before["updateDate"] if before else None, "new": after["updateDate"]},
                "fields": changed_fields(before, after) if before else {},
            }
        if not changes:
            continue
        used_since = inversion.level1_snapshot.get("taken_at") or inversion.created_at.isoformat()
        details = {
            "note": _note(inversion, changes),
            "stale": {"inversion": inversion.pk, "used_since": used_since, "datasets": changes},
        }
        if scan is not None:
            details["scan"] = scan.pk
        requests.append(EventRequest(inversion.program_id, State(states[inversion.program_id]), details))
    return record_events(requests=requests, actor=SCANNER)


def _records(dataset_ids: list[str]) -> Iterable[dict[str, Any]]:
    return Dataset.objects.filter(pk__in=dataset_ids).values("id", "update_date", "raw")


@receiver(datasets_changed, dispatch_uid="inversions.stale")
def _on_datasets_changed(sender, *, scan: Scan, program_ids: Sequence[str], **kwargs) -> None:
    find_stale(program_ids=program_ids, scan=scan)
