"""The scan benchmark: ``python -m bench.scan`` (``make bench``).

Generates ``BENCH_DATASETS`` datasets (default 100,000) in a fifth as many OPs, serves them
from two demo-store processes (the store as generated, and the same store after 1 % of its
datasets changed), and measures in one run, against a throwaway database on the configured
PostgreSQL server (``BENCH_DATABASE``, default ``<configured name>_bench``; dropped at the end):

- the floor: fetch the same JSON the scan fetches (the cheap list, then whole proposals in
  the scan's batches, then the experiment descriptions), parse it, and COPY the records
  into an unindexed scratch table, one transaction per batch;
- what ``manage.py scan`` does into the empty database: the scan (``ops.scan.run_scan``,
  which records the verdicts of the new settled OPs in its batches), then the qualification
  of the other OPs it found new or changed (``qualify_after_scan``, a step of its own, after
  the scan lock is released), and the whole; each against the floor. The qualification's
  own time is printed apart: the rules (run in the scan's read-ahead thread, beside the
  writes) and the recording of the verdicts (in the batches' transactions: their scores, and
  their events made ready; the scan writes them with its own events), then the step after
  the scan;
- the re-scan after 1 % changed, the same way, and its whole against the full one's;
- the peak resident memory of this process (the stores live in their own processes).

It runs with DEBUG off, as in production (DEBUG keeps the SQL of every statement, which
costs the scan time and memory that the floor does not pay). The last line is one JSON
object for tracking: ``full_scan_s``, ``qualify_s`` and ``whole_s`` (with their ``_ratio`` to
the floor), ``rescan_s``, ``rescan_qualify_s``, ``rescan_whole_s`` and ``rescan_ratio``
(re-scan whole / full whole), ``peak_rss_mb``; and in CPU time (this process and its
PostgreSQL backend, which a busy shared machine moves far less than wall-clock time),
``floor_cpu_s``, ``qualify_cpu_s``, ``whole_cpu_s`` and ``whole_cpu_ratio``; and the
qualification's parts: ``batch_rules_s`` and ``batch_recording_s`` (inside the scan), and
``qualification_s``, what the qualification adds to the whole: the recording in the batches
plus the step after the scan (the rules overlap the writes).
``BENCH_PROFILE=<file>`` also writes a cProfile of the full scan and its qualification (slower;
its time is not comparable).
"""

from __future__ import annotations

import cProfile
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import django
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

DEFAULT_DATASETS = 100_000
SEED = 42
CHANGED_FRACTION = 0.01
STORE_START_TIMEOUT_S = 300


def log(message: str) -> None:
    print(message, flush=True)


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def conninfo(database: dict[str, Any], name: str) -> str:
    params = {
        "host": database.get("HOST"),
        "port": database.get("PORT"),
        "user": database.get("USER"),
        "password": database.get("PASSWORD"),
        "dbname": name,
    }
    return psycopg.conninfo.make_conninfo(**{key: str(value) for key, value in params.items() if value})


