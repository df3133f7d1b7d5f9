"""The qualification rules (DESIGN.md, "Qualification rules"): pure functions from dataset
values to a report. Nothing here touches the database: ops.qualification reads the Dataset
rows and hands the rules ``DatasetValues``.

The report is plain JSON (dicts, lists, strings, numbers, booleans, None) in a fixed order,
so that "the report changed" is ``old == new``. Its shape is documented in
docs/programs-export.md and in ``qualify_program``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from math import hypot
from operator import attrgetter
from typing import Any

from django.conf import settings

# Rule names, in the order reports list them.
INSTRUMENT = "instrument"
ON_DISK = "on_disk"
STOKES = "stokes"
HEALTH = "health"
GOS = "gos"
AO = "ao"

AU_KM = 149.6e6
SOLAR_RADIUS_KM = 696340.0
ORBIT_ECCENTRICITY = 0.0167
PERIHELION_DAY_OF_YEAR = 3
ARCSEC_PER_RADIAN = 206265.0
# Wavelength sums such as 629.7 + 0.5 are not exact in binary floating point.
WAVELENGTH_TOLERANCE_NM = 1e-9


# Slots: a scan makes one per new dataset, and a frozen dataclass sets each field through
# object.__setattr__, which slots make cheaper.
@dataclass(frozen=True, slots=True)
class DatasetValues:
    """What the rules read of one dataset. Counts of None mean 0, as in the store's JSON."""

    dataset_id: str
    instrument_program_id: str
    instrument: str
    start_time: datetime | None = None
    bounding_box: str | None = None
    stokes_parameters: str | None = None
    wavelength_min: float | None = None
    wavelength_max: float | None = None
    spectral_lines: Sequence[str] | None = None
    frame_count: int | None = None
    health_good: int | None = None
    gos_open: int | None = None
    ao_locked: int | None = None
    # Not read by the rules: the ranking (ops.scoring) uses them. min/p25/med/p75/max blocks.
    fried_parameter: dict[str, Any] | None = None
    polarimetric_accuracy: dict[str, Any] | None = None


@dataclass(frozen=True)
class Line:
    """A spectral line the rules look for; ``name`` is its rule / report name."""

    name: str
    ion: str
    wavelength_nm: float
    required: bool


@dataclass(frozen=True)
class Thresholds:
    min_health_good_fraction: float
    min_gos_open_fraction: float
    min_ao_locked_fraction: float
    line_slack_nm: float
    required_stokes: str
    invertible_instruments: tuple[str, ...]
    lines: tuple[Line, ...]

    @classmethod
    def from_settings(cls) -> Thresholds:
        """Read at call time, so that settings overrides (and tests) take effect."""
        return cls(
            min_health_good_fraction=settings.LEVEL2_MIN_HEALTH_GOOD_FRACTION,
            min_gos_open_fraction=settings.LEVEL2_MIN_GOS_OPEN_FRACTION,
            min_ao_locked_fraction=settings.LEVEL2_MIN_AO_LOCKED_FRACTION,
            line_slack_nm=settings.LEVEL2_LINE_SLACK_NM,
            required_stokes=settings.LEVEL2_REQUIRED_STOKES,
            invertible_instruments=tuple(name.upper() for name in settings.LEVEL2_INVERTIBLE_INSTRUMENTS),
            lines=tuple(
                [
                    Line(name, ion, wavelength, True)
                    for name, ion, wavelength in settings.LEVEL2_REQUIRED_LINES
                ]
                + [
                    Line(name, ion, wavelength, False)
                    for name, ion, wavelength in settings.LEVEL2_OPTIONAL_LINES
                ]
            ),
        )

    @functools.cached_property
    def _rules(self) -> _Rules:
        """What the rules need of these thresholds: worked out once (hashing the thresholds
        to look them up costs microseconds, which count once for every OP)."""
        return _rules_for(self)

    @property
    def required_line_names(self) -> list[str]:
        return [line.name for line in self.lines if line.required]


def rule_order(thresholds: Thresholds) -> list[str]:
    return [INSTRUMENT, ON_DISK, STOKES, HEALTH, GOS, AO, *thresholds.required_line_names]


