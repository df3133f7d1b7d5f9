"""``manage.py qualify``: qualify the OPs that are due (or the given ones) in the foreground."""

from django.core.management.base import BaseCommand

from ops.qualification import qualify_programs


class Command(BaseCommand):
    help = "Qualify every settled OP not qualified since it settled, or the given OPs; print the counts."

    def add_arguments(self, parser):
        parser.add_argument(
            "program_ids",
            nargs="*",
            metavar="PROGRAM_ID",
            help="only these OPs (settled ones are re-qualified)",
        )

    def handle(self, *args, program_ids, **options):
        summary = qualify_programs(program_ids=program_ids or None)
        for label, text in summary.labelled():
            self.stdout.write(f"{label}: {text}")
