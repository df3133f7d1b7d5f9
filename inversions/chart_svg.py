"""Geometry of the pipeline charts: pure functions from the series of ``inversions.charts`` to
SVG coordinates and path strings. templates/inversions/charts.html draws them; nothing here
touches the database. The linear scales and their ticks are ops.plots' (the program page's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ops.plots import nice_scale
from ops.states import WORK_STARTED_STATES, State

# SVG user units: drawn at this size, shrunk with the container (viewBox, width 100 %).
WIDTH = 720
HEIGHT = 280
LEFT = 64  # room for the y tick labels and the y axis title
RIGHT = 28  # room for the last time label, centred on its point
TOP = 12
BOTTOM = 44  # room for the x tick labels and the x axis title
MOST_TIME_LABELS = 7
BAR_SHARE = 0.7  # of a bucket's width; the rest is the gap between bars
# The duration chart: one row per state, its name left of the bars.
DURATION_LABEL_WIDTH = 130
DURATION_ROW_HEIGHT = 24
# Count axes reach at least this far, so that one or two OPs do not get ticks of 0.2.
SMALLEST_COUNT_TOP = 4
# A bar this many times taller than every other (the first scan finds every OP at once) is cut
# at the axis' top, which then fits the others, and marked with its number.
CLIP_RATIO = 10
CLIP_HEADROOM = 1.25  # the axis' top over the tallest bar not cut

STATE_LABELS = dict(State.choices)

TIME_FORMATS = {
    "minute": "%H:%M",
    "hour": "%d %b %H:%M",
    "day": "%d %b",
    "week": "%d %b",
    "month": "%b %Y",
}

# (unit, seconds per unit, the longest p90 shown in it)
DURATION_UNITS = (
    ("seconds", 1, 120),
    ("minutes", 60, 2 * 3600),
    ("hours", 3600, 2 * 86400),
)
LONGEST_DURATION_UNIT = ("days", 86400)


@dataclass(frozen=True)
class AxisTick:
    at: float  # along its axis, in SVG units
    label: str


@dataclass(frozen=True)
class Layer:
    """One state's shape: an area band or its bars, as one path."""

    state: str
    label: str
    path: str


class _PlotArea:
    """What both kinds of chart place by their plot area and height."""

    left: float
    right: float
    height: int

    @property
    def middle(self) -> float:
        return (self.left + self.right) / 2

    @property
    def x_title_y(self) -> float:
        return self.height - 6


@dataclass(frozen=True)
class ClippedBar:
    """A bar cut at the top of the axis: where its break mark goes, and its real total."""

    x: float  # the bar's middle
    y: float  # the top of the plot area
    width: float
    total: int

    @property
    def label_y(self) -> float:
        return self.y + 14

    @property
    def mark(self) -> str:
        """A zigzag across the bar just under its top: the usual sign of an axis break."""
        left, right, y = self.x - self.width / 2 - 2, self.x + self.width / 2 + 2, self.y + 4
        return f"M{_point(left, y + 2)} L{_point(self.x, y - 2)} L{_point(right, y + 2)}"


@dataclass(frozen=True)
class TimeChart(_PlotArea):
    """A stacked chart over time: ``layers`` bottom to top, ``rows`` its numbers per time."""

    kind: str  # "area" or "bars"
    title: str
    y_title: str
    x_title: str
    layers: tuple[Layer, ...]
    y_ticks: tuple[AxisTick, ...]
    x_ticks: tuple[AxisTick, ...]
    rows: tuple[tuple[str, tuple[int, ...]], ...]  # (time label, value per layer)
    clipped: tuple[ClippedBar, ...] = ()
    width: int = WIDTH
    height: int = HEIGHT

    left = LEFT
    right = WIDTH - RIGHT
    top = TOP
    bottom = HEIGHT - BOTTOM

    @property
    def y_title_x(self) -> float:
        return 12

    @property
    def y_title_y(self) -> float:
        return (self.top + self.bottom) / 2

    @property
    def total(self) -> int:
        return sum(sum(values) for _, values in self.rows)


def _count_scale(highest: float, *, bottom: float, top: float):
    return nice_scale(0, max(highest, SMALLEST_COUNT_TOP), left=bottom, right=top)


def _bar_ceiling(totals: Sequence[int]) -> int:
    """The count the bars' axis reaches: the tallest bar, unless it dwarfs all others; then
    a little above the tallest of those, and the taller bars are cut."""
    ordered = sorted(totals, reverse=True)
    if len(ordered) > 1 and ordered[1] and ordered[0] > CLIP_RATIO * ordered[1]:
        return math.ceil(max(ordered[1] * CLIP_HEADROOM, SMALLEST_COUNT_TOP))
    return ordered[0] if ordered else 0