def _rule(
    name: str, dataset_id: str | None, passed: bool, measured: Any, threshold: Any, message: str
) -> dict[str, Any]:
    """One rule's entry in a report: for one dataset, or for the whole IP (``dataset_id`` None)."""
    return {
        "name": name,
        "dataset_id": dataset_id,
        "passed": passed,
        "measured": measured,
        "threshold": threshold,
        "message": message,
    }


# --- on disk -------------------------------------------------------------------------------


# Cached: the datasets of a scan start on a few thousand days, and the rules ask once per dataset.
@functools.lru_cache(maxsize=4096)
def solar_radius_arcsec(day: date) -> float:
    """The apparent solar radius seen from Earth on ``day``, by DESIGN.md's formula."""
    day_of_year = day.timetuple().tm_yday
    distance_km = AU_KM * (
        1 - ORBIT_ECCENTRICITY * math.cos(2 * math.pi * (day_of_year - PERIHELION_DAY_OF_YEAR) / 365)
    )
    return math.atan(SOLAR_RADIUS_KM / distance_km) * ARCSEC_PER_RADIAN


@dataclass(frozen=True)
class _Day:
    """What the on-disk rule says of a start day: the radius, and as reports show them."""

    iso: str
    radius: float
    radius_rounded: float
    radius_text: str


@functools.lru_cache(maxsize=4096)
def _day(day: date) -> _Day:
    radius = solar_radius_arcsec(day)
    return _Day(day.isoformat(), radius, round(radius, 2), f"{radius:.1f}")


class BoundingBoxError(ValueError):
    """A bounding box that gives no usable corners; the message says why, for the report."""


_BOX = re.compile(r"^\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)\s*,\s*\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)$")
# The store's own form, without spaces: where it matches, _BOX gives the same groups, but its
# lazy groups and spaces make it try every character (three times the time of this one).
_PLAIN_BOX = re.compile(r"\(([-+0-9.eE]+),([-+0-9.eE]+)\),\(([-+0-9.eE]+),([-+0-9.eE]+)\)")


def parse_bounding_box(text: str | None) -> tuple[tuple[float, float], tuple[float, float]]:
    """``"(x1,y1),(x2,y2)"`` in arcsec → its two corners; spaces and signs allowed."""
    if text is None or not (stripped := text.strip()):
        raise BoundingBoxError("no bounding box")
    match = _PLAIN_BOX.fullmatch(stripped) or _BOX.match(stripped)
    if match is None:
        raise BoundingBoxError(f"bounding box {text!r} is not of the form (x1,y1),(x2,y2)")
    try:
        x1, y1, x2, y2 = map(float, match.groups())
    except ValueError:
        raise BoundingBoxError(f"bounding box {text!r} has a value that is not a number") from None
    # Times zero, a finite number is zero and an infinite one NaN: one test for the four.
    if not math.isfinite(x1 * 0.0 + y1 * 0.0 + x2 * 0.0 + y2 * 0.0):
        if math.isnan(x1) or math.isnan(y1) or math.isnan(x2) or math.isnan(y2):
            raise BoundingBoxError(f"bounding box {text!r} contains NaN")
        raise BoundingBoxError(f"bounding box {text!r} contains an infinite value")
    return (x1, y1), (x2, y2)


def _number(value: float) -> str:
    return f"{value:g}"


def _on_disk_rule(dataset: DatasetValues) -> dict[str, Any]:
    """Every corner of the (axis-aligned) box strictly inside the solar radius of the start day.

    The store gives two opposite corners; the other two, (x1,y2) and (x2,y1), are checked too,
    since the farthest corner from disk centre may be one of them.
    """
    try:
        (x1, y1), (x2, y2) = parse_bounding_box(dataset.bounding_box)
    except BoundingBoxError as error:
        return _rule(ON_DISK, dataset.dataset_id, False, None, None, str(error))
    if dataset.start_time is None:
        return _rule(ON_DISK, dataset.dataset_id, False, None, None, "no start time: solar radius unknown")
    day = _day(dataset.start_time.date())
    # The farthest corner; of equally far ones, the first in the order (x1,y1), (x2,y2),
    # (x1,y2), (x2,y1) (written out: a loop over the corners cost more than the rule).
    x, y, distance = x1, y1, hypot(x1, y1)
    if (corner := hypot(x2, y2)) > distance:
        x, y, distance = x2, y2, corner
    if (corner := hypot(x1, y2)) > distance:
        x, y, distance = x1, y2, corner
    if (corner := hypot(x2, y1)) > distance:
        x, y, distance = x2, y1, corner
    if distance == math.inf:
        # Corners near the largest float: no distance to report (JSON has no infinity).
        message = f"bounding box {dataset.bounding_box!r} has a corner too far from centre to measure"
        return _rule(ON_DISK, dataset.dataset_id, False, None, None, message)
    if distance < day.radius:
        message = (
            f"corner ({x:g},{y:g}) is {distance:.1f}″ from centre,"
            f" inside the solar radius on {day.iso} of {day.radius_text}″"
        )
        return _rule(ON_DISK, dataset.dataset_id, True, round(distance, 2), day.radius_rounded, message)
    message = (
        f"corner ({x:g},{y:g}) is {distance:.1f}″ from centre,"
        f" solar radius on {day.iso} is {day.radius_text}″"
    )
    return _rule(ON_DISK, dataset.dataset_id, False, round(distance, 2), day.radius_rounded, message)


