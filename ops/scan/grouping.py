"""Grouping: what a batch did to each OP (datasets added, changed, vanished).

The steps after the upsert work from these changes: the OPs' totals, their events, and the
OPs handed to the qualification afterwards.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ops.metadata.records import DatasetRecord
from ops.scan.listing import Stored


@dataclass
class OpChanges:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = [
            f"{len(ids)} dataset{'s' if len(ids) != 1 else ''} {verb}"
            for ids, verb in [(self.added, "added"), (self.changed, "changed"), (self.vanished, "vanished")]
            if ids
        ]
        return "Datasets changed in the metadata store: " + ", ".join(parts) + "."


@dataclass
class BatchChanges:
    """The changes of one batch by OP id, and its counts of new and changed datasets."""

    by_program: dict[str, OpChanges]
    new_count: int = 0
    changed_count: int = 0
    vanished_count: int = 0

    @property
    def program_ids(self) -> list[str]:
        return sorted(self.by_program)


def group_changes(
    *, records: list[DatasetRecord], vanished_ids: list[str], stored: dict[str, Stored]
) -> BatchChanges:
    """Each written record is new or changed (``stored`` is what the listing compared with);
    a dataset that moved to another OP changed its old OP too."""
    by_program: dict[str, OpChanges] = defaultdict(OpChanges)
    changes = BatchChanges(by_program=by_program, vanished_count=len(vanished_ids))
    for r in records:
        known = stored.get(r.dataset_id)
        if known is None:
            by_program[r.program_id].added.append(r.dataset_id)
            changes.new_count += 1
        else:
            by_program[r.program_id].changed.append(r.dataset_id)
            changes.changed_count += 1
            if known.program_id != r.program_id:
                by_program[known.program_id].changed.append(r.dataset_id)
    for dataset_id in vanished_ids:
        by_program[stored[dataset_id].program_id].vanished.append(dataset_id)
    return changes
