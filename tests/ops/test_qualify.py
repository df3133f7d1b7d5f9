"""The pure qualification rules (ops.qualify): each rule at, below and above its threshold."""

import datetime as dt
import json
from dataclasses import replace

import pytest
from django.test import override_settings

from ops.qualify import (
    BoundingBoxError,
    DatasetValues,
    parse_bounding_box,
    parse_line_name,
    qualify_program,
    solar_radius_arcsec,
)

# A ViSP dataset that passes every rule: on disk, IQUV, all frames good, Fe I 630.25 named.
GOOD = DatasetValues(
    dataset_id="GOOD1",
    instrument_program_id="id.1.1",
    instrument="VISP",
    start_time=dt.datetime(2025, 3, 27, 22, 3, tzinfo=dt.UTC),
    bounding_box="(-448.35,346.49),(-501.23,268.64)",
    stokes_parameters="IQUV",
    wavelength_min=629.71,
    wavelength_max=630.63,
    spectral_lines=("Fe I (630.15 nm)", "Fe I (630.25 nm)"),
    frame_count=400,
    health_good=400,
    gos_open=400,
    ao_locked=400,
)


def ip_report(*datasets: DatasetValues) -> dict:
    report = qualify_program(datasets)
    assert len(report["instrument_programs"]) == 1
    return report["instrument_programs"][0]


def rule(ip: dict, name: str, dataset_id: str | None = "GOOD1") -> dict:
    matches = [r for r in ip["rules"] if r["name"] == name and r["dataset_id"] == dataset_id]
    assert len(matches) == 1, ip["rules"]
    return matches[0]


def test_the_default_dataset_passes_every_rule():
    ip = ip_report(GOOD)
    assert ip["invertible"] is True
    assert ip["failed_rules"] == []
    assert [r["name"] for r in ip["rules"]] == [
        "instrument",
        "on_disk",
        "stokes",
        "health",
        "gos",
        "ao",
        "fe_i_630",
    ]


@pytest.mark.parametrize(
    ("field", "count", "frames", "passed"),
    [
        # 0.75 of 400 frames is 300.
        ("health_good", 300, 400, True),
        ("health_good", 299, 400, False),
        ("health_good", 301, 400, True),
        ("ao_locked", 300, 400, True),
        ("ao_locked", 299, 400, False),
        ("ao_locked", 301, 400, True),
        # 1.0: every frame open; "above" is a count over the frame count, still open.
        ("gos_open", 400, 400, True),
        ("gos_open", 399, 400, False),
        ("gos_open", 401, 400, True),
        # Null counts mean 0.
        ("health_good", None, 400, False),
        ("ao_locked", None, 400, False),
        ("gos_open", None, 400, False),
        # No frames at all: nothing to measure, the rule fails.
        ("health_good", 0, None, False),
        ("ao_locked", 0, 0, False),
    ],
)
def test_frame_fraction_rules_at_below_and_above_threshold(field, count, frames, passed):
    dataset = replace(GOOD, frame_count=frames, **{field: count})
    if frames:
        others = {"health_good": frames, "gos_open": frames, "ao_locked": frames}
        others.pop(field)
        dataset = replace(dataset, **others)
    name = {"health_good": "health", "gos_open": "gos", "ao_locked": "ao"}[field]
    ip = ip_report(dataset)
    assert rule(ip, name)["passed"] is passed
    assert ip["invertible"] is passed
    assert (name in ip["failed_rules"]) is not passed


@pytest.mark.parametrize(
    ("setting", "count", "passed"),
    [
        # 0.7 is not exact in binary: 70 of 100 frames must still pass at 0.7.
        ("LEVEL2_MIN_AO_LOCKED_FRACTION", 70, True),
        ("LEVEL2_MIN_AO_LOCKED_FRACTION", 69, False),
        ("LEVEL2_MIN_HEALTH_GOOD_FRACTION", 70, True),
        ("LEVEL2_MIN_HEALTH_GOOD_FRACTION", 69, False),
    ],
)
def test_thresholds_come_from_settings_at_call_time(setting, count, passed):
    field = {"LEVEL2_MIN_AO_LOCKED_FRACTION": "ao_locked", "LEVEL2_MIN_HEALTH_GOOD_FRACTION": "health_good"}
    dataset = replace(GOOD, frame_count=100, health_good=100, gos_open=100, ao_locked=100)
    dataset = replace(dataset, **{field[setting]: count})
    with override_settings(**{setting: 0.7}):
        assert ip_report(dataset)["invertible"] is passed