# --- Stokes and frame counts ------------------------------------------------------------------


# Cached: a store writes the same few values ("IQUV", "I") in every dataset.
@functools.lru_cache(maxsize=4096)
def _stokes(text: str | None, required: str) -> tuple[str, bool, str]:
    """Exactly the required parameters, in any order ("QUIV" passes; "IQU", "IQUVV" fail):
    what was measured, whether it passes, the report's message."""
    measured = (text or "").strip()
    letters = sorted(char for char in measured.upper() if char.isalpha())
    passed = letters == sorted(required.upper())
    shown = measured or "none"
    message = (
        f"Stokes {shown} is exactly {required}" if passed else f"Stokes {shown} is not exactly {required}"
    )
    return measured, passed, message


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}".removesuffix(".0") + " %"


@dataclass(frozen=True, eq=False)
class _FractionRule:
    """``count / frames ≥ minimum``, compared exactly: the minimum is the decimal the setting
    says (0.7 is 7/10, not the binary float near it), so ``count · denominator ≥ numerator ·
    frames`` in integers. Hashed by identity (``eq=False``): it keys ``_fraction_verdict``'s
    cache, three lookups for every dataset."""

    name: str
    label: str
    count_field: str
    minimum: float
    numerator: int
    denominator: int
    # The messages' fixed parts: "<label>: no frames", " ≥ <minimum> (", " < <minimum> (".
    no_frames: str
    passed_text: str
    failed_text: str

    @classmethod
    def of(cls, name: str, label: str, count_field: str, minimum: float) -> _FractionRule:
        exact = Fraction(str(minimum))
        minimum_text = _percent(minimum)
        return cls(
            name,
            label,
            count_field,
            minimum,
            exact.numerator,
            exact.denominator,
            f"{label}: no frames",
            f" ≥ {minimum_text} (",
            f" < {minimum_text} (",
        )

    def check(self, dataset: DatasetValues) -> dict[str, Any]:
        count, frames = getattr(dataset, self.count_field) or 0, dataset.frame_count or 0
        if frames <= 0:
            return _rule(self.name, dataset.dataset_id, False, None, self.minimum, self.no_frames)
        passed, measured, message = _fraction_verdict(self, count, frames)
        return _rule(self.name, dataset.dataset_id, passed, measured, self.minimum, message)


# Cached: most datasets count all their frames, or as many as others of their length do.
@functools.lru_cache(maxsize=4096)
def _fraction_verdict(rule: _FractionRule, count: int, frames: int) -> tuple[bool, float, str]:
    passed = count * rule.denominator >= rule.numerator * frames
    fraction = count / frames
    message = (
        f"{rule.label} {_percent(fraction)}{rule.passed_text if passed else rule.failed_text}"
        f"{count} of {frames} frames)"
    )
    return passed, round(fraction, 4), message


# --- spectral lines ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NamedLine:
    """A parsed ``spectralLines`` entry: "Na I D1 (589.59 nm)" → label "Na I D1", 589.59."""

    label: str
    wavelength_nm: float


_LINE_NAME = re.compile(r"^(?P<label>.+?)\s*\(\s*(?P<wavelength>[0-9]+(?:\.[0-9]+)?)\s*nm\s*\)$")


# Cached: the store names the same few lines in every dataset, and each is read once per line sought.
@functools.lru_cache(maxsize=4096)
def parse_line_name(text: str) -> NamedLine | None:
    """None when the name does not read as "<label> (<wavelength> nm)"."""
    match = _LINE_NAME.match(" ".join(text.split()))
    if match is None:
        return None
    return NamedLine(match["label"], float(match["wavelength"]))


