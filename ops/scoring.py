"""The ranking of invertible OPs: a quality score from 0 to 100 (docs/ranking.md).

Pure, like ops.qualify: the score of an OP is the best score among its invertible IPs, and an
IP's score is a weighted mean of terms, each a store value mapped linearly onto 0..1 between a
"poor" and a "good" value (settings ``LEVEL2_SCORE_TERMS``). A term the store does not give
(polarimetric accuracy of a Stokes-I dataset, say) is left out of the mean, not counted as 0.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from ops.qualify import BoundingBoxError, DatasetValues, parse_bounding_box, solar_radius_arcsec

AO = "ao"
HEALTH = "health"
R0 = "r0"
POLARIMETRIC = "polarimetric"
ON_DISK_MARGIN = "on_disk_margin"

LABELS = {
    AO: "AO locked",
    HEALTH: "health good",
    R0: "Fried parameter r0 (median)",
    POLARIMETRIC: "polarimetric accuracy (median)",
    ON_DISK_MARGIN: "on-disk margin",
}


@dataclass(frozen=True)
class Term:
    weight: float
    poor: float
    good: float

    def scaled(self, value: float) -> float:
        return min(1.0, max(0.0, (value - self.poor) / (self.good - self.poor)))


def terms_from_settings() -> dict[str, Term]:
    return {name: Term(**values) for name, values in settings.LEVEL2_SCORE_TERMS.items()}


def _median_of_medians(blocks: Sequence[Mapping[str, Any] | None]) -> float | None:
    medians = [block["med"] for block in blocks if block and isinstance(block.get("med"), int | float)]
    return statistics.median(medians) if medians else None


def _mean_fraction(datasets: Sequence[DatasetValues], attribute: str) -> float | None:
    fractions = [
        (getattr(dataset, attribute) or 0) / dataset.frame_count
        for dataset in datasets
        if dataset.frame_count
    ]
    return statistics.fmean(fractions) if fractions else None


def _on_disk_margin(datasets: Sequence[DatasetValues]) -> float | None:
    """The smallest distance of any corner to the limb, as a fraction of the solar radius."""
    margins = []
    for dataset in datasets:
        if dataset.start_time is None:
            return None
        try:
            corners = parse_bounding_box(dataset.bounding_box)
        except BoundingBoxError:
            return None
        (x1, y1), (x2, y2) = corners
        farthest = max(math.hypot(x, y) for x in (x1, x2) for y in (y1, y2))
        margins.append(1 - farthest / solar_radius_arcsec(dataset.start_time.date()))
    return min(margins) if margins else None


def measured_values(datasets: Sequence[DatasetValues]) -> dict[str, float | None]:
    """What the score is built from, for one IP's datasets."""
    return {
        AO: _mean_fraction(datasets, "ao_locked"),
        HEALTH: _mean_fraction(datasets, "health_good"),
        R0: _median_of_medians([dataset.fried_parameter for dataset in datasets]),
        POLARIMETRIC: _median_of_medians([dataset.polarimetric_accuracy for dataset in datasets]),
        ON_DISK_MARGIN: _on_disk_margin(datasets),
    }


def instrument_program_score(
    datasets: Sequence[DatasetValues], *, terms: Mapping[str, Term]
) -> dict[str, Any] | None:
    """``{"score", "parts": {term: {"value", "scaled", "weight"}}}``, None without any term."""
    parts = {
        name: {
            "value": round(value, 4),
            "scaled": round(terms[name].scaled(value), 4),
            "weight": terms[name].weight,
        }
        for name, value in measured_values(datasets).items()
        if value is not None and name in terms
    }
    total_weight = sum(part["weight"] for part in parts.values())
    if not total_weight:
        return None
    score = 100 * sum(part["scaled"] * part["weight"] for part in parts.values()) / total_weight
    return {"score": round(score, 1), "parts": parts}


def program_score(
    *, report: Mapping[str, Any], datasets: Sequence[DatasetValues], terms: Mapping[str, Term] | None = None
) -> dict[str, Any] | None:
    """The score of the OP's best invertible IP, with that IP's id; None when none is invertible."""
    terms = terms if terms is not None else terms_from_settings()
    by_ip: dict[str, list[DatasetValues]] = {}
    for dataset in datasets:
        by_ip.setdefault(dataset.instrument_program_id, []).append(dataset)
    scores = []
    for ip in report.get("instrument_programs", []):
        if ip["invertible"] and (score := instrument_program_score(by_ip.get(ip["id"], []), terms=terms)):
            scores.append({**score, "instrument_program_id": ip["id"]})
    return max(scores, key=lambda score: score["score"], default=None)