def test_gos_threshold_from_settings():
    dataset = replace(GOOD, gos_open=380)  # 95 % open
    assert ip_report(dataset)["failed_rules"] == ["gos"]
    with override_settings(LEVEL2_MIN_GOS_OPEN_FRACTION=0.95):
        assert ip_report(dataset)["invertible"] is True
    with override_settings(LEVEL2_MIN_GOS_OPEN_FRACTION=0.96):
        assert ip_report(dataset)["failed_rules"] == ["gos"]


def test_a_failed_fraction_reads_as_a_sentence():
    ip = ip_report(replace(GOOD, frame_count=100, health_good=100, gos_open=100, ao_locked=61))
    ao = rule(ip, "ao")
    assert ao["message"] == "AO locked 61 % < 75 % (61 of 100 frames)"
    assert (ao["measured"], ao["threshold"], ao["passed"]) == (0.61, 0.75, False)


@pytest.mark.parametrize(
    ("stokes", "passed"),
    [
        ("IQUV", True),
        ("QUIV", True),  # the rule is the set I, Q, U, V in any order
        ("VUQI", True),
        ("iquv", True),
        ("I", False),
        ("IQU", False),
        ("IQUVV", False),
        ("IQUA", False),
        ("", False),
        (None, False),
    ],
)
def test_stokes_is_exactly_i_q_u_v_in_any_order(stokes, passed):
    ip = ip_report(replace(GOOD, stokes_parameters=stokes))
    assert rule(ip, "stokes")["passed"] is passed
    assert ip["failed_rules"] == ([] if passed else ["stokes"])


@pytest.mark.parametrize(
    ("day", "radius"),
    [
        (dt.date(2025, 1, 3), 976.396),  # perihelion: the largest Sun
        (dt.date(2025, 7, 4), 944.321),  # day 185, near aphelion
        (dt.date(2024, 7, 3), 944.321),  # leap year: day 185 again
    ],
)
def test_solar_radius_by_day_of_year(day, radius):
    assert solar_radius_arcsec(day) == pytest.approx(radius, abs=0.001)


@pytest.mark.parametrize(
    ("text", "corners"),
    [
        ("(-448.35,346.49),(-501.23,268.64)", ((-448.35, 346.49), (-501.23, 268.64))),
        (" ( -950 , 310 ) , ( -900.5 ,-20 ) ", ((-950.0, 310.0), (-900.5, -20.0))),
        ("(+1e2,0),(0,-1.5E1)", ((100.0, 0.0), (0.0, -15.0))),
    ],
)
def test_bounding_boxes_parse_with_signs_and_spaces(text, corners):
    assert parse_bounding_box(text) == corners


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("(NaN,NaN),(NaN,NaN)", "contains NaN"),
        ("(-448.35,nan),(-501.23,268.64)", "contains NaN"),
        ("", "no bounding box"),
        (None, "no bounding box"),
        ("(1,2)", "not of the form"),
        ("(a,2),(3,4)", "not a number"),
        ("(inf,2),(3,4)", "infinite"),
    ],
)
def test_unusable_bounding_boxes_fail_on_disk_with_the_reason(text, reason):
    with pytest.raises(BoundingBoxError, match=reason):
        parse_bounding_box(text)
    ip = ip_report(replace(GOOD, bounding_box=text))
    on_disk = rule(ip, "on_disk")
    assert on_disk["passed"] is False
    assert reason in on_disk["message"]
    assert ip["failed_rules"] == ["on_disk"]


def test_a_box_too_far_out_to_measure_fails_on_disk_with_no_number_json_cannot_hold():
    # Both corners parse, but their distance from centre overflows a float.
    text = "(1.7e308,1.7e308),(-1.7e308,0)"
    ip = ip_report(replace(GOOD, bounding_box=text))
    on_disk = rule(ip, "on_disk")
    assert (on_disk["passed"], on_disk["measured"], on_disk["threshold"]) == (False, None, None)
    assert on_disk["message"] == f"bounding box {text!r} has a corner too far from centre to measure"
    assert ip["failed_rules"] == ["on_disk"]
    json.dumps(ip, allow_nan=False)


