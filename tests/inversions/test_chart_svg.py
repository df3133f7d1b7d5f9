"""The pipeline charts' geometry (inversions.chart_svg): stacked bands and bars, axes, durations."""

import datetime as dt
import re

from inversions import chart_svg
from inversions.chart_svg import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH
from inversions.charts import PipelineHistory, StateDuration

PLOT_BOTTOM = HEIGHT - BOTTOM


def points(path: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", path)]


def test_bands_stack_in_the_pipelines_order_and_reach_the_total():
    chart = chart_svg.stacked_area(
        title="OPs per state",
        y_title="OPs",
        x_title="time",
        labels=["10:00", "11:00", "now"],
        series={"queued": [0, 1, 2], "discovered": [0, 3, 2], "error": [0, 0, 0]},
    )

    assert [layer.state for layer in chart.layers] == ["discovered", "queued"]  # error: nothing to draw
    assert [tick.label for tick in chart.y_ticks] == ["0", "1", "2", "3", "4"]
    scale = {float(tick.label): tick.at for tick in chart.y_ticks}
    discovered, queued = (points(layer.path) for layer in chart.layers)
    # Upper edge left to right, then the lower edge back.
    assert discovered == [
        (LEFT, PLOT_BOTTOM),
        ((LEFT + WIDTH - RIGHT) / 2, scale[3]),
        (WIDTH - RIGHT, scale[2]),
        (WIDTH - RIGHT, PLOT_BOTTOM),
        ((LEFT + WIDTH - RIGHT) / 2, PLOT_BOTTOM),
        (LEFT, PLOT_BOTTOM),
    ]
    assert [y for _, y in queued[:3]] == [PLOT_BOTTOM, scale[4], scale[4]]
    assert [y for _, y in queued[3:]] == [scale[2], scale[3], PLOT_BOTTOM]
    assert scale[4] == TOP
    assert chart.rows == (("10:00", (0, 0)), ("11:00", (3, 1)), ("now", (2, 2)))


def test_bars_sit_on_the_layers_below_them():
    chart = chart_svg.stacked_bars(
        title="entering",
        y_title="OPs",
        x_title="time",
        labels=["a", "b"],
        series={"invertible": [2, 0], "discovered": [6, 1]},
    )

    discovered, invertible = chart.layers
    assert discovered.path.count("M") == 2 and invertible.path.count("M") == 1
    y = {float(tick.label): tick.at for tick in chart.y_ticks}
    # One rectangle: from the top of discovered (6) up to 8.
    x, bottom = points(invertible.path)[0]
    assert bottom == y[6]
    assert f"V{y[8]:.1f}" in invertible.path
    slot = (WIDTH - RIGHT - LEFT) / 2
    assert x == round(LEFT + slot * (1 - chart_svg.BAR_SHARE) / 2, 1)


def test_time_ticks_are_few_and_keep_the_last():
    labels = [f"{n}" for n in range(40)]
    ticks = chart_svg._time_ticks(labels, list(range(40)))

    assert len(ticks) <= chart_svg.MOST_TIME_LABELS
    assert ticks[-1].label == "39"
    assert chart_svg._time_ticks(["only"], [5.0]) == (chart_svg.AxisTick(5.0, "only"),)


def test_durations_in_a_readable_unit_with_median_bars_and_p90_marks():
    chart = chart_svg.duration_bars(
        title="Time spent",
        durations=[
            StateDuration("discovered", 20, median_seconds=2 * 86400, p90_seconds=4 * 86400),
            StateDuration("queued", 3, median_seconds=86400, p90_seconds=8 * 86400),
        ],
    )

    assert chart.unit == "days"
    discovered, queued = chart.rows
    x = {float(tick.label): tick.at for tick in chart.x_ticks}
    assert (discovered.median, discovered.p90) == (2, 4)
    assert discovered.median_width == round(x[2] - chart.left, 2)
    assert queued.p90_x == x[8]
    assert queued.y - discovered.y == chart_svg.DURATION_ROW_HEIGHT


def test_the_duration_unit_follows_the_longest_p90():
    assert chart_svg.duration_unit(30) == ("seconds", 1)
    assert chart_svg.duration_unit(600) == ("minutes", 60)
    assert chart_svg.duration_unit(5 * 3600) == ("hours", 3600)
    assert chart_svg.duration_unit(3 * 86400) == ("days", 86400)


def test_time_labels_per_unit():
    start = dt.datetime(2025, 8, 14, 17, 42, tzinfo=dt.UTC)
    assert chart_svg.time_labels([start], "minute") == ["17:42"]
    assert chart_svg.time_labels([start], "day") == ["14 Aug"]
    assert chart_svg.time_labels([start], "month") == ["Aug 2025"]
    assert chart_svg.time_labels([start], "quarter") == ["Q3 2025"]


def test_the_page_charts_start_from_zero_and_keep_the_work_apart():
    starts = [dt.datetime(2025, 3, 3, hour, tzinfo=dt.UTC) for hour in (10, 11)]
    history = PipelineHistory(
        unit="hour",
        starts=starts,
        computed_at=starts[1],
        in_state={"not_invertible": [5, 9], "queued": [1, 2]},
        entered={"not_invertible": [5, 4], "queued": [1, 1]},
        overdue={},
        durations=[],
    )

    page = chart_svg.pipeline_charts(history)

    assert page.in_state.rows == (("03 Mar 10:00", (0, 0)), ("03 Mar 11:00", (5, 1)), ("now", (9, 2)))
    assert [layer.state for layer in page.in_work.layers] == ["queued"]
    assert [label for label, _ in page.entered.rows] == ["03 Mar 10:00", "03 Mar 11:00"]
    assert page.entered.title == "OPs entering each state per hour"
    assert page.overdue.layers == () and page.durations.rows == ()


def test_a_bar_that_dwarfs_the_others_is_cut_at_the_top_and_marked_with_its_number():
    chart = chart_svg.stacked_bars(
        title="entering",
        y_title="OPs",
        x_title="time",
        labels=["first scan", "b", "c"],
        series={"discovered": [790, 6, 2], "invertible": [22, 2, 0]},
    )

    # The axis fits the other bars (8 OPs), not the first one's 812.
    assert [tick.label for tick in chart.y_ticks][-1] == "10"
    discovered, invertible = chart.layers
    assert all(y >= TOP for _, y in points(discovered.path))
    assert invertible.path.count("M") == 1  # the first bar's invertible part lies above the cut
    (cut,) = chart.clipped
    assert cut.total == 812 and cut.y == TOP
    assert chart.rows[0] == ("first scan", (790, 22))  # the numbers stay whole


def test_bars_of_like_heights_are_not_cut():
    chart = chart_svg.stacked_bars(
        title="entering", y_title="OPs", x_title="time", labels=["a", "b"], series={"discovered": [80, 9]}
    )
    assert chart.clipped == () and [tick.label for tick in chart.y_ticks][-1] == "80"