def _time_ticks(labels: Sequence[str], positions: Sequence[float]) -> tuple[AxisTick, ...]:
    """At most MOST_TIME_LABELS labels, evenly picked, the last one always shown."""
    step = max(1, math.ceil(len(labels) / MOST_TIME_LABELS))
    picked = set(range(len(labels) - 1, -1, -step))
    return tuple(AxisTick(positions[i], labels[i]) for i in sorted(picked))


def _ordered(series: Mapping[str, Sequence[int]]) -> list[tuple[str, Sequence[int]]]:
    """The layers with something to draw, in the pipeline's order (State's), bottom first."""
    order = {state.value: index for index, state in enumerate(State)}
    kept = [(state, values) for state, values in series.items() if any(values)]
    return sorted(kept, key=lambda item: order.get(item[0], len(order)))


def _point(x: float, y: float) -> str:
    return f"{x:.1f},{y:.1f}"


def stacked_area(
    *, title: str, y_title: str, x_title: str, labels: Sequence[str], series: Mapping[str, Sequence[int]]
) -> TimeChart:
    """Bands stacked per state over the points ``labels`` (each series has one value per label)."""
    layers_data = _ordered(series)
    count = len(labels)
    left, right, top, bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    xs = [left + (right - left) * (i / (count - 1) if count > 1 else 0.5) for i in range(count)]
    totals = [sum(values[i] for _, values in layers_data) for i in range(count)]
    scale = _count_scale(max(totals, default=0), bottom=bottom, top=top)
    below = [0] * count
    layers = []
    for state, values in layers_data:
        above = [below[i] + values[i] for i in range(count)]
        upper = [_point(xs[i], scale.x(above[i])) for i in range(count)]
        lower = [_point(xs[i], scale.x(below[i])) for i in reversed(range(count))]
        path = "M" + " L".join(upper + lower) + " Z"
        layers.append(Layer(state, STATE_LABELS.get(state, state), path))
        below = above
    return TimeChart(
        kind="area",
        title=title,
        y_title=y_title,
        x_title=x_title,
        layers=tuple(layers),
        y_ticks=tuple(AxisTick(tick.x, tick.label) for tick in scale.ticks),
        x_ticks=_time_ticks(labels, xs),
        rows=tuple((labels[i], tuple(values[i] for _, values in layers_data)) for i in range(count)),
    )


def stacked_bars(
    *, title: str, y_title: str, x_title: str, labels: Sequence[str], series: Mapping[str, Sequence[int]]
) -> TimeChart:
    """A bar per label, its parts stacked per state; one path of rectangles per state."""
    layers_data = _ordered(series)
    count = len(labels)
    left, right, top, bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    slot = (right - left) / max(count, 1)
    bar = slot * BAR_SHARE
    lefts = [left + slot * i + (slot - bar) / 2 for i in range(count)]
    totals = [sum(values[i] for _, values in layers_data) for i in range(count)]
    ceiling = _bar_ceiling(totals)
    scale = _count_scale(ceiling, bottom=bottom, top=top)
    highest = scale.high  # the axis' top, a whole tick at or above the ceiling
    below = [0] * count
    layers = []
    for state, values in layers_data:
        rectangles = []
        for i in range(count):
            low, high = min(below[i], highest), min(below[i] + values[i], highest)
            if high > low:
                y_low, y_high = scale.x(low), scale.x(high)
                rectangles.append(f"M{_point(lefts[i], y_low)} h{bar:.1f} V{y_high:.1f} h{-bar:.1f} Z")
            below[i] += values[i]
        layers.append(Layer(state, STATE_LABELS.get(state, state), " ".join(rectangles)))
    clipped = tuple(
        ClippedBar(x=lefts[i] + bar / 2, y=scale.x(highest), width=bar, total=totals[i])
        for i in range(count)
        if totals[i] > highest
    )
    return TimeChart(
        kind="bars",
        title=title,
        y_title=y_title,
        x_title=x_title,
        layers=tuple(layers),
        y_ticks=tuple(AxisTick(tick.x, tick.label) for tick in scale.ticks),
        x_ticks=_time_ticks(labels, [x + bar / 2 for x in lefts]),
        rows=tuple((labels[i], tuple(values[i] for _, values in layers_data)) for i in range(count)),
        clipped=clipped,
    )


