"""The pipeline charts page: its SQL aggregates on a known history (counts per state over time,
entering counts, durations, overdue), the bucket choice, the cache, the page and its partial."""

import datetime as dt

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inversions import charts
from ops.history import Actor, record_event
from ops.states import ActorKind, State
from tests.factories import ObservingProgramFactory, program_in_state

pytestmark = pytest.mark.django_db

CHARTS = "/charts/"
T0 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=dt.UTC)  # a Monday
HOUR = dt.timedelta(hours=1)
SCANNER, QUALIFIER, INVERTER = Actor(ActorKind.SCANNER), Actor(ActorKind.QUALIFIER), Actor(ActorKind.INVERTER)


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def event_at(moment: dt.datetime, program, state: State, actor: Actor) -> None:
    with time_machine.travel(moment, tick=False):
        record_event(program_id=program.pk, to_state=state, actor=actor)


@pytest.fixture
def history():
    """Two OPs over four hours (buckets of an hour from 10:00):

    a: discovered 10:00, invertible 11:00, queued 13:00
    b: discovered 10:30, not_invertible 12:00, and again at 12:30 (an information event)
    """
    a, b = ObservingProgramFactory(), ObservingProgramFactory()
    event_at(T0, a, State.DISCOVERED, SCANNER)
    event_at(T0 + HOUR / 2, b, State.DISCOVERED, SCANNER)
    event_at(T0 + HOUR, a, State.INVERTIBLE, QUALIFIER)
    event_at(T0 + 2 * HOUR, b, State.NOT_INVERTIBLE, QUALIFIER)
    event_at(T0 + 2.5 * HOUR, b, State.NOT_INVERTIBLE, QUALIFIER)
    event_at(T0 + 3 * HOUR, a, State.QUEUED, INVERTER)
    return a, b


def test_ops_per_state_at_the_end_of_each_bucket(history):
    result = charts.compute_history(now=T0 + 4.5 * HOUR, unit="hour")

    assert result.starts == [T0 + n * HOUR for n in range(5)]
    assert result.in_state == {
        "discovered": [2, 1, 0, 0, 0],
        "invertible": [0, 1, 1, 0, 0],
        "not_invertible": [0, 0, 1, 1, 1],
        "queued": [0, 0, 0, 1, 1],
    }


def test_ops_entering_each_state_per_bucket_without_information_events(history):
    result = charts.compute_history(now=T0 + 4.5 * HOUR, unit="hour")

    assert result.entered == {
        "discovered": [2, 0, 0, 0, 0],
        "invertible": [0, 1, 0, 0, 0],
        "not_invertible": [0, 0, 1, 0, 0],
        "queued": [0, 0, 0, 1, 0],
    }


def test_events_after_now_are_left_out(history):
    result = charts.compute_history(now=T0 + 2.5 * HOUR, unit="hour")

    assert result.starts == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert result.in_state["invertible"] == [0, 1, 1]
    assert "queued" not in result.in_state


def test_median_and_p90_of_the_stays_that_ended(history):
    result = charts.compute_history(now=T0 + 4.5 * HOUR, unit="hour")

    # discovered: 1 h (a) and 1.5 h (b); invertible: 2 h (a); the rest have not ended.
    assert result.durations == [
        charts.StateDuration("discovered", 2, 4500.0, 3600 + 0.9 * 1800),
        charts.StateDuration("invertible", 1, 7200.0, 7200.0),
    ]


def test_overdue_over_time_counts_stays_longer_than_expected_until_they_end(history, settings):
    settings.LEVEL2_EXPECTED_DAYS = {"invertible": 1 / 24, "queued": 1 / 24}

    result = charts.compute_history(now=T0 + 4.5 * HOUR, unit="hour")

    # a: invertible 11:00-13:00, overdue from 12:00 to 13:00; queued from 13:00, overdue from 14:00.
    assert result.overdue == {"invertible": [0, 0, 1, 0, 0], "queued": [0, 0, 0, 0, 1]}


def test_overdue_now_per_state_with_an_expectation(history, settings):
    settings.LEVEL2_EXPECTED_DAYS = {"invertible": 1 / 24, "queued": 1 / 24}

    assert charts.overdue_now(now=T0 + 4.5 * HOUR) == [
        charts.OverdueCount("invertible", 0, 1 / 24),
        charts.OverdueCount("queued", 1, 1 / 24),
    ]
    assert charts.overdue_now(now=T0 + 3.5 * HOUR)[1].count == 0


