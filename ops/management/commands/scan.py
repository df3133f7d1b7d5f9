"""``manage.py scan``: one scan of the metadata store in the foreground, then the qualification
of the OPs it found new or changed; both summaries."""

from django.core.management.base import BaseCommand, CommandError

from ops.models import Scan
from ops.qualification import qualify_after_scan
from ops.scan import ScanAlreadyRunning, run_scan


class Command(BaseCommand):
    # A scan runs every few minutes from cron or by hand: the system checks would import every
    # view (the products' astropy among them), seconds that the scan does not need.
    requires_system_checks = []
    help = (
        "Scan the metadata store once, qualify the programs that changed, and print what changed. "
        "Exits non-zero if the scan failed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--full",
            action="store_true",
            help="list every dataset of the store, not only those created or updated since the last scan",
        )

    def handle(self, *args, **options):
        try:
            scan = run_scan(trigger=Scan.Trigger.COMMAND, list_everything=options["full"])
        except ScanAlreadyRunning as error:
            raise CommandError(str(error)) from None
        duration = scan.duration.total_seconds() if scan.duration else 0.0
        self.stdout.write(f"scan {scan.pk} {scan.status} in {duration:.1f} s")
        self.stdout.write(f"listed: {scan.listing_description}")
        for label, count in [
            ("new", scan.new_count),
            ("changed", scan.changed_count),
            ("unchanged", scan.unchanged_count),
            ("vanished", scan.vanished_count),
            ("errors", scan.error_count),
        ]:
            self.stdout.write(f"{label}: {count}")
        for error in scan.errors.all()[:20]:
            self.stdout.write(f"error {error.record}: {error.message}")
        if scan.error_count > 20:
            self.stdout.write(f"… and {scan.error_count - 20} more errors: see the Scans page.")
        # After the scan lock is released, also when the scan failed after committing batches.
        summary = qualify_after_scan(scan=scan)
        self.stdout.write(f"qualification: {summary}")
        if scan.status == Scan.Status.FAILED:
            raise CommandError(scan.message)
