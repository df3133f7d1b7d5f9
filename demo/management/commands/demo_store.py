"""Serve the demo metadata store in the foreground (the `demostore` process of the Procfile).

The store is generated from the seed with "now" at the start of today (UTC), so restarting
it the same day serves the very same records and a scan finds nothing changed. From that
moment on a new OP arrives every few minutes for two days (its datasets over the next few
arrivals), hidden until its time: a user watching the dashboard sees programs appear.

Datasets that `manage.py demo_reprocess` reprocessed (a newer updateDate and calibration) are
served so from the moment it writes them, and after a restart too.

On the local transfer backend it also writes the files of the data center (demo.files): a
record is listed only once its dataset's Level 1 folder and its OP's results are there.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from demo.files import StoreFiles
from demo.store.generator import generate_store
from demo.store.server import DemoStoreServer, utc_now

ARRIVAL_HOURS = 48
# Under var/: the datasets `manage.py demo_reprocess` reprocessed, which the store serves so.
REPROCESSED_FILE = "demo_store_reprocessed.json"


class Command(BaseCommand):
    help = "Serve the demo metadata store (GraphQL at /graphql) until Ctrl-C."
    # The store needs no database: skip the checks that would connect to one.
    requires_system_checks = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.LEVEL2_DEMO_STORE_PORT)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--datasets", type=int, default=2000, help="datasets already there today")
        parser.add_argument(
            "--arrival-minutes", type=float, default=5.0, help="minutes between arriving programs"
        )
        parser.add_argument(
            "--inversions-file",
            type=Path,
            default=settings.BASE_DIR / "var" / "demo_store_inversions.json",
            help="where the published inversions it receives are kept across restarts",
        )
        parser.add_argument(
            "--reprocessed-file",
            type=Path,
            default=settings.BASE_DIR / "var" / REPROCESSED_FILE,
            help="the datasets reprocessed since (manage.py demo_reprocess), followed while it runs",
        )

    def handle(
        self,
        *args,
        host: str,
        port: int,
        seed: int,
        datasets: int,
        arrival_minutes: float,
        inversions_file: Path,
        reprocessed_file: Path,
        **options,
    ):
        start_of_today = datetime.combine(utc_now().date(), time.min)
        interval = timedelta(minutes=arrival_minutes)
        store = generate_store(
            seed=seed,
            datasets=datasets,
            now=start_of_today,
            arriving_programs=int(timedelta(hours=ARRIVAL_HOURS) / interval),
            arrival_interval=interval,
        )
        clock = utc_now
        if settings.LEVEL2_DEMO_FILES:
            files = StoreFiles(store.datasets, root=Path(settings.LEVEL2_LOCAL_TRANSFER_ROOT))
            files.start()
            clock = files.clock
        server = DemoStoreServer(
            store=store,
            host=host,
            port=port,
            clock=clock,
            log_requests=options["verbosity"] >= 1,
            inversions_path=inversions_file,
            reprocessed_path=reprocessed_file,
        )
        self.stdout.write(
            f"Demo metadata store at {server.url} (seed {seed}, {datasets} datasets, a new program "
            f"every {arrival_minutes:g} minutes; inversions received: {len(server.api.inversions)}, "
            f"kept in {inversions_file}). Ctrl-C stops it."
        )
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("Demo metadata store stopped.")
        finally:
            server.httpd.server_close()
