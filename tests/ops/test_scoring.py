"""The ranking score of invertible OPs (ops.scoring, docs/ranking.md)."""

import datetime as dt

import pytest

from ops.qualify import DatasetValues
from ops.scoring import Term, instrument_program_score, measured_values, program_score

START = dt.datetime(2025, 7, 4, 18, 0, tzinfo=dt.UTC)  # solar radius about 944″
TERMS = {
    "ao": Term(weight=3, poor=0.75, good=1.0),
    "r0": Term(weight=3, poor=0.03, good=0.15),
    "polarimetric": Term(weight=2, poor=0.9, good=1.0),
    "health": Term(weight=1, poor=0.75, good=1.0),
    "on_disk_margin": Term(weight=1, poor=0.0, good=0.5),
}


def dataset(ip="ip.1", **values):
    fields = {
        "dataset_id": "DS",
        "instrument_program_id": ip,
        "instrument": "VISP",
        "start_time": START,
        "bounding_box": "(0,0),(0,0)",
        "frame_count": 100,
        "health_good": 100,
        "gos_open": 100,
        "ao_locked": 100,
        "fried_parameter": {"med": 0.15},
        "polarimetric_accuracy": {"med": 1.0},
    }
    return DatasetValues(**{**fields, **values})


def report(*ips):
    return {"instrument_programs": [{"id": ip, "invertible": invertible} for ip, invertible in ips]}


def test_perfect_data_score_100_and_the_poor_end_of_every_term_scores_0():
    assert instrument_program_score([dataset()], terms=TERMS)["score"] == 100
    poor = dataset(
        ao_locked=75,
        health_good=75,
        fried_parameter={"med": 0.03},
        polarimetric_accuracy={"med": 0.9},
        bounding_box="(944.5,0),(0,0)",
    )
    assert instrument_program_score([poor], terms=TERMS)["score"] == 0


def test_terms_are_clamped_and_weighted():
    # r0 beyond "good" counts as good; AO halfway (weight 3 of 10) costs 15 points.
    halfway_ao = dataset(ao_locked=87.5, fried_parameter={"med": 0.4})
    score = instrument_program_score([halfway_ao], terms=TERMS)
    assert score["parts"]["r0"] == {"value": 0.4, "scaled": 1.0, "weight": 3}
    assert score["score"] == 85.0


def test_a_term_the_store_does_not_give_is_left_out_not_counted_as_zero():
    without_polarimetry = dataset(polarimetric_accuracy=None)
    score = instrument_program_score([without_polarimetry], terms=TERMS)
    assert "polarimetric" not in score["parts"]
    assert score["score"] == 100


def test_values_combine_over_the_ip_datasets():
    values = measured_values(
        [
            dataset(ao_locked=80, fried_parameter={"med": 0.05}, bounding_box="(472,0),(0,0)"),
            dataset(ao_locked=100, fried_parameter={"med": 0.07}),
            dataset(ao_locked=90, fried_parameter={"med": 0.09}, frame_count=0),
        ]
    )
    assert values["ao"] == pytest.approx(0.9)  # mean of the datasets with frames
    assert values["r0"] == pytest.approx(0.07)  # median of the medians
    assert values["on_disk_margin"] == pytest.approx(0.5, abs=0.001)  # the corner nearest the limb


def test_no_bounding_box_leaves_the_margin_out():
    assert measured_values([dataset(bounding_box="")])["on_disk_margin"] is None


def test_the_op_score_is_its_best_invertible_ip():
    datasets = [dataset("ip.good"), dataset("ip.poor", ao_locked=80), dataset("ip.failed")]
    score = program_score(
        report=report(("ip.good", False), ("ip.poor", True), ("ip.failed", False)),
        datasets=datasets,
        terms=TERMS,
    )
    assert score["instrument_program_id"] == "ip.poor"
    both = program_score(report=report(("ip.good", True), ("ip.poor", True)), datasets=datasets, terms=TERMS)
    assert both["instrument_program_id"] == "ip.good"


def test_an_op_without_an_invertible_ip_has_no_score():
    assert program_score(report=report(("ip.1", False)), datasets=[dataset()], terms=TERMS) is None