def recreate_database(database: dict[str, Any], name: str, *, create: bool = True) -> None:
    """Drop the database `name` on the configured server (and create it afresh)."""
    with psycopg.connect(conninfo(database, database["NAME"]), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if create:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@contextmanager
def store_process(*, datasets: int, now: datetime, changed_fraction: float = 0.0) -> Iterator[str]:
    """A demo store in a process of its own (so that it does not share this one's GIL)."""
    command = [
        sys.executable, "-m", "demo.store.server", "--port", "0", "--seed", str(SEED),
        "--datasets", str(datasets), "--now", now.isoformat(), "--changed-fraction", str(changed_fraction),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("ready "):
            raise RuntimeError(f"The demo store did not start: {line!r}")
        log(f"  store: {line.strip()}")
        yield line.split()[1]
    finally:
        process.terminate()
        process.wait(timeout=30)


def warm_up(url: str) -> None:
    """One small listing, so that the store's sorted listing is cached before timing starts."""
    from ops.metadata.client import MetadataClient

    with MetadataClient(url=url, page_size=1) as client:
        next(iter(client.dataset_list()))


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def backend_cpu_s(backend_pid: int) -> float:
    """CPU seconds of a PostgreSQL backend on this machine (0 where /proc cannot tell)."""
    try:
        with open(f"/proc/{backend_pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_s(backend_pid: int) -> float:
    """CPU seconds of this process and of its PostgreSQL backend: on a shared machine they
    move far less with the load than wall-clock time (the stores' processes are not counted,
    for the floor as for the scan)."""
    return time.process_time() + backend_cpu_s(backend_pid)


@dataclass
class FloorTiming:
    records: int = 0
    fetch_s: float = 0.0
    copy_s: float = 0.0
    cpu_s: float = 0.0


def measure_floor(*, url: str, database: dict[str, Any]) -> FloorTiming:
    """Fetch + parse what the scan fetches, COPY it into an unindexed table."""
    from ops.metadata.client import MetadataClient
    from ops.models import key_numbers
    from ops.scan.listing import BATCH_DATASETS

    timing = FloorTiming()
    with (
        MetadataClient(url=url) as client,
        psycopg.connect(conninfo(database, database["NAME"])) as connection,
    ):
        connection.execute(
            "CREATE TABLE bench_floor (dataset_id text, proposal_id text, program_id text, "
            "instrument_program_id text, create_date timestamptz, update_date timestamptz, raw jsonb)"
        )
        connection.commit()
        cpu_started = cpu_s(connection.info.backend_pid)
        started = time.perf_counter()
        count_by_proposal: dict[str, int] = defaultdict(int)
        for page in client.dataset_list():
            for row in page:
                count_by_proposal[row["primaryProposalId"]] += 1
        client.experiment_descriptions()
        timing.fetch_s += time.perf_counter() - started
        # Whole proposals in the scan's order and batch size.
        proposals = sorted(count_by_proposal, key=lambda pid: (*key_numbers(pid), pid))
        batch: list[str] = []
        batch_size = 0
        for index, proposal_id in enumerate(proposals):
            batch.append(proposal_id)
            batch_size += count_by_proposal[proposal_id]
            if batch_size < BATCH_DATASETS and index < len(proposals) - 1:
                continue
            started = time.perf_counter()
            records = [record for page in client.datasets_by_proposal(batch) for record in page]
            fetched = time.perf_counter()
            with connection.cursor() as cursor, cursor.copy("COPY bench_floor FROM STDIN") as copy:
                for record in records:
                    copy.write_row(
                        (
                            record["datasetId"],
                            record["primaryProposalId"],
                            record["observingProgramExecutionId"],
                            record["instrumentProgramExecutionId"],
                            record["createDate"],
                            record["updateDate"],
                            Jsonb(record),
                        )
                    )
            connection.commit()
            timing.fetch_s += fetched - started
            timing.copy_s += time.perf_counter() - fetched
            timing.records += len(records)
            batch, batch_size = [], 0
        timing.cpu_s = cpu_s(connection.info.backend_pid) - cpu_started
    return timing


@dataclass
class ScanTiming:
    scan: Any
    scan_s: float
    qualify_s: float
    summary: Any
    scan_cpu_s: float
    qualify_cpu_s: float

    @property
    def whole_s(self) -> float:
        """What ``manage.py scan`` takes: the scan, then the qualification after it."""
        return self.scan_s + self.qualify_s

    @property
    def whole_cpu_s(self) -> float:
        return self.scan_cpu_s + self.qualify_cpu_s

    @property
    def batch_rules_s(self) -> float:
        return (self.scan.batch_qualification or {}).get("rules_s", 0.0)

    @property
    def batch_recording_s(self) -> float:
        return (self.scan.batch_qualification or {}).get("recording_s", 0.0)

    @property
    def qualification_s(self) -> float:
        """What the qualification adds to the whole: recording in the batches, and the step after."""
        return self.batch_recording_s + self.qualify_s


def report(
    label: str, timing: ScanTiming, *, floor: FloorTiming, floor_s: float, full: ScanTiming | None = None
) -> None:
    """The scan, the qualification and the whole, each against the floor (and the full run),
    in wall-clock time and in CPU time."""
    log(f"{label}: {describe(timing.scan)}; qualification: {timing.summary}")
    for part, seconds, cpu in [
        ("scan", timing.scan_s, timing.scan_cpu_s),
        ("qualification", timing.qualify_s, timing.qualify_cpu_s),
        ("whole", timing.whole_s, timing.whole_cpu_s),
    ]:
        against_full = f", {seconds / full.whole_s:.1%} of the full whole" if full else ""
        log(
            f"  {part:<13} {seconds:7.2f} s = {seconds / floor_s:5.2f} x the floor{against_full}"
            f" (CPU {cpu:.2f} s = {cpu / floor.cpu_s:.2f} x the floor's)"
        )
    batch = timing.scan.batch_qualification or {}
    log(
        f"  qualification in the scan's batches: {batch.get('considered', 0)} OPs, rules"
        f" {timing.batch_rules_s:.2f} s (read-ahead thread, beside the writes), recording"
        f" {timing.batch_recording_s:.2f} s; with the step after the scan, the qualification adds"
        f" {timing.qualification_s:.2f} s to the whole"
    )


def scan_at(url: str, *, profile_path: str | None = None) -> ScanTiming:
    """What ``manage.py scan`` does: the scan, then the qualification of the OPs it changed."""
    from django.conf import settings
    from django.db import connection

    from ops.models import Scan
    from ops.qualification import qualify_after_scan
    from ops.scan import run_scan

    settings.LEVEL2_METADATA_URL = url
    profiler = cProfile.Profile() if profile_path else None
    if profiler:
        profiler.enable()
    connection.ensure_connection()
    backend_pid = connection.connection.info.backend_pid
    started_cpu = cpu_s(backend_pid)
    scan_s, scan = timed(lambda: run_scan(trigger=Scan.Trigger.COMMAND))
    scanned_cpu = cpu_s(backend_pid)
    log(f"  scan done, peak memory so far {peak_rss_mb():.0f} MB")
    qualify_s, summary = timed(lambda: qualify_after_scan(scan=scan))
    qualified_cpu = cpu_s(backend_pid)
    log(f"  qualification done, peak memory so far {peak_rss_mb():.0f} MB")
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile_path)
    return ScanTiming(
        scan, scan_s, qualify_s, summary, scanned_cpu - started_cpu, qualified_cpu - scanned_cpu
    )


def describe(scan) -> str:
    return (
        f"{scan.status}: {scan.new_count} new, {scan.changed_count} changed, "
        f"{scan.unchanged_count} unchanged, {scan.vanished_count} vanished, {scan.error_count} errors;"
        f" listed {scan.listing_description}"
    )


def main() -> None:
    datasets = int(os.environ.get("BENCH_DATASETS") or DEFAULT_DATASETS)
    profile_path = os.environ.get("BENCH_PROFILE") or None
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "level2.settings")
    from django.conf import settings

    # Point Django at a throwaway database before anything connects.
    configured = dict(settings.DATABASES["default"])
    bench_name = os.environ.get("BENCH_DATABASE") or f"{configured['NAME']}_bench"
    recreate_database(configured, bench_name)
    settings.DATABASES["default"]["NAME"] = bench_name
    settings.DEBUG = False
    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from demo.store.server import utc_now

    database = {**configured, "NAME": bench_name}
    log(
        f"bench.scan: {datasets} datasets in {datasets // 5} OPs; database {bench_name} on "
        f"{configured.get('HOST') or 'local socket'}:{configured.get('PORT') or 5432}; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    try:
        call_command("migrate", verbosity=0)
        now = utc_now()
        with (
            store_process(datasets=datasets, now=now) as url,
            store_process(datasets=datasets, now=now, changed_fraction=CHANGED_FRACTION) as changed_url,
        ):
            for store_url in (url, changed_url):
                warm_up(store_url)
            floor_s, floor = timed(lambda: measure_floor(url=url, database=database))
            log(
                f"floor: {floor_s:.2f} s = fetch + parse {floor.fetch_s:.2f} s + COPY {floor.copy_s:.2f} s "
                f"({floor.records} records; CPU {floor.cpu_s:.2f} s); "
                f"peak memory so far {peak_rss_mb():.0f} MB"
            )
            full = scan_at(url, profile_path=profile_path)
            report("full", full, floor=floor, floor_s=floor_s)
            rescan = scan_at(changed_url)
            report("re-scan, 1 % changed", rescan, floor=floor, floor_s=floor_s, full=full)
        result = {
            "datasets": datasets,
            "floor_s": round(floor_s, 3),
            "full_scan_s": round(full.scan_s, 3),
            "full_ratio": round(full.scan_s / floor_s, 3),
            "qualify_s": round(full.qualify_s, 3),
            "qualify_ratio": round(full.qualify_s / floor_s, 3),
            "whole_s": round(full.whole_s, 3),
            "whole_ratio": round(full.whole_s / floor_s, 3),
            "rescan_s": round(rescan.scan_s, 3),
            "rescan_qualify_s": round(rescan.qualify_s, 3),
            "rescan_whole_s": round(rescan.whole_s, 3),
            "rescan_ratio": round(rescan.whole_s / full.whole_s, 3),
            "batch_rules_s": round(full.batch_rules_s, 3),
            "batch_recording_s": round(full.batch_recording_s, 3),
            "qualification_s": round(full.qualification_s, 3),
            "floor_cpu_s": round(floor.cpu_s, 3),
            "qualify_cpu_s": round(full.qualify_cpu_s, 3),
            "whole_cpu_s": round(full.whole_cpu_s, 3),
            "whole_cpu_ratio": round(full.whole_cpu_s / floor.cpu_s, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
        log(f"peak memory: {result['peak_rss_mb']} MB")
    finally:
        connections.close_all()
        recreate_database(configured, bench_name, create=False)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