@pytest.mark.parametrize(
    ("span", "unit"),
    [
        (dt.timedelta(minutes=30), "minute"),
        (dt.timedelta(hours=5), "hour"),
        (dt.timedelta(days=10), "day"),
        (dt.timedelta(days=200), "week"),
        (dt.timedelta(days=1000), "month"),
        (dt.timedelta(days=3000), "quarter"),
    ],
)
def test_the_bucket_follows_the_span_of_the_history(span, unit):
    assert charts.bucket_unit(span) == unit


@pytest.mark.parametrize("unit", ["minute", "hour", "day", "week", "month", "quarter"])
def test_the_cache_key_bucket_is_the_databases_date_trunc(unit):
    moment = dt.datetime(2025, 8, 14, 17, 42, 31, tzinfo=dt.UTC)  # a Thursday in Q3
    with connection.cursor() as cursor:
        cursor.execute("SELECT date_trunc(%s, %s::timestamptz)", [unit, moment])
        assert charts._bucket_start(moment, unit) == cursor.fetchone()[0]


def test_a_young_history_gets_buckets_of_a_minute():
    event_at(T0, ObservingProgramFactory(), State.DISCOVERED, SCANNER)

    result = charts.pipeline_history(now=T0 + dt.timedelta(minutes=20))

    assert result.unit == "minute"
    assert len(result.starts) == 21


def test_the_span_runs_from_the_first_event(history):
    assert charts.pipeline_history(now=T0 + 4 * HOUR).unit == "hour"


def test_months_and_quarters_bucket_a_long_history(history):
    result = charts.compute_history(now=T0 + dt.timedelta(days=100), unit="quarter")

    assert result.starts == [dt.datetime(2025, 1, 1, tzinfo=dt.UTC), dt.datetime(2025, 4, 1, tzinfo=dt.UTC)]
    assert result.in_state["queued"] == [1, 1]


def test_no_history_is_none():
    ObservingProgramFactory()
    assert charts.pipeline_history(now=T0) is None
    assert charts.charts_data(now=T0).history is None


def test_the_history_is_cached_until_a_new_event(history):
    now = T0 + 4.5 * HOUR
    first = charts.pipeline_history(now=now)
    with CaptureQueriesContext(connection) as queries:
        assert charts.pipeline_history(now=now) == first
    assert len(queries) == 1  # the newest event id only

    event_at(T0 + 4 * HOUR, history[0], State.INVERTIBLE, INVERTER)

    assert charts.pipeline_history(now=now).in_state["queued"][-1] == 0


def test_login_required(client):
    response = client.get(CHARTS)
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


def test_the_page_draws_each_chart_with_its_legend_and_numbers(viewer_client, history):
    with time_machine.travel(T0 + 4.5 * HOUR, tick=False):
        response = viewer_client.get(CHARTS)
    html = response.content.decode()

    assert response.status_code == 200
    assert 'href="/static/level2/charts.css"' in html
    assert html.count('role="img"') == 4
    assert "No OP has been overdue." in html  # the fifth: nothing to draw with the default expectations
    for title in ("OPs per state", "OPs in the work", "OPs entering each state per hour", "Time spent"):
        assert title in html
    assert '<path class="state-not_invertible"' in html
    assert '<span class="swatch state-queued"></span>queued' in html
    # OPs per state at 13:00: invertible a and not-invertible b.
    assert '<th scope="row">03 Mar 13:00</th><td>0</td><td>1</td><td>1</td><td>0</td>' in html
    assert 'hx-trigger="every 30s" data-poll="visible"' in html


def test_overdue_now_links_to_the_programs_table(viewer_client, history, settings):
    settings.LEVEL2_EXPECTED_DAYS = {"queued": 1 / 24}
    with time_machine.travel(T0 + 4.5 * HOUR, tick=False):
        html = viewer_client.get(CHARTS).content.decode()

    assert '<a class="overdue" href="/programs/?state=queued&amp;sort=state_age">1</a>' in html


def test_htmx_gets_the_charts_partial_alone(viewer_client, history):
    response = viewer_client.get(CHARTS, headers={"HX-Request": "true"})
    html = response.content.decode()

    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="charts"')
    assert "<html" not in html
    assert "Vary" in response and "HX-Request" in response["Vary"]


def test_an_empty_history_says_what_will_fill_it(viewer_client):
    html = viewer_client.get(CHARTS).content.decode()

    assert "No history yet" in html
    assert 'role="img"' not in html


def page_queries(client) -> int:
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHARTS).status_code == 200
    return len(queries)


def test_the_same_queries_for_2_and_for_20_ops(viewer_client):
    for state in (State.QUEUED, State.ERROR):
        program_in_state(state)
    few = page_queries(viewer_client)
    for n in range(18):
        program_in_state([State.NOT_INVERTIBLE, State.WORKING, State.PUBLISHED][n % 3])

    assert page_queries(viewer_client) == few
