"""The dashboard pages benchmark: ``python -m bench.pages`` (``make bench-pages``).

Fills a throwaway database (``BENCH_DATABASE``, default ``<configured name>_bench_pages``;
dropped at the end) with ``BENCH_PROGRAMS`` OPs (default 20,000) shaped like the store's: one
instrument program and three datasets each, ten events each written through
``ops.history.record_events`` like the app writes them, a share of them moved on through the
work (queued … published, error) with their attempts, and scores on the invertible ones. Then,
as a logged-in user, it requests every dashboard page: the board, the programs table with each
filter and sort, the proposals page and a proposal page, the charts and one program page. It
prints the server time per page (p50, p95) and its SQL queries.

The same pages are first requested on a database of ``SMALL_PROGRAMS`` OPs filled the same way:
a page whose number of queries differs between the two makes its reads grow with the data
(N+1). The last line is one JSON object for tracking.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from datetime import timedelta

import django

from bench.scan import log, recreate_database

DEFAULT_PROGRAMS = 20_000
SMALL_PROGRAMS = 20
EVENTS_PER_PROGRAM = 10
# The p95 of 100 requests is their fifth slowest: one busy moment of a shared machine does not
# decide it, as it does the second slowest of 30.
REQUESTS_PER_PAGE = 100
BATCH = 2_000
PROPOSALS = 200
DATASETS_PER_PROGRAM = 3
# Where every 20th invertible OP stops on its way through the work, in turn.
WORK_STOPS = (
    "queued",
    "preprocessing",
    "preprocessed",
    "working",
    "inverted",
    "generating",
    "generated",
    "publishing",
    "published",
    "error",
)
# The inversion software's commits that reports name, in turn; a published OP's earlier
# attempt names the one before its own, so that only the latest report decides the filter.
SOFTWARE_COMMITS = (
    "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
    "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c",
    "0123abcd0123abcd0123abcd0123abcd0123abcd",
    "deadbeefcafe0000deadbeefcafe0000deadbeef",
)
# States whose attempt was reported done ("Report done" sets the commit).
REPORTED_STOPS = ("inverted", "generating", "generated", "publishing", "published")
WORK_PATH = (
    ("queued", "inverter"),
    ("preprocessing", "worker"),
    ("preprocessed", "worker"),
    ("working", "inverter"),
    ("inverted", "inverter"),
    ("generating", "worker"),
    ("generated", "worker"),
    ("publishing", "publisher"),
    ("published", "worker"),
)


def pages() -> dict[str, tuple[str, dict[str, str]]]:
    """Name → (URL, query); filled after the data, since some need an id from it."""
    from ops.models import Dataset

    program_id = Dataset.objects.order_by("program_id").values_list("program_id", flat=True).first()
    return {
        "board": ("/", {}),
        "programs": ("/programs/", {}),
        "programs state": ("/programs/", {"state": "invertible"}),
        "programs search": ("/programs/", {"q": "R001.11"}),
        "programs page 200": ("/programs/", {"page": "200"}),
        "programs instrument": ("/programs/", {"instrument": "VISP"}),
        "programs proposal": ("/programs/", {"proposal": "pid_2_7"}),
        "programs by score": ("/programs/", {"state": "invertible", "sort": "score"}),
        "programs by state age": ("/programs/", {"sort": "state_age"}),
        "programs by datasets": ("/programs/", {"sort": "datasets"}),
        # A commit of some OPs at 20 OPs as at 20,000 (an earlier attempt's): pages of the same shape.
        "programs commit": ("/programs/", {"commit": SOFTWARE_COMMITS[1][:7]}),
        # A campaign's filter; publishers (the lead) see the campaign offer on it.
        "programs commit stale": ("/programs/", {"commit": SOFTWARE_COMMITS[1][:5], "stale": "yes"}),
        "programs stale": ("/programs/", {"stale": "yes"}),
        "proposals": ("/proposals/", {}),
        "proposal": ("/proposals/pid_2_7/", {}),
        "charts": ("/charts/", {}),
        "program": (f"/programs/{program_id}/", {}),
    }


def fill(programs: int) -> int:
    """OPs with the data and history the app would give them; returns the number of events."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from inversions.models import Inversion
    from ops.history import Actor, EventRequest, record_events
    from ops.models import Dataset, Experiment, InstrumentProgram, ObservingProgram, Proposal
    from ops.states import ActorKind, State

    now = timezone.now()
    lead = get_user_model().objects.create_user("lead", password="bench-password-1")
    # The lead reads every page with the buttons of the inverters' and publishers' roles (the
    # programs table offers publishers a campaign).
    lead.groups.add(Group.objects.get_or_create(name="inverters")[0])
    lead.groups.add(Group.objects.get_or_create(name="publishers")[0])
    count = min(PROPOSALS, programs)
    proposals = [Proposal(id=f"pid_2_{n}", cycle=2, number=n) for n in range(1, count + 1)]
    experiments = [
        Experiment(id=f"eid_2_{n}", cycle=2, number=n, description=f"Sunspot penumbra study {n}. " * 8)
        for n in range(1, count + 1)
    ]
    Proposal.objects.bulk_create(proposals)
    Experiment.objects.bulk_create(experiments)
    ops = [
        ObservingProgram(
            id=f"eid_2_{n % count + 1}_opBench_R001.{n}.1",
            proposal=proposals[n % count],
            experiment=experiments[n % count],
            dataset_count=DATASETS_PER_PROGRAM,
            newest_dataset_created_at=now - timedelta(days=30 + n % 700),
        )
        for n in range(programs)
    ]
    ObservingProgram.objects.bulk_create(ops, batch_size=BATCH)
    ips = [
        InstrumentProgram(id=f"id.{n}.1", program=op, instrument="VISP" if n % 4 else "VBI")
        for n, op in enumerate(ops)
    ]
    InstrumentProgram.objects.bulk_create(ips, batch_size=BATCH)
    Dataset.objects.bulk_create(
        (
            Dataset(
                id=f"D{n:06d}{k}",
                instrument_program=ip,
                program=ip.program,
                proposal=ip.program.proposal,
                instrument_name=ip.instrument,
                create_date=ip.program.newest_dataset_created_at,
                update_date=ip.program.newest_dataset_created_at,
                start_time=ip.program.newest_dataset_created_at,
                bounding_box="(-448.35,346.49),(-501.23,268.64)",
                stokes_parameters="IQUV",
                wavelength_min=629.9,
                wavelength_max=630.6,
                spectral_lines=["Fe I (630.25 nm)"],
                frame_count=444,
                health_good=444,
                gos_open=444,
                ao_locked=400 - n % 100,
                fried_parameter={"min": 0.02, "p25": 0.06, "med": 0.08, "p75": 0.1, "max": 0.14},
                light_level={"min": 380, "p25": 388, "med": 392, "p75": 398, "max": 404},
                raw={},
            )
            for n, ip in enumerate(ips)
            for k in range(DATASETS_PER_PROGRAM)
        ),
        batch_size=BATCH,
    )
    ids = [op.pk for op in ops]
    ids.sort()
    events = 0
    invertible = []
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        discovered = [EventRequest(program_id, State.DISCOVERED) for program_id in chunk]
        events += len(record_events(requests=discovered, actor=Actor(ActorKind.SCANNER)))
        # A verdict, then information events (new reports), up to ten events per OP.
        verdicts = [
            EventRequest(program_id, State.INVERTIBLE if n % 5 == 0 else State.NOT_INVERTIBLE)
            for n, program_id in enumerate(chunk, start)
        ]
        invertible += [request.program_id for request in verdicts if request.to_state == State.INVERTIBLE]
        for _ in range(EVENTS_PER_PROGRAM - 1):
            events += len(record_events(requests=verdicts, actor=Actor(ActorKind.QUALIFIER)))
        log(f"  {start + len(chunk)} OPs, {events} events")
    events += _work(invertible[::4], lead=lead)
    # Every other OP with attempts is stale: the scan's information event, in its state.
    stale = ObservingProgram.objects.filter(pk__in=invertible[::8]).values_list("pk", "state")
    marks = [
        EventRequest(program_id, State(state), {"stale": {"datasets": [], "fields": ["updateDate"]}})
        for program_id, state in stale
    ]
    events += len(record_events(requests=marks, actor=Actor(ActorKind.SCANNER)))
    for n, program_id in enumerate(invertible):
        score = round(40 + (n * 37) % 600 / 10, 1)
        ObservingProgram.objects.filter(pk=program_id).update(
            score=score,
            score_parts={
                "score": score,
                "instrument_program_id": f"id.{program_id}",
                "parts": {"ao": {"value": 0.9, "scaled": 0.6, "weight": 3.0}},
            },
        )
    log(f"  {Inversion.objects.count()} attempts, {events} events")
    return events


