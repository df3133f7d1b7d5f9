"""The box plots' geometry (ops.plots): five numbers, ticks, scale and boxes."""

import math

import pytest

from ops.plots import (
    LABEL_WIDTH,
    RIGHT_MARGIN,
    WIDTH,
    FiveNumbers,
    box_plot,
    five_numbers,
    nice_scale,
    tick_step,
)

R0 = {"min": 0.0165, "p25": 0.0304, "med": 0.0396, "p75": 0.0656, "max": 0.1065}


def test_five_numbers_are_read_and_scaled():
    assert five_numbers(R0, factor=100) == FiveNumbers(
        pytest.approx(1.65),
        pytest.approx(3.04),
        pytest.approx(3.96),
        pytest.approx(6.56),
        pytest.approx(10.65),
    )


@pytest.mark.parametrize(
    "block",
    [None, {}, "0.04", {"min": 1, "p25": 2, "med": 3, "p75": 4}, {**R0, "med": None}, {**R0, "max": "big"}],
)
def test_missing_or_partial_numbers_are_not_given(block):
    assert five_numbers(block) == "not given"


def test_not_a_number_and_infinity_are_not_given():
    assert five_numbers({**R0, "max": math.inf}) == "not given"
    assert five_numbers({**R0, "min": math.nan}) == "not given"
    assert five_numbers({**R0, "med": True}) == "not given"


def test_numbers_out_of_order_are_refused_rather_than_drawn_inside_out():
    assert five_numbers({**R0, "p25": 0.05}) == "values out of order"


@pytest.mark.parametrize(
    ("span", "step", "decimals"),
    [
        (10, 2, 0),
        (9, 2, 0),
        (12.35, 5, 0),
        (4, 1, 0),
        (1, 0.2, 1),
        (0.3, 0.1, 1),
        (0.09, 0.02, 2),
        (2000, 500, 0),
    ],
)
def test_tick_steps_are_one_two_or_five_times_a_power_of_ten(span, step, decimals):
    assert tick_step(span) == (pytest.approx(step), decimals)


def test_the_scale_ends_on_whole_ticks_around_the_data():
    scale = nice_scale(1.65, 10.65, left=100, right=500)
    assert [tick.label for tick in scale.ticks] == ["0", "2", "4", "6", "8", "10", "12"]
    assert scale.low == 0 and scale.high == 12
    assert scale.x(0) == 100 and scale.x(12) == 500 and scale.x(6) == 300
    assert [tick.x for tick in scale.ticks] == sorted(tick.x for tick in scale.ticks)


def test_decimal_ticks_are_labelled_without_float_noise():
    scale = nice_scale(469.09, 469.75, left=0, right=100)
    assert [tick.label for tick in scale.ticks] == ["469.0", "469.2", "469.4", "469.6", "469.8"]


def test_a_single_value_still_gets_an_axis_around_it():
    scale = nice_scale(470.0, 470.0, left=0, right=100)
    assert scale.low < 470 < scale.high
    assert len(scale.ticks) >= 2


def test_boxes_lie_on_the_shared_axis_in_order():
    plot = box_plot(
        title="r0",
        unit="cm",
        series=[("A", R0), ("B", {"min": 0.02, "p25": 0.05, "med": 0.08, "p75": 0.1, "max": 0.14})],
        factor=100,
    )
    left, right = LABEL_WIDTH, WIDTH - RIGHT_MARGIN
    assert plot.scale.ticks[0].x == left and plot.scale.ticks[-1].x == right
    for row in plot.rows:
        xs = [row.x_min, row.x_p25, row.x_med, row.x_p75, row.x_max]
        assert xs == sorted(xs) and left <= xs[0] and xs[-1] <= right
        assert row.box_width == pytest.approx(row.x_p75 - row.x_p25)
    a, b = plot.rows
    assert a.x_max < b.x_max  # 10.65 cm against 14 cm, on the same axis
    assert b.x_max == plot.scale.x(14)
    assert a.y < b.y and b.y < plot.axis_y < plot.height


def test_a_missing_row_keeps_its_place_and_says_why():
    plot = box_plot(title="light", unit="", series=[("A", None), ("B", R0), ("C", {**R0, "p25": 1})])
    assert [row.label for row in plot.rows] == ["A", "B", "C"]
    assert [row.missing for row in plot.rows] == ["not given", "", "values out of order"]
    assert plot.rows[0].numbers is None and plot.rows[1].numbers is not None


def test_no_numbers_at_all_gives_no_axis():
    plot = box_plot(title="light", unit="", series=[("A", None)])
    assert plot.scale is None
    assert plot.rows[0].missing == "not given"
