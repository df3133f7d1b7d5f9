"""Reads of the pipeline charts page (/charts/): the OP history aggregated in SQL.

Every series comes from the append-only event table, grouped into time buckets whose width
follows the span of the history (minute … quarter, ``bucket_unit``), so that a young
installation and one with years of history both get some tens of points.

- OPs per state over time: each state-changing event is +1 for its ``to_state`` and -1 for
  its ``from_state``; a running sum over the buckets gives the count at the end of each.
- OPs entering each state per bucket: the same rows, the +1s alone.
- Time spent in a state: a *stay* runs from a state-changing event to the program's next one
  (``lead()`` over its state-changing events); median and p90 of the stays that ended.
- Overdue over time: a stay in a state with an expectation (LEVEL2_EXPECTED_DAYS) is overdue
  from ``entered + expected days`` until it ends: +1 then, -1 when it ends, summed as above.
- Overdue now: from the OP rows (state, state_since), indexed, never cached.

At 20,000 OPs and 200,000 events the history aggregates take tens of milliseconds each
(they read the whole event table), so ``pipeline_history`` caches them in Django's cache,
keyed on the newest event id (an index-only lookup) and the current bucket: they are
recomputed when the history changed, or when time moved into a new bucket.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count

from inversions.overdue import overdue_filter
from ops.models import ObservingProgram, ProgramEvent
from ops.states import State

EVENTS = ProgramEvent._meta.db_table

# (unit for date_trunc, the longest history it is used for): at most about 70 buckets.
BUCKET_UNITS: tuple[tuple[str, timedelta], ...] = (
    ("minute", timedelta(hours=1)),
    ("hour", timedelta(days=3)),
    ("day", timedelta(days=60)),
    ("week", timedelta(days=366)),
    ("month", timedelta(days=5 * 366)),
)
LONGEST_UNIT = "quarter"
# generate_series steps: PostgreSQL reads no "1 quarter" interval.
BUCKET_STEPS = {unit: f"1 {unit}" for unit, _ in BUCKET_UNITS} | {"quarter": "3 months"}
# Entries are never stale (their key changes with the history); this only frees old ones.
CACHE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class StateDuration:
    state: str
    stays: int  # stays in the state that ended
    median_seconds: float
    p90_seconds: float


@dataclass(frozen=True)
class PipelineHistory:
    """Series over the buckets ``starts`` (each list is aligned with it), as of ``computed_at``."""

    unit: str
    starts: list[datetime]
    computed_at: datetime
    in_state: dict[str, list[int]]  # OPs in each state at the end of each bucket
    entered: dict[str, list[int]]  # OPs entering each state during each bucket
    overdue: dict[str, list[int]]  # overdue OPs per state at the end of each bucket
    durations: list[StateDuration]


@dataclass(frozen=True)
class OverdueCount:
    state: str
    count: int
    expected_days: float


@dataclass(frozen=True)
class ChartsData:
    history: PipelineHistory | None  # None: no event yet
    overdue_now: list[OverdueCount]


def bucket_unit(span: timedelta) -> str:
    """The date_trunc unit of the buckets for a history this long."""
    for unit, longest in BUCKET_UNITS:
        if span <= longest:
            return unit
    return LONGEST_UNIT


def _state_order(states) -> list[str]:
    """The states in the order of the pipeline (State's order), whatever order SQL gave."""
    order = {state.value: index for index, state in enumerate(State)}
    return sorted(states, key=lambda state: order.get(state, len(order)))


def history_bounds() -> tuple[datetime | None, int | None]:
    """When the history began and its newest event id: two index lookups (created_at follows
    the id, since events are only ever appended)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT created_at FROM {EVENTS} ORDER BY id LIMIT 1), (SELECT max(id) FROM {EVENTS})"
        )
        return cursor.fetchone()


def _series(rows, *, starts: list[datetime]) -> dict[str, list[int]]:
    """``(bucket, state, value)`` rows of a full grid → state → values in bucket order."""
    position = {start: index for index, start in enumerate(starts)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(starts))
    for bucket, state, value in rows:
        series[state][position[bucket]] = int(value)
    return {state: series[state] for state in _state_order(series)}


# The buckets run from the first one with a state change to the current one, full grid
# (every bucket and state) so that the running sums cover buckets without events.
STATE_FLOWS_SQL = f"""
WITH moves AS (
    SELECT date_trunc(%(unit)s, event.created_at) AS bucket, move.state,
           sum(move.delta) AS net, count(*) FILTER (WHERE move.delta = 1) AS entered
    FROM {EVENTS} AS event
    CROSS JOIN LATERAL (VALUES (event.to_state, 1), (event.from_state, -1)) AS move (state, delta)
    WHERE event.from_state <> event.to_state AND move.state <> '' AND event.created_at <= %(now)s
    GROUP BY 1, 2
), buckets AS (
    SELECT generate_series(min(bucket), date_trunc(%(unit)s, %(now)s::timestamptz),
                           %(step)s::interval) AS bucket
    FROM moves
), states AS (
    SELECT DISTINCT state FROM moves
)
SELECT buckets.bucket, states.state,
       sum(coalesce(moves.net, 0)) OVER (PARTITION BY states.state ORDER BY buckets.bucket),
       coalesce(moves.entered, 0)
FROM buckets CROSS JOIN states
LEFT JOIN moves ON moves.bucket = buckets.bucket AND moves.state = states.state
ORDER BY 1
"""

# A stay: from one state-changing event of an OP to its next (left_at NULL: still there).
STAYS_SQL = f"""
SELECT to_state AS state, created_at AS entered_at,
       lead(created_at) OVER (PARTITION BY program_id ORDER BY id) AS left_at
FROM {EVENTS}
WHERE from_state <> to_state AND created_at <= %(now)s
"""

DURATIONS_SQL = f"""
WITH stays AS ({STAYS_SQL})
SELECT state, count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM left_at - entered_at)),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM left_at - entered_at))
FROM stays
WHERE left_at IS NOT NULL
GROUP BY state
"""

OVERDUE_SERIES_SQL = f"""
WITH stays AS ({STAYS_SQL}),
expected AS (
    SELECT * FROM unnest(%(states)s::text[], %(days)s::float8[]) AS expected (state, days)
), late AS (
    SELECT stays.state, stays.entered_at + expected.days * interval '1 day' AS due_at, stays.left_at
    FROM stays JOIN expected USING (state)
    WHERE stays.entered_at + expected.days * interval '1 day' < coalesce(stays.left_at, %(now)s)
), moves AS (
    SELECT date_trunc(%(unit)s, move.at) AS bucket, late.state, sum(move.delta) AS net
    FROM late CROSS JOIN LATERAL (VALUES (late.due_at, 1), (late.left_at, -1)) AS move (at, delta)
    WHERE move.at IS NOT NULL
    GROUP BY 1, 2
), buckets AS (
    SELECT generate_series(%(first)s::timestamptz, date_trunc(%(unit)s, %(now)s::timestamptz),
                           %(step)s::interval) AS bucket
), states AS (
    SELECT DISTINCT state FROM moves
)
SELECT buckets.bucket, states.state,
       sum(coalesce(moves.net, 0)) OVER (PARTITION BY states.state ORDER BY buckets.bucket)
