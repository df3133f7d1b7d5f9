"""The programs page benchmark: ``python -m bench.program_list`` (``make bench-pages``).

Fills a throwaway database (``BENCH_DATABASE``, default ``<configured name>_bench_pages``;
dropped at the end) with ``BENCH_PROGRAMS`` OPs (default 20,000) and ten events each, written
through ``ops.history.record_events`` like the app writes them, then requests the programs
page as a logged-in user: unfiltered, filtered by state, searched, and deep in the
pagination. It prints the server time per request (p50, p95) and the SQL queries per page,
which must be the same for every page. The last line is one JSON object for tracking.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import django

from bench.scan import log, recreate_database

DEFAULT_PROGRAMS = 20_000
EVENTS_PER_PROGRAM = 10
REQUESTS_PER_PAGE = 40
BATCH = 2_000


def fill(programs: int) -> int:
    """OPs with the history the app would give them; returns the number of events."""
    from ops.history import Actor, EventRequest, record_events
    from ops.models import Experiment, ObservingProgram, Proposal
    from ops.states import ActorKind, State

    proposals = [Proposal(id=f"pid_2_{n}", cycle=2, number=n) for n in range(1, 201)]
    experiments = [Experiment(id=f"eid_2_{n}", cycle=2, number=n) for n in range(1, 201)]
    Proposal.objects.bulk_create(proposals)
    Experiment.objects.bulk_create(experiments)
    ObservingProgram.objects.bulk_create(
        [
            ObservingProgram(
                id=f"eid_2_{n % 200 + 1}_opBench_R001.{n}.1",
                proposal=proposals[n % 200],
                experiment=experiments[n % 200],
                dataset_count=3,
            )
            for n in range(programs)
        ],
        batch_size=BATCH,
    )
    ids = list(ObservingProgram.objects.order_by("pk").values_list("pk", flat=True))
    events = 0
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        discovered = [EventRequest(program_id, State.DISCOVERED) for program_id in chunk]
        events += len(record_events(requests=discovered, actor=Actor(ActorKind.SCANNER)))
        # A verdict, then information events (new reports), up to ten events per OP.
        verdicts = [
            EventRequest(program_id, State.INVERTIBLE if n % 5 == 0 else State.NOT_INVERTIBLE)
            for n, program_id in enumerate(chunk, start)
        ]
        for _ in range(EVENTS_PER_PROGRAM - 1):
            events += len(record_events(requests=verdicts, actor=Actor(ActorKind.QUALIFIER)))
        log(f"  {start + len(chunk)} OPs, {events} events")
    return events


def measure(client, url: str, params: dict[str, str]) -> tuple[list[float], int]:
    """Server times of repeated requests for one page, and the SQL queries one request makes."""
    from django.db import connection

    queries = []
    with connection.execute_wrapper(lambda execute, sql, *args: queries.append(sql) or execute(sql, *args)):
        client.get(url, params)
    times = []
    for _ in range(REQUESTS_PER_PAGE):
        started = time.perf_counter()
        response = client.get(url, params)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return times, len(queries)


def main() -> None:
    programs = int(os.environ.get("BENCH_PROGRAMS") or DEFAULT_PROGRAMS)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "level2.settings")
    from django.conf import settings

    configured = dict(settings.DATABASES["default"])
    bench_name = os.environ.get("BENCH_DATABASE") or f"{configured['NAME']}_bench_pages"
    recreate_database(configured, bench_name)
    settings.DATABASES["default"]["NAME"] = bench_name
    settings.ALLOWED_HOSTS = ["testserver"]
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client
    from django.test.utils import setup_test_environment

    log(f"bench.program_list: {programs} OPs, {EVENTS_PER_PROGRAM} events each; database {bench_name}")
    try:
        call_command("migrate", verbosity=0)
        setup_test_environment()
        started = time.perf_counter()
        events = fill(programs)
        log(f"filled in {time.perf_counter() - started:.1f} s")
        with connections["default"].cursor() as cursor:
            cursor.execute("ANALYZE")
        client = Client()
        client.force_login(get_user_model().objects.create_user("bench", password="bench-password-1"))
        pages = {
            "all": {},
            "invertible": {"state": "invertible"},
            "search": {"q": "R001.11"},
            "page 200": {"page": "200"},
        }
        all_times, query_counts = [], {}
        for name, params in pages.items():
            times, query_counts[name] = measure(client, "/programs/", params)
            all_times += times
            p95 = statistics.quantiles(times, n=20)[-1]
            log(
                f"{name:>10}: p50 {statistics.median(times) * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms, "
                f"{query_counts[name]} queries"
            )
        result = {
            "programs": programs,
            "events": events,
            "p50_ms": round(statistics.median(all_times) * 1e3, 1),
            "p95_ms": round(statistics.quantiles(all_times, n=20)[-1] * 1e3, 1),
            "queries_per_page": sorted(set(query_counts.values())),
        }
    finally:
        connections.close_all()
        recreate_database(configured, bench_name, create=False)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
