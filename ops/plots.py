"""Geometry of the program page's box plots: pure functions from five-number summaries
({min, p25, med, p75, max}, as the store gives lightLevel and friedParameter) to SVG
coordinates. templates/ops/box_plot.html draws them; nothing here touches the database.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FIVE_KEYS = ("min", "p25", "med", "p75", "max")

# SVG user units (the SVG is drawn at this size and shrinks with its container).
WIDTH = 420
LABEL_WIDTH = 80
RIGHT_MARGIN = 16
ROW_HEIGHT = 16
BOX_HEIGHT = 10
AXIS_HEIGHT = 34


@dataclass(frozen=True)
class FiveNumbers:
    min: float
    p25: float
    med: float
    p75: float
    max: float

    def values(self) -> tuple[float, float, float, float, float]:
        return (self.min, self.p25, self.med, self.p75, self.max)


def five_numbers(block: Any, *, factor: float = 1.0) -> FiveNumbers | str:
    """The summary times ``factor`` (metres → cm, say), or why it cannot be drawn."""
    if not isinstance(block, Mapping) or not block:
        return "not given"
    values = [block.get(key) for key in FIVE_KEYS]
    if not all(isinstance(value, int | float) and not isinstance(value, bool) for value in values):
        return "not given"
    if not all(math.isfinite(value) for value in values):
        return "not given"
    if any(low > high for low, high in itertools.pairwise(values)):
        return "values out of order"
    return FiveNumbers(*(value * factor for value in values))


def tick_step(span: float, *, target_ticks: int = 5) -> tuple[float, int]:
    """The step of 1, 2 or 5 times a power of ten whose tick count over ``span`` is nearest
    ``target_ticks`` (ties to the larger step), and the decimals its labels need."""
    exponent = math.floor(math.log10(span / max(target_ticks - 1, 1)))
    candidates = [
        (multiplier, power) for power in (exponent - 1, exponent, exponent + 1) for multiplier in (1, 2, 5)
    ]
    multiplier, power = min(
        candidates,
        key=lambda step: (
            abs(span / (step[0] * 10.0 ** step[1]) - (target_ticks - 1)),
            -step[0] * 10.0 ** step[1],
        ),
    )
    return multiplier * 10.0**power, max(0, -power)


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Scale:
    """A linear map of [low, high] onto [left, right] SVG units, with its ticks."""

    low: float
    high: float
    left: float
    right: float
    ticks: tuple[Tick, ...]

    def x(self, value: float) -> float:
        return round(self.left + (value - self.low) / (self.high - self.low) * (self.right - self.left), 2)


def nice_scale(low: float, high: float, *, left: float, right: float) -> Scale:
    """The data range widened to whole ticks; a single value gets a range around it."""
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    step, decimals = tick_step(high - low)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    axis_low, axis_high = first * step, last * step
    scale = Scale(axis_low, axis_high, left, right, ())
    ticks = tuple(Tick(scale.x(n * step), f"{n * step:.{decimals}f}") for n in range(first, last + 1))
    return Scale(axis_low, axis_high, left, right, ticks)


@dataclass(frozen=True)
class BoxRow:
    """One dataset's row: its box and whiskers in SVG units, or why there is none."""

    label: str
    y: float
    numbers: FiveNumbers | None
    missing: str = ""
    x_min: float = 0
    x_p25: float = 0
    x_med: float = 0
    x_p75: float = 0
    x_max: float = 0

    @property
    def box_top(self) -> float:
        return self.y - BOX_HEIGHT / 2

    @property
    def box_bottom(self) -> float:
        return self.y + BOX_HEIGHT / 2

    @property
    def box_width(self) -> float:
        return round(self.x_p75 - self.x_p25, 2)

    @property
    def box_height(self) -> float:
        return BOX_HEIGHT


@dataclass(frozen=True)
class BoxPlot:
    title: str
    unit: str
    rows: tuple[BoxRow, ...]
    scale: Scale | None
    width: int
    height: int

    @property
    def axis_y(self) -> float:
        return self.height - AXIS_HEIGHT

    @property
    def plot_left(self) -> float:
        return LABEL_WIDTH

    @property
    def plot_right(self) -> float:
        return WIDTH - RIGHT_MARGIN

    @property
    def plot_middle(self) -> float:
        return (LABEL_WIDTH + WIDTH - RIGHT_MARGIN) / 2

    @property
    def label_x(self) -> float:
        return LABEL_WIDTH - 6

    @property
    def tick_bottom(self) -> float:
        return self.axis_y + 4

    @property
    def tick_label_y(self) -> float:
        return self.axis_y + 14

    @property
    def unit_label_y(self) -> float:
        return self.axis_y + 29


def box_plot(*, title: str, unit: str, series: Sequence[tuple[str, Any]], factor: float = 1.0) -> BoxPlot:
    """A plot with one row per ``(label, five-number block)`` on one shared axis."""
    parsed = [(label, five_numbers(block, factor=factor)) for label, block in series]
    drawn = [numbers for _, numbers in parsed if isinstance(numbers, FiveNumbers)]
    height = len(parsed) * ROW_HEIGHT + AXIS_HEIGHT + 4
    scale = (
        nice_scale(
            min(numbers.min for numbers in drawn),
            max(numbers.max for numbers in drawn),
            left=LABEL_WIDTH,
            right=WIDTH - RIGHT_MARGIN,
        )
        if drawn
        else None
    )
    rows = []
    for index, (label, numbers) in enumerate(parsed):
        y = 4 + index * ROW_HEIGHT + ROW_HEIGHT / 2
        if isinstance(numbers, FiveNumbers) and scale is not None:
            x_min, x_p25, x_med, x_p75, x_max = (scale.x(value) for value in numbers.values())
            rows.append(BoxRow(label, y, numbers, "", x_min, x_p25, x_med, x_p75, x_max))
        else:
            rows.append(BoxRow(label, y, None, str(numbers)))
    return BoxPlot(title, unit, tuple(rows), scale, WIDTH, height)