FROM buckets CROSS JOIN states
LEFT JOIN moves ON moves.bucket = buckets.bucket AND moves.state = states.state
ORDER BY 1
"""


def compute_history(*, now: datetime, unit: str) -> PipelineHistory | None:
    """The history's series in buckets of ``unit`` up to ``now``; None without state changes."""
    params = {"unit": unit, "step": BUCKET_STEPS[unit], "now": now}
    with connection.cursor() as cursor:
        cursor.execute(STATE_FLOWS_SQL, params)
        flows = cursor.fetchall()
        if not flows:
            return None
        starts = sorted({row[0] for row in flows})
        in_state = _series([(bucket, state, count) for bucket, state, count, _ in flows], starts=starts)
        entered = _series([(bucket, state, count) for bucket, state, _, count in flows], starts=starts)
        cursor.execute(DURATIONS_SQL, params)
        by_state = {row[0]: StateDuration(row[0], row[1], row[2], row[3]) for row in cursor.fetchall()}
        expected = settings.LEVEL2_EXPECTED_DAYS
        cursor.execute(
            OVERDUE_SERIES_SQL,
            {**params, "first": starts[0], "states": list(expected), "days": list(expected.values())},
        )
        overdue = _series(cursor.fetchall(), starts=starts)
    return PipelineHistory(
        unit=unit,
        starts=starts,
        computed_at=now,
        in_state=in_state,
        entered=entered,
        overdue=overdue,
        durations=[by_state[state] for state in _state_order(by_state)],
    )


def pipeline_history(*, now: datetime) -> PipelineHistory | None:
    """``compute_history`` for the whole history, cached on the newest event id and the
    current bucket (see the module's docstring); None when there is no history yet."""
    first_at, newest_id = history_bounds()
    if first_at is None:
        return None
    unit = bucket_unit(now - first_at)
    # The current bucket's start, in the database's own calendar (weeks from Monday, UTC).
    key = f"inversions:charts:{newest_id}:{unit}:{_bucket_start(now, unit):%Y%m%d%H%M}"
    history = cache.get(key)
    if history is None:
        history = compute_history(now=now, unit=unit)
        cache.set(key, history, CACHE_SECONDS)
    return history


def _bucket_start(moment: datetime, unit: str) -> datetime:
    """date_trunc(unit, moment) in UTC, without a query."""
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    if unit == "minute":
        return moment
    moment = moment.replace(minute=0)
    if unit == "hour":
        return moment
    moment = moment.replace(hour=0)
    if unit == "day":
        return moment
    if unit == "week":
        return moment - timedelta(days=moment.weekday())
    moment = moment.replace(day=1)
    if unit == "month":
        return moment
    return moment.replace(month=moment.month - (moment.month - 1) % 3)


def overdue_now(*, now: datetime) -> list[OverdueCount]:
    """Overdue OPs per state with an expectation (zeros included), from the OP rows."""
    counts = dict(
        ObservingProgram.objects.filter(overdue_filter(now=now))
        .values_list("state")
        .annotate(count=Count("id"))
        .order_by()
    )
    return [
        OverdueCount(state, counts.get(state, 0), days)
        for state, days in settings.LEVEL2_EXPECTED_DAYS.items()
    ]


def charts_data(*, now: datetime) -> ChartsData:
    """Everything the charts page shows; the same queries whatever the size of the history."""
    return ChartsData(history=pipeline_history(now=now), overdue_now=overdue_now(now=now))