# sqrt(940² + 200²) = 961.0″: inside 976.4″ (3 January), outside 944.3″ (4 July).
NEAR_LIMB = "(-940,200),(-900,150)"


@pytest.mark.parametrize(
    ("start", "passed"),
    [
        (dt.datetime(2025, 1, 5, 18, 0, tzinfo=dt.UTC), True),
        (dt.datetime(2025, 7, 4, 18, 0, tzinfo=dt.UTC), False),
    ],
)
def test_the_same_near_limb_box_is_on_disk_in_january_and_off_disk_in_july(start, passed):
    on_disk = rule(ip_report(replace(GOOD, bounding_box=NEAR_LIMB, start_time=start)), "on_disk")
    assert on_disk["passed"] is passed
    assert on_disk["measured"] == pytest.approx(961.04, abs=0.01)
    if not passed:
        assert on_disk["message"] == (
            "corner (-940,200) is 961.0″ from centre, solar radius on 2025-07-04 is 944.3″"
        )


def test_on_disk_at_just_below_and_just_above_the_radius():
    start = dt.datetime(2025, 1, 3, 12, tzinfo=dt.UTC)
    radius = solar_radius_arcsec(start.date())
    for x, passed in [(radius - 0.01, True), (radius, False), (radius + 0.01, False)]:
        box = f"({-x},0),(-10,0)"
        assert (
            rule(ip_report(replace(GOOD, bounding_box=box, start_time=start)), "on_disk")["passed"] is passed
        )


def test_on_disk_checks_the_two_implied_corners_too():
    # The given corners (-900,0) and (0,-900) are on disk; the implied (-900,-900) is not.
    ip = ip_report(replace(GOOD, bounding_box="(-900,0),(0,-900)"))
    assert rule(ip, "on_disk")["passed"] is False
    assert "corner (-900,-900)" in rule(ip, "on_disk")["message"]


def test_on_disk_without_a_start_time_fails():
    assert rule(ip_report(replace(GOOD, start_time=None)), "on_disk")["passed"] is False


@pytest.mark.parametrize(
    ("text", "label", "wavelength"),
    [
        ("Fe I (630.25 nm)", "Fe I", 630.25),
        ("Ca II (854.21 nm)", "Ca II", 854.21),
        ("Na I D1 (589.59 nm)", "Na I D1", 589.59),
        ("H alpha (656.28 nm)", "H alpha", 656.28),
        ("  Fe  I  ( 630.15  nm ) ", "Fe I", 630.15),
    ],
)
def test_line_names_parse_into_label_and_wavelength(text, label, wavelength):
    parsed = parse_line_name(text)
    assert (parsed.label, parsed.wavelength_nm) == (label, wavelength)


def test_unreadable_line_names_parse_to_none():
    assert parse_line_name("Fe I") is None
    assert parse_line_name("630.25 nm") is None


@pytest.mark.parametrize(
    ("names", "observed"),
    [
        (["Fe I (630.25 nm)"], True),
        (["Fe I (630.15 nm)"], True),
        (["Fe I (630.70 nm)"], True),  # 0.5 nm away: at the slack
        (["Fe I (629.70 nm)"], True),
        (["Fe I (630.71 nm)"], False),  # just beyond the slack
        (["Fe II (630.25 nm)"], False),  # another ion
        (["Ca II (854.21 nm)"], False),
        (["Na I D1 (589.59 nm)", "Fe I (630.25 nm)"], True),
        (["Fe I"], False),  # names without a wavelength say nothing; the range is not used
    ],
)
def test_fe_i_630_from_spectral_line_names(names, observed):
    # The range would contain 630.2 nm: names, when present, decide alone.
    ip = ip_report(replace(GOOD, spectral_lines=tuple(names), wavelength_min=629.0, wavelength_max=631.0))
    assert rule(ip, "fe_i_630", None)["passed"] is observed
    assert ip["failed_rules"] == ([] if observed else ["fe_i_630"])