def names_ion(label: str, ion: str) -> bool:
    """ "Fe I" names ion Fe I; so does "Na I D1" name Na I; "Fe II" does not name Fe I."""
    words, ion_words = label.casefold().split(), ion.casefold().split()
    return words[: len(ion_words)] == ion_words


def _within(wavelength: float, target: float, slack: float) -> bool:
    return abs(wavelength - target) <= slack + WAVELENGTH_TOLERANCE_NM


# Cached: the same few names, looked up for each line sought in every dataset (by the line's
# ion and wavelength: a Line's own hash costs more than the lookup).
@functools.lru_cache(maxsize=4096)
def _names_line(name: str, ion: str, wavelength_nm: float, slack: float) -> bool:
    """Whether a ``spectralLines`` entry names the line of this ion and wavelength, within the slack."""
    parsed = parse_line_name(name)
    return bool(
        parsed and names_ion(parsed.label, ion) and _within(parsed.wavelength_nm, wavelength_nm, slack)
    )


def _named_lines(dataset: DatasetValues) -> list[str]:
    return [name for name in dataset.spectral_lines or [] if name and name.strip()]


def _line_evidence(dataset: DatasetValues, names: list[str], line: Line, slack: float) -> str | None:
    """How the dataset shows the line (for the report), or None when it does not; ``names``
    are its non-blank ``spectralLines``, which, when there are any, are all that counts."""
    if names:
        ion, wavelength_nm = line.ion, line.wavelength_nm
        for name in names:
            if _names_line(name, ion, wavelength_nm, slack):
                return f"{name} in {dataset.dataset_id}"
        return None
    low, high = dataset.wavelength_min, dataset.wavelength_max
    if low is None or high is None:
        return None
    if low - slack - WAVELENGTH_TOLERANCE_NM <= line.wavelength_nm <= high + slack + WAVELENGTH_TOLERANCE_NM:
        return f"{low:g} to {high:g} nm in {dataset.dataset_id}"
    return None


def _what_dataset_shows(dataset: DatasetValues, names: list[str]) -> str:
    """What the dataset shows of lines (for the report); ``names`` as for ``_line_evidence``."""
    if names:
        return f"{dataset.dataset_id}: {', '.join(names)}"
    if dataset.wavelength_min is None or dataset.wavelength_max is None:
        return f"{dataset.dataset_id}: no lines, no wavelength range"
    return f"{dataset.dataset_id}: {_number(dataset.wavelength_min)} to {_number(dataset.wavelength_max)} nm"


# --- reports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rules:
    """What the rules need of the thresholds, worked out once per thresholds, not per IP."""

    thresholds: Thresholds
    invertible_text: str
    fractions: tuple[_FractionRule, ...]
    # Each line with its label and, when required, its rule's threshold text.
    lines: tuple[tuple[Line, str, str], ...]


@functools.cache
def _rules_for(thresholds: Thresholds) -> _Rules:
    slack = thresholds.line_slack_nm
    return _Rules(
        thresholds=thresholds,
        invertible_text=", ".join(thresholds.invertible_instruments),
        fractions=(
            _FractionRule.of(HEALTH, "health good", "health_good", thresholds.min_health_good_fraction),
            _FractionRule.of(GOS, "GOS open", "gos_open", thresholds.min_gos_open_fraction),
            _FractionRule.of(AO, "AO locked", "ao_locked", thresholds.min_ao_locked_fraction),
        ),
        lines=tuple(
            (
                line,
                f"{line.ion} {_number(line.wavelength_nm)} nm",
                f"{line.ion} {_number(line.wavelength_nm)} ± {_number(slack)} nm",
            )
            for line in thresholds.lines
        ),
    )


