"""``manage.py generate_l2``: the Level 2 products of one inversion, from folders on disk."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inversions.products import ProductInputError, generate


class Command(BaseCommand):
    help = "Write the Level 2 FITS files, ASDF and quicklooks of one inversion (L2-PRODUCTS.md §5)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--results", type=Path, required=True, help="folder holding the three result files"
        )
        parser.add_argument("--l1", type=Path, required=True, help="folder holding one folder per L1 dataset")
        parser.add_argument("--out", type=Path, required=True, help="folder the products are written into")
        parser.add_argument("--inversion-id", help="inv.XXXXXX (default: a new one)")
        parser.add_argument("--processes", type=int, default=1, help="frames written in parallel (default 1)")

    def handle(self, *args, **options) -> None:
        def progress(done: int, total: int) -> None:
            self.stdout.write(f"frames {done}/{total}")

        try:
            result = generate(
                options["results"],
                options["l1"],
                options["out"],
                inversion_id=options["inversion_id"],
                processes=options["processes"],
                on_progress=progress,
            )
        except ProductInputError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.inversion_id}: {result.frame_count} frames ({result.frames_written} written), "
                f"{result.bytes / 1e6:.1f} MB in {result.duration_s:.1f} s; {result.asdf_path}"
            )
        )