@dataclass(frozen=True)
class DurationRow:
    state: str
    label: str
    stays: int
    median: float  # in the chart's unit
    p90: float
    y: float  # the row's middle
    median_width: float
    p90_x: float

    @property
    def bar_top(self) -> float:
        return self.y - DURATION_ROW_HEIGHT * 0.3

    @property
    def bar_height(self) -> float:
        return DURATION_ROW_HEIGHT * 0.6

    @property
    def whisker_top(self) -> float:
        return self.y - DURATION_ROW_HEIGHT * 0.4

    @property
    def whisker_bottom(self) -> float:
        return self.y + DURATION_ROW_HEIGHT * 0.4


@dataclass(frozen=True)
class DurationChart(_PlotArea):
    """Per state, a bar to the median stay and a mark at the 90th percentile."""

    title: str
    unit: str
    rows: tuple[DurationRow, ...]
    x_ticks: tuple[AxisTick, ...]
    height: int
    width: int = WIDTH

    left = DURATION_LABEL_WIDTH
    right = WIDTH - RIGHT
    top = TOP

    @property
    def bottom(self) -> float:
        return self.height - BOTTOM

    @property
    def label_x(self) -> float:
        return self.left - 8


def duration_unit(longest_seconds: float) -> tuple[str, int]:
    """The unit (name, seconds) that shows durations up to ``longest_seconds`` readably."""
    for name, seconds, longest in DURATION_UNITS:
        if longest_seconds < longest:
            return name, seconds
    return LONGEST_DURATION_UNIT


def duration_bars(*, title: str, durations: Sequence) -> DurationChart:
    """``durations``: objects with state, stays, median_seconds and p90_seconds."""
    unit, seconds = duration_unit(max((d.p90_seconds for d in durations), default=0))
    height = TOP + len(durations) * DURATION_ROW_HEIGHT + BOTTOM
    left, right = DURATION_LABEL_WIDTH, WIDTH - RIGHT
    highest = max((d.p90_seconds / seconds for d in durations), default=0)
    scale = nice_scale(0, highest or 1, left=left, right=right)
    rows = []
    for index, duration in enumerate(durations):
        median, p90 = duration.median_seconds / seconds, duration.p90_seconds / seconds
        rows.append(
            DurationRow(
                state=duration.state,
                label=STATE_LABELS.get(duration.state, duration.state),
                stays=duration.stays,
                median=median,
                p90=p90,
                y=TOP + (index + 0.5) * DURATION_ROW_HEIGHT,
                median_width=round(scale.x(median) - left, 2),
                p90_x=scale.x(p90),
            )
        )
    return DurationChart(
        title=title,
        unit=unit,
        rows=tuple(rows),
        x_ticks=tuple(AxisTick(tick.x, tick.label) for tick in scale.ticks),
        height=height,
    )


def time_labels(starts: Sequence[datetime], unit: str) -> list[str]:
    """A label per bucket start, in the detail its unit needs (UTC)."""
    if unit == "quarter":
        return [f"Q{(start.month - 1) // 3 + 1} {start.year}" for start in starts]
    return [f"{start:{TIME_FORMATS[unit]}}" for start in starts]


# The states of the work under way, drawn apart: beside thousands of discovered and
# not-invertible OPs they would be slivers.
WORK_STATES = (WORK_STARTED_STATES - {State.PUBLISHED}) | {State.ERROR}


@dataclass(frozen=True)
class PipelineCharts:
    in_state: TimeChart
    in_work: TimeChart
    entered: TimeChart
    overdue: TimeChart
    durations: DurationChart


def pipeline_charts(history) -> PipelineCharts:
    """The page's charts from an ``inversions.charts.PipelineHistory``.

    The area charts have a point at each bucket start and one for now: the count at a start
    is the count at the end of the bucket before, and 0 before the first bucket.
    """
    buckets = time_labels(history.starts, history.unit)
    points = [*buckets, "now"]
    x_title = f"time (UTC), a point per {history.unit}"

    def at_points(series: Mapping[str, Sequence[int]]) -> dict[str, list[int]]:
        return {state: [0, *values] for state, values in series.items()}

    in_state = at_points(history.in_state)
    return PipelineCharts(
        in_state=stacked_area(
            title="OPs per state", y_title="OPs", x_title=x_title, labels=points, series=in_state
        ),
        in_work=stacked_area(
            title="OPs in the work",
            y_title="OPs",
            x_title=x_title,
            labels=points,
            series={state: values for state, values in in_state.items() if state in WORK_STATES},
        ),
        entered=stacked_bars(
            title=f"OPs entering each state per {history.unit}",
            y_title="OPs",
            x_title=f"time (UTC), a bar per {history.unit}",
            labels=buckets,
            series=history.entered,
        ),
        overdue=stacked_area(
            title="Overdue OPs",
            y_title="OPs",
            x_title=x_title,
            labels=points,
            series=at_points(history.overdue),
        ),
        durations=duration_bars(title="Time spent in each state", durations=history.durations),
    )