def _line_rules(
    datasets: Sequence[DatasetValues], rules: _Rules
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The required lines as rules, and every line (required or optional) as a report entry."""
    slack = rules.thresholds.line_slack_nm
    named = [(dataset, _named_lines(dataset)) for dataset in datasets]
    line_rules, lines = [], []
    for line, label, threshold in rules.lines:
        evidence, dataset_ids = [], []
        for dataset, names in named:
            if text := _line_evidence(dataset, names, line, slack):
                evidence.append(text)
                # In id order, as the datasets come (their ids are unique).
                dataset_ids.append(dataset.dataset_id)
        evidence.sort()
        lines.append(
            {
                "name": line.name,
                "ion": line.ion,
                "wavelength_nm": line.wavelength_nm,
                "required": line.required,
                "observed": bool(evidence),
                "dataset_ids": dataset_ids,
            }
        )
        if not line.required:
            continue
        if evidence:
            message = f"{label} observed: {', '.join(evidence)}"
        else:
            seen = sorted(_what_dataset_shows(dataset, names) for dataset, names in named)
            message = f"{label} not observed ({'; '.join(seen) or 'no datasets'})"
        line_rules.append(_rule(line.name, None, bool(evidence), evidence, threshold, message))
    return line_rules, lines


def _instrument_program_report(
    *, instrument_program_id: str, instrument: str, datasets: Sequence[DatasetValues], rules: _Rules
) -> dict[str, Any]:
    """One IP's report: invertible iff every rule passes for every dataset.

    ``datasets`` come sorted by id, so the rules are built in the report's order (rule order,
    then dataset id: ``rule_order``) and need no sorting.
    """
    thresholds = rules.thresholds
    supported = instrument.upper() in thresholds.invertible_instruments
    report_rules = [
        _rule(
            INSTRUMENT,
            None,
            supported,
            instrument,
            list(thresholds.invertible_instruments),
            f"{instrument} is supported"
            if supported
            else f"{instrument}: instrument not supported ({rules.invertible_text} only)",
        )
    ]
    lines: list[dict[str, Any]] = []
    if supported:
        report_rules += [_on_disk_rule(dataset) for dataset in datasets]
        required = thresholds.required_stokes
        for dataset in datasets:
            measured, passed, message = _stokes(dataset.stokes_parameters, required)
            report_rules.append(_rule(STOKES, dataset.dataset_id, passed, measured, required, message))
        for fraction in rules.fractions:
            report_rules += [fraction.check(dataset) for dataset in datasets]
        line_rules, lines = _line_rules(datasets, rules)
        report_rules += line_rules
    failed = list(dict.fromkeys([rule["name"] for rule in report_rules if not rule["passed"]]))
    return {
        "id": instrument_program_id,
        "instrument": instrument,
        "dataset_ids": [dataset.dataset_id for dataset in datasets],
        "invertible": not failed,
        "failed_rules": failed,
        "rules": report_rules,
        "lines": lines,
    }


_DATASET_ID = attrgetter("dataset_id")


def qualify_program(
    datasets: Iterable[DatasetValues], *, thresholds: Thresholds | None = None
) -> dict[str, Any]:
    """An OP's report from its datasets: invertible iff at least one IP is.

    ``{"invertible": bool, "instrument_programs": [{"id", "instrument", "dataset_ids",
    "invertible", "failed_rules", "rules": [{"name", "dataset_id", "passed", "measured",
    "threshold", "message"}], "lines": [{"name", "ion", "wavelength_nm", "required",
    "observed", "dataset_ids"}]}]}``, IPs sorted by id, rules in rule order then dataset id.
    """
    rules = (thresholds or Thresholds.from_settings())._rules
    by_program: dict[str, list[DatasetValues]] = {}
    for dataset in datasets:
        by_program.setdefault(dataset.instrument_program_id, []).append(dataset)
    instrument_programs = []
    for ip_id in sorted(by_program):
        ip_datasets = sorted(by_program[ip_id], key=_DATASET_ID)
        instrument_programs.append(
            _instrument_program_report(
                instrument_program_id=ip_id,
                instrument=ip_datasets[0].instrument,
                datasets=ip_datasets,
                rules=rules,
            )
        )
    return {
        "invertible": any(ip["invertible"] for ip in instrument_programs),
        "instrument_programs": instrument_programs,
    }


def summarise(report: dict[str, Any]) -> str:
    """One sentence for histories and logs: "invertible: 1 of 2 instrument programs pass"."""
    instrument_programs = report.get("instrument_programs", [])
    passing = sum(1 for ip in instrument_programs if ip["invertible"])
    verdict = "invertible" if report.get("invertible") else "not invertible"
    if not instrument_programs:
        return f"{verdict}: no datasets"
    return f"{verdict}: {passing} of {len(instrument_programs)} instrument programs pass every rule"