def _work(program_ids: list[str], *, lead) -> int:
    """Move the OPs along the work, each stopping at the next of WORK_STOPS, with attempts."""
    from django.utils import timezone

    from inversions.models import Inversion
    from ops.history import Actor, EventRequest, record_events
    from ops.states import ActorKind, State

    stops = {program_id: WORK_STOPS[n % len(WORK_STOPS)] for n, program_id in enumerate(program_ids)}
    now = timezone.now()
    # Each OP's current attempt, reported done with a commit once past "working"; and an earlier
    # attempt of each, reported with another commit and ended: about 10 attempts per 100 OPs.
    Inversion.objects.bulk_create(
        [
            Inversion(
                program_id=program_id,
                owner=lead,
                queue_position=n,
                **(
                    {"reported_at": now, "software_commit": SOFTWARE_COMMITS[n % len(SOFTWARE_COMMITS)]}
                    if stops[program_id] in REPORTED_STOPS
                    else {}
                ),
                **(
                    {"ended_at": now, "end_reason": Inversion.EndReason.PUBLISHED}
                    if stops[program_id] == "published"
                    else {}
                ),
            )
            for n, program_id in enumerate(program_ids)
        ]
        + [
            Inversion(
                program_id=program_id,
                owner=lead,
                reported_at=now - timedelta(days=200),
                software_commit=SOFTWARE_COMMITS[(n + 1) % len(SOFTWARE_COMMITS)],
                ended_at=now - timedelta(days=190),
                end_reason=Inversion.EndReason.PUBLISHED,
            )
            for n, program_id in enumerate(program_ids)
        ]
    )
    events = 0
    moving = set(program_ids)
    for state, actor in WORK_PATH:
        requests = [EventRequest(program_id, State(state)) for program_id in sorted(moving)]
        events += len(record_events(requests=requests, actor=Actor(ActorKind(actor), lead)))
        moving = {program_id for program_id in moving if stops[program_id] != state}
        if state == "preprocessing":
            failed = [program_id for program_id in moving if stops[program_id] == "error"]
            errors = [EventRequest(program_id, State.ERROR) for program_id in failed]
            events += len(record_events(requests=errors, actor=Actor(ActorKind.WORKER)))
            moving -= set(failed)
    return events