@pytest.mark.parametrize(
    ("low", "high", "observed"),
    [
        (629.71, 630.63, True),
        (630.7, 631.5, True),  # 630.2 is 0.5 below the minimum: at the slack
        (630.71, 631.5, False),  # just beyond
        (629.0, 629.7, True),
        (629.0, 629.69, False),
        (853.57, 854.72, False),
        (None, None, False),
    ],
)
@pytest.mark.parametrize("no_names", [None, ()])
def test_fe_i_630_from_the_wavelength_range_when_names_are_absent(low, high, observed, no_names):
    ip = ip_report(replace(GOOD, spectral_lines=no_names, wavelength_min=low, wavelength_max=high))
    assert rule(ip, "fe_i_630", None)["passed"] is observed


def test_line_slack_comes_from_settings():
    dataset = replace(GOOD, spectral_lines=None, wavelength_min=630.9, wavelength_max=631.5)
    assert ip_report(dataset)["failed_rules"] == ["fe_i_630"]
    with override_settings(LEVEL2_LINE_SLACK_NM=0.7):
        assert ip_report(dataset)["invertible"] is True


def test_fe_i_630_across_the_ip_datasets_and_optional_lines_reported():
    calcium = replace(GOOD, dataset_id="CA", spectral_lines=("Ca II (854.21 nm)",))
    sodium = replace(GOOD, dataset_id="NA", spectral_lines=("Na I D1 (589.59 nm)",))
    iron = replace(GOOD, dataset_id="FE")
    ip = ip_report(calcium, sodium, iron)
    assert ip["invertible"] is True
    assert ip["dataset_ids"] == ["CA", "FE", "NA"]
    lines = {line["name"]: line for line in ip["lines"]}
    assert lines["fe_i_630"] == {
        "name": "fe_i_630",
        "ion": "Fe I",
        "wavelength_nm": 630.2,
        "required": True,
        "observed": True,
        "dataset_ids": ["FE"],
    }
    assert (lines["ca_ii_854"]["observed"], lines["ca_ii_854"]["required"]) == (True, False)
    assert lines["ca_ii_849"]["observed"] is False

    # Without the iron dataset the IP fails; missing optional lines never fail it.
    without_iron = ip_report(calcium, sodium)
    assert without_iron["failed_rules"] == ["fe_i_630"]
    assert ip_report(iron)["invertible"] is True


def test_one_bad_dataset_fails_its_ip():
    ip = ip_report(GOOD, replace(GOOD, dataset_id="BAD", ao_locked=10, stokes_parameters="I"))
    assert ip["invertible"] is False
    assert ip["failed_rules"] == ["stokes", "ao"]
    assert rule(ip, "ao", "GOOD1")["passed"] is True
    assert rule(ip, "ao", "BAD")["passed"] is False


def test_an_op_is_invertible_when_one_visp_ip_passes():
    good = replace(GOOD, instrument_program_id="id.2.good")
    bad = replace(GOOD, dataset_id="BAD", instrument_program_id="id.1.bad", health_good=0)
    report = qualify_program([good, bad])
    assert report["invertible"] is True
    assert [(ip["id"], ip["invertible"], ip["failed_rules"]) for ip in report["instrument_programs"]] == [
        ("id.1.bad", False, ["health"]),
        ("id.2.good", True, []),
    ]
    assert qualify_program([bad])["invertible"] is False


def test_other_instruments_are_not_supported():
    vbi = replace(GOOD, instrument="VBI", stokes_parameters="I")
    report = qualify_program([vbi])
    assert report["invertible"] is False
    (ip,) = report["instrument_programs"]
    assert ip["failed_rules"] == ["instrument"]
    assert ip["rules"][0]["message"].startswith("VBI: instrument not supported")
    with override_settings(LEVEL2_INVERTIBLE_INSTRUMENTS=["VISP", "VBI"]):
        assert qualify_program([vbi])["instrument_programs"][0]["failed_rules"] == ["stokes"]


def test_an_op_without_datasets_is_not_invertible():
    assert qualify_program([]) == {"invertible": False, "instrument_programs": []}


def test_the_report_is_json_and_independent_of_input_order():
    datasets = [
        replace(GOOD, dataset_id=f"D{n}", instrument_program_id=f"id.{n % 2}", ao_locked=n * 100)
        for n in range(4)
    ]
    report = qualify_program(datasets)
    assert report == qualify_program(list(reversed(datasets)))
    assert json.loads(json.dumps(report)) == report
