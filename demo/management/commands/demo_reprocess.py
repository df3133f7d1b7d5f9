"""``manage.py demo_reprocess``: the demo data center reprocesses the Level 1 datasets of a few
published OPs (a newer ``updateDate`` and calibration), so that the next scan finds their
inversions stale (issue 21). It adds them to the file the demo store follows
(``var/demo_store_reprocessed.json``): the running store serves them so at once, and after a
restart too.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from demo.management.commands.demo_store import REPROCESSED_FILE
from demo.store.generator import recalibrated
from demo.store.server import load_inversions, save_inversions
from inversions.models import Inversion
from ops.models import Dataset, ObservingProgram
from ops.states import State


class Command(BaseCommand):
    help = (
        "Reprocess in the demo store the Level 1 datasets of published OPs (the latest published "
        "and not yet stale, or those named), so that the next scan marks them stale."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--program", action="append", default=[], help="an OP's id (repeat for more); any state"
        )
        parser.add_argument(
            "--published", type=int, default=1, help="without --program: how many published OPs"
        )
        parser.add_argument(
            "--datasets",
            type=int,
            default=1,
            help="datasets reprocessed per OP, of those its inversion used (0: all)",
        )
        parser.add_argument(
            "--reprocessed-file",
            type=Path,
            default=settings.BASE_DIR / "var" / REPROCESSED_FILE,
            help="the file the demo store follows (its --reprocessed-file)",
        )

    def handle(
        self, *args, program: list[str], published: int, datasets: int, reprocessed_file: Path, **options
    ):
        if published < 0 or datasets < 0:
            raise CommandError("--published and --datasets count: 0 or more.")
        programs = self._programs(program_ids=program, published=published)
        if not programs:
            raise CommandError(
                "No published program to reprocess: publish one first, or name one with --program."
            )
        now = timezone.now()
        try:
            changes = load_inversions(reprocessed_file)
        except ValueError as error:
            raise CommandError(
                f"{reprocessed_file} is not JSON ({error}): remove it to start again."
            ) from None
        for program_id in programs:
            records = self._records(program_id=program_id, datasets=datasets)
            if not records:
                self.stdout.write(f"{program_id}: no datasets to reprocess.")
                continue
            for dataset_id, record in records.items():
                # On top of what the store serves now (an earlier reprocessing, say).
                changes[dataset_id] = {
                    **changes.get(dataset_id, {}),
                    **recalibrated(record, at=now.replace(tzinfo=None)),
                }
            self.stdout.write(f"{program_id}: reprocessed {', '.join(sorted(records))}.")
        save_inversions(reprocessed_file, changes)
        self.stdout.write(
            f"The demo store serves them so now ({reprocessed_file}). The next scan marks their inversions "
            "stale: Scan now on the Scans page, or manage.py scan."
        )

    def _programs(self, *, program_ids: list[str], published: int) -> list[str]:
        if program_ids:
            known = set(ObservingProgram.objects.filter(pk__in=program_ids).values_list("pk", flat=True))
            unknown = [program_id for program_id in program_ids if program_id not in known]
            if unknown:
                raise CommandError(f"No such observing program: {', '.join(unknown)}.")
            return program_ids
        newest_published = ObservingProgram.objects.filter(state=State.PUBLISHED, stale_since__isnull=True)
        return list(newest_published.order_by("-state_since", "id").values_list("pk", flat=True)[:published])

    def _records(self, *, program_id: str, datasets: int) -> dict[str, dict]:
        """The stored records of the datasets to reprocess: those the latest inversion used
        (else the OP's), in id order."""
        latest = Inversion.objects.filter(program_id=program_id).order_by("-created_at").first()
        used = Dataset.objects.filter(pk__in=latest.dataset_ids) if latest and latest.dataset_ids else None
        if used is None:
            used = Dataset.objects.filter(program_id=program_id)
        rows = used.filter(vanished_at__isnull=True).order_by("id").values_list("id", "raw")
        return dict(rows[:datasets] if datasets else rows)