def measure(client, url: str, params: dict[str, str], *, repeats: int) -> tuple[list[float], int]:
    """Server times of repeated requests for one page, and the SQL queries one request makes."""
    from django.db import connection

    queries = []
    with connection.execute_wrapper(lambda execute, sql, *args: queries.append(sql) or execute(sql, *args)):
        response = client.get(url, params)
    assert response.status_code == 200, (url, params, response.status_code)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url, params)
        times.append(time.perf_counter() - started)
    return times, len(queries)


def run(programs: int, *, repeats: int) -> tuple[int, dict[str, tuple[list[float], int]]]:
    """Migrate and fill the (empty) configured database, then measure every page."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    events = fill(programs)
    log(f"{programs} OPs filled in {time.perf_counter() - started:.1f} s")
    # As after autovacuum in production: a freshly filled table would otherwise be vacuumed
    # in the middle of the measurements.
    with connections["default"].cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    client = Client()
    client.force_login(get_user_model().objects.get(username="lead"))
    return events, {
        name: measure(client, url, params, repeats=repeats) for name, (url, params) in pages().items()
    }


def main() -> None:
    programs = int(os.environ.get("BENCH_PROGRAMS") or DEFAULT_PROGRAMS)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "level2.settings")
    from django.conf import settings

    configured = dict(settings.DATABASES["default"])
    bench_name = os.environ.get("BENCH_DATABASE") or f"{configured['NAME']}_bench_pages"
    settings.DATABASES["default"]["NAME"] = bench_name
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.DEBUG = False
    django.setup()
    from django.db import connections

    # No setup_test_environment(): its template instrumentation (a signal per template
    # rendered) is no part of a production request and cost a third of the programs page.
    log(
        f"bench.pages: {SMALL_PROGRAMS} then {programs} OPs, {EVENTS_PER_PROGRAM} events each;"
        f" database {bench_name}"
    )
    try:
        recreate_database(configured, bench_name)
        _, small = run(SMALL_PROGRAMS, repeats=1)
        connections.close_all()
        recreate_database(configured, bench_name)
        events, large = run(programs, repeats=int(os.environ.get("BENCH_REQUESTS") or REQUESTS_PER_PAGE))
    finally:
        connections.close_all()
        recreate_database(configured, bench_name, create=False)
    figures = {}
    for name, (times, queries) in large.items():
        p95 = statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0]
        small_queries = small[name][1]
        figures[name] = {
            "p50_ms": round(statistics.median(times) * 1e3, 1),
            "p95_ms": round(p95 * 1e3, 1),
            "queries": queries,
            "queries_small": small_queries,
        }
        log(
            f"{name:>22}: p50 {figures[name]['p50_ms']:6.1f} ms, p95 {figures[name]['p95_ms']:6.1f} ms, "
            f"{queries} queries ({small_queries} at {SMALL_PROGRAMS} OPs)"
            + ("" if queries == small_queries else "  ← grows with the data")
        )
    result = {
        "programs": programs,
        "events": events,
        "worst_p95_ms": max(page["p95_ms"] for page in figures.values()),
        "queries_constant": all(page["queries"] == page["queries_small"] for page in figures.values()),
        "pages": figures,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
