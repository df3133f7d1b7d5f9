"""Seeded, deterministic synthetic metadata-store records, shaped like the real ones.

The same seed, ``now`` and sizes always give the same records, so tests, the demo store and
the benchmark share one source of realistic data:

- proposals ``pid_<cycle>_<n>`` with their experiments ``eid_<cycle>_<n>`` and descriptions;
- Observing Programs of one to a few Instrument Programs: ViSP IPs of (usually) three
  spectrograph arms, each on its own line, and VBI IPs of Stokes-I images;
- varied health, GOS, AO and seeing, pointings on the disk and near or over the limb, so that
  some OPs qualify for inversion and most do not;
- older records without ``spectralLines``/``bucket``/``productId``/``browseMovieUrl`` and with
  five-letter dataset ids, newer ones with them and six-letter ids;
- the newest OPs still arriving (created within the last days before ``now``), and optionally
  OPs "arriving" after ``now`` on a schedule, which the demo server hides until their time.

Dates are naive ISO strings in UTC with microseconds, as the store sends them; for such
strings text order is time order, which the server relies on.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

Record = dict[str, Any]

HISTORY_DAYS = 1300
# The newest OPs of the history are created within this many days before `now`, so that
# some are still settling (LEVEL2_SETTLE_DAYS is 7 by default).
ARRIVING_WINDOW_DAYS = 6
RECENT_PROGRAM_FRACTION = 0.05
# Records created after this fraction of the history carry the newer optional fields.
NEWER_FIELDS_FROM = 0.6
PROGRAMS_PER_PROPOSAL = 20
DATASETS_PER_PROGRAM = 5

HEADER_VERSIONS = ["3.0.0", "3.3.0", "3.4.0", "3.5.0", "3.6.0", "3.7.1", "3.8.1", "4.0.0"]
VISP_SOFTWARE = ["2.0.2", "2.3.0", "2.6.1", "2.7.0", "2.7.5", "3.1.0", "4.2.0", "5.0.1"]
VBI_SOFTWARE = ["0.16.0", "1.1.5", "1.2.1", "1.4.8", "1.6.0", "2.1.0", "2.3.2", "3.0.0"]


@dataclass(frozen=True)
class SpectralWindow:
    """One ViSP arm's window: the lines it names and its wavelength range (nm)."""

    lines: tuple[str, ...]
    wavelength_min: float
    wavelength_max: float


FE_I_630 = SpectralWindow(("Fe I (630.15 nm)", "Fe I (630.25 nm)"), 629.45, 630.95)
CA_II_854 = SpectralWindow(("Ca II (854.21 nm)",), 853.57, 854.72)
NA_I_D1 = SpectralWindow(("Na I D1 (589.59 nm)",), 589.18, 589.94)
H_ALPHA = SpectralWindow(("H alpha (656.28 nm)",), 655.85, 656.72)
CA_II_H = SpectralWindow(("Ca II H (396.85 nm)",), 396.39, 398.51)
FE_I_525 = SpectralWindow(("Fe I (525.02 nm)",), 524.71, 525.33)
CA_II_849 = SpectralWindow(("Ca II (849.8 nm)",), 849.4, 850.2)

# The arms of a ViSP IP (one dataset each), with how often a program uses them.
VISP_ARM_SETS: list[tuple[tuple[SpectralWindow, ...], int]] = [
    ((CA_II_854, NA_I_D1, FE_I_630), 30),
    ((CA_II_H, FE_I_630, CA_II_854), 15),
    ((FE_I_630, H_ALPHA, CA_II_849), 10),
    ((CA_II_854, NA_I_D1, H_ALPHA), 20),
    ((CA_II_H, FE_I_525, H_ALPHA), 15),
    ((FE_I_525, NA_I_D1, CA_II_854), 10),
]
VBI_FILTERS_NM = [393, 430, 450, 486, 656, 668, 705]

EXPERIMENT_TOPICS = [
    "the fine structure of sunspot penumbrae",
    "magnetic flux emergence in young active regions",
    "spicules and their chromospheric counterparts",
    "internetwork magnetic fields in the quiet Sun",
    "plage heating and the chromospheric energy balance",
    "flare ribbons and the photospheric response to flares",
    "pores and the formation of penumbrae",
    "filament channels and their magnetic support",
    "light bridges in mature sunspots",
    "umbral flashes and running penumbral waves",
]
EXPERIMENT_METHODS = [
    "We will observe with ViSP in full Stokes and invert the Fe I 630 nm lines for the "
    "photospheric magnetic and velocity fields.",
    "Simultaneous VBI imaging provides context and allows us to track features over time.",
    "The Ca II 854.2 nm line samples the chromosphere; non-LTE inversions will recover its "
    "temperature and velocity stratification.",
    "Time series at the highest cadence the instruments allow are required to resolve the dynamics.",
    "Coordinated observations with space missions are requested where feasible.",
    "Adaptive optics locked on the target is essential; observations should be taken in the "
    "morning when seeing is best.",
]


@dataclass(frozen=True)
class DemoStore:
    """What the demo metadata store holds.

    ``datasets`` is sorted by ``createDate``; records created after ``now`` are the ones that
    "arrive" later (the server hides them until its clock passes their ``createDate``).
    """

    datasets: list[Record]
    experiments: list[Record]
    now: datetime


def iso(moment: datetime) -> str:
    """The store's date format: naive UTC with microseconds."""
    return moment.isoformat(timespec="microseconds")


def format_arcsec(value: float) -> str:
    """Bounding-box numbers as the store writes them: at most two decimals, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def solar_radius_arcsec(day_of_year: int) -> float:
    """Apparent solar radius on a day of the year (DESIGN.md, rule 1)."""
    distance_km = 149.6e6 * (1 - 0.0167 * math.cos(2 * math.pi * (day_of_year - 3) / 365))
    return math.atan(696340 / distance_km) * 206265


class _IdScrambler:
    """Unique, random-looking uppercase ids: an index through a bijection of [0, 26**length)."""

    def __init__(self, *, length: int, rng: random.Random) -> None:
        self.length = length
        self.modulus = 26**length
        # Odd and not a multiple of 13: coprime with 26**length, so the map is a bijection.
        multiplier = rng.randrange(self.modulus // 3, self.modulus) | 1
        while multiplier % 13 == 0:
            multiplier += 2
        self.multiplier = multiplier
        self.offset = rng.randrange(self.modulus)
        self.next_index = 0

    def next(self) -> str:
        number = (self.next_index * self.multiplier + self.offset) % self.modulus
        self.next_index += 1
        letters = []
        for _ in range(self.length):
            number, digit = divmod(number, 26)
            letters.append(chr(65 + digit))
        return "".join(letters)


@dataclass
class _Proposal:
    proposal_id: str
    experiment_id: str
    op_codes: list[str]
    runs: int = 0


def _distribution(rng: random.Random, *, median: float, spread: float) -> Record:
    """A min/p25/med/p75/max block like lightLevel and friedParameter."""
    p25 = median - spread * rng.uniform(0.3, 0.6)
    p75 = median + spread * rng.uniform(0.3, 0.6)
    return {
        "max": p75 + spread * rng.uniform(0.4, 1.2),
        "med": median,
        "min": max(p25 - spread * rng.uniform(0.4, 1.2), median * 0.1),
        "p25": p25,
        "p75": p75,
    }


class _Generator:
    def __init__(self, *, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.history_start = now - timedelta(days=HISTORY_DAYS)
        self.newer_fields_from = self.history_start + timedelta(days=HISTORY_DAYS * NEWER_FIELDS_FROM)
        self.older_ids = _IdScrambler(length=5, rng=self.rng)
        self.newer_ids = _IdScrambler(length=6, rng=self.rng)
        self.product_ids = _IdScrambler(length=7, rng=self.rng)
        self.program_serial = 0
        self.ip_serial = 0

    # -- proposals and experiments -------------------------------------------------------

    def proposals(self, count: int) -> list[_Proposal]:
        rng = self.rng
        proposals = []
        number_by_cycle: dict[int, int] = {}
        for index in range(count):
            cycle = 1 + index * 4 // count
            number = number_by_cycle.get(cycle, rng.randint(0, 12)) + rng.randint(1, 3)
            number_by_cycle[cycle] = number
            codes = [self._op_code() for _ in range(rng.choice((1, 1, 2, 3)))]
            proposals.append(_Proposal(f"pid_{cycle}_{number}", f"eid_{cycle}_{number}", codes))
        return proposals

    def _op_code(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-"
        return "op" + "".join(self.rng.choice(alphabet) for _ in range(6))

    def experiments(self, proposals: list[_Proposal]) -> list[Record]:
        rng = self.rng
        records = []
        for serial, proposal in enumerate(proposals, start=1):
            topic = rng.choice(EXPERIMENT_TOPICS)
            methods = rng.sample(EXPERIMENT_METHODS, k=rng.randint(1, 3))
            created = self.history_start + timedelta(days=rng.uniform(-60, HISTORY_DAYS * 0.9))
            records.append(
                {
                    "experimentDescriptionId": serial,
                    "experimentId": proposal.experiment_id,
                    "experimentDescription": f"We propose to study {topic}. " + " ".join(methods),
                    "createDate": iso(created),
                    "updateDate": iso(created + timedelta(hours=rng.uniform(0, 48))),
                }
            )
        return records

    # -- observing programs --------------------------------------------------------------

    def program_sizes(self, *, datasets: int, programs: int) -> list[int]:
        """Dataset counts per OP summing exactly to `datasets`, varied around the mean."""
        base, remainder = divmod(datasets, programs)
        sizes = [base + (1 if index < remainder else 0) for index in range(programs)]
        for index in range(0, programs - 1, 2):
            shift = self.rng.randint(-3, 3)
            shift = max(min(shift, sizes[index + 1] - 1), 1 - sizes[index])
            sizes[index] += shift
            sizes[index + 1] -= shift
        return sizes

    def instrument_plan(self, size: int) -> list[tuple[str, int]]:
        """The IPs of one OP: (instrument, dataset count), ViSP usually three arms."""
        rng = self.rng
        plan = []
        remaining = size
        while remaining:
            if remaining >= 3 and rng.random() < 0.7:
                arms = 3 if rng.random() < 0.85 else min(remaining, 4)
                plan.append(("VISP", arms))
            elif remaining < 3 and rng.random() < 0.4:
                plan.append(("VISP", remaining))
            else:
                plan.append(("VBI", min(remaining, rng.randint(1, 3))))
            remaining -= plan[-1][1]
        return plan

    def program(self, *, proposal: _Proposal, first_created: datetime, size: int) -> list[Record]:
        """The datasets of one OP whose first dataset is created at `first_created`."""
        rng = self.rng
        self.program_serial += 1
        proposal.runs += 1
        program_id = (
            f"{proposal.experiment_id}_{rng.choice(proposal.op_codes)}_R{proposal.runs:03d}"
            f".{82591 + self.program_serial * 97 + rng.randint(0, 60)}.{rng.randint(60_000, 24_000_000)}"
        )
        # Recent observations are calibrated within days, old ones took months.
        age_days = (self.now - first_created).days
        processing_days = rng.uniform(2, 6) if age_days < 60 else rng.uniform(5, 180)
        observed = first_created - timedelta(days=processing_days)
        # One pointing and one seeing for the whole program; each IP jitters around it.
        on_disk = rng.random() < 0.72
        pointing_radius = rng.uniform(0, 820) if on_disk else rng.uniform(900, 1060)
        pointing_angle = rng.uniform(0, 2 * math.pi)
        seeing = rng.random()
        records = []
        created = first_created
        plan = self.instrument_plan(size)
        # Datasets of one OP arrive over hours to days, but those of a recent OP before `now`.
        hours_to_now = (self.now - first_created) / timedelta(hours=1)
        max_gap_hours = min(30.0, hours_to_now / (len(plan) + 1)) if hours_to_now > 0 else 3.0
        for instrument, count in plan:
            records.extend(
                self.instrument_program(
                    proposal=proposal,
                    program_id=program_id,
                    instrument=instrument,
                    count=count,
                    observed=observed,
                    created=created,
                    centre=(
                        pointing_radius * math.cos(pointing_angle) + rng.uniform(-25, 25),
                        pointing_radius * math.sin(pointing_angle) + rng.uniform(-25, 25),
                    ),
                    seeing=seeing,
                )
            )
            observed += timedelta(minutes=rng.uniform(20, 90))
            created += timedelta(hours=rng.uniform(0.1, max_gap_hours))
        return records

    def instrument_program(
        self,
        *,
        proposal: _Proposal,
        program_id: str,
        instrument: str,
        count: int,
        observed: datetime,
        created: datetime,
        centre: tuple[float, float],
        seeing: float,
    ) -> list[Record]:
        rng = self.rng
        self.ip_serial += 1
        ip_id = f"id.{85407 + self.ip_serial * 53 + rng.randint(0, 40)}.{rng.randint(3_000, 1_200_000)}"
        is_visp = instrument == "VISP"
        duration = timedelta(minutes=rng.uniform(8, 70))
        progress = min(max((created - self.history_start) / timedelta(days=HISTORY_DAYS), 0.0), 0.999)
        header_version = HEADER_VERSIONS[int(progress * len(HEADER_VERSIONS))]
        software = (VISP_SOFTWARE if is_visp else VBI_SOFTWARE)[int(progress * len(VISP_SOFTWARE))]
        calibration_url = (
            f"https://docs.dkist.nso.edu/projects/visp/en/v{software}/l0_to_l1_visp.html"
            if is_visp
            else f"https://docs.dkist.nso.edu/projects/vbi/en/v{software}/l0_to_l1_vbi_summit-calibrated.html"
        )
        stokes = "IQUV" if is_visp and rng.random() < 0.85 else "I"
        # Quality of the IP: mostly good, with a share of poor health, GOS and AO.
        health_fraction = 1.0 if rng.random() < 0.85 else rng.choice((0.99, rng.uniform(0.3, 0.74)))
        gos_fraction = 1.0 if rng.random() < 0.9 else rng.uniform(0.6, 0.995)
        ao_fraction = rng.uniform(0.8, 1.0) if rng.random() < 0.8 else rng.uniform(0.2, 0.74)
        fried_median = 0.03 + 0.09 * seeing + rng.uniform(-0.01, 0.01)
        fried = _distribution(rng, median=fried_median, spread=fried_median * 0.4)
        light = _distribution(rng, median=rng.uniform(300, 480), spread=rng.uniform(2, 20))
        polarimetric = (
            _distribution(rng, median=rng.uniform(0.93, 0.995), spread=0.005) if stokes == "IQUV" else None
        )
        if is_visp:
            arm_sets = [arms for arms, _ in VISP_ARM_SETS]
            weights = [weight for _, weight in VISP_ARM_SETS]
            windows = list(rng.choices(arm_sets, weights=weights)[0])
            while len(windows) < count:
                windows.append(rng.choice((CA_II_849, H_ALPHA, FE_I_525)))
            windows = windows[:count]
            frame_count = rng.choice((176, 340, 444, 1348, 1404, 1664, 2000, 3456, 4000, 6240))
            width, height = rng.uniform(0.02, 90), rng.uniform(20, 120)
        else:
            windows = [None] * count
            frame_count = rng.choice((81, 107, 171, 180, 207, 247, 470, 723, 1443))
            width = height = rng.uniform(40, 120)
        is_embargoed = (self.now - created).days < 180 and rng.random() < 0.5
        embargo_end = iso(created + timedelta(days=180)) if is_embargoed else None
        header_url = f"https://docs.dkist.nso.edu/projects/data-products/en/v{header_version}"
        half_width, half_height = width / 2, height / 2
        # The hot loop of the generator (100,000 records in a few seconds): plain rng.random().
        random_ = rng.random
        records = []
        for arm, window in enumerate(windows):
            dataset_created = created + timedelta(minutes=arm * (2 + 38 * random_()))
            newer = dataset_created >= self.newer_fields_from
            arm_health, arm_ao = health_fraction, ao_fraction
            if random_() < 0.05:
                # One arm of an otherwise fine IP lost frames to clouds.
                arm_health, arm_ao = 0.4 + 0.3 * random_(), 0.3 + 0.4 * random_()
            x_centre, y_centre = centre[0] + 6 * random_() - 3, centre[1] + 6 * random_() - 3
            start = observed + timedelta(seconds=90 * random_())
            if window is None:
                wavelength_min = wavelength_max = VBI_FILTERS_NM[int(random_() * len(VBI_FILTERS_NM))]
            else:
                wavelength_min = window.wavelength_min + 0.3 * random_() - 0.15
                wavelength_max = window.wavelength_max + 0.3 * random_() - 0.15
            good = round(frame_count * arm_health)
            not_good = (frame_count - good) or None
            not_good_is_ill = random_() < 0.5
            gos_open = round(frame_count * gos_fraction)
            record: Record = {
                "datasetId": (self.newer_ids if newer else self.older_ids).next(),
                "createDate": iso(dataset_created),
                "updateDate": iso(self._update_date(dataset_created)),
                "startTime": iso(start),
                "endTime": iso(start + duration),
                "exposureTime": 16 + 504 * random_() if is_visp else 0.03 + 25 * random_(),
                "headerDataUnitCreationDate": iso(dataset_created - timedelta(hours=0.2 + 3 * random_())),
                "isEmbargoed": is_embargoed,
                "embargoEndDate": embargo_end,
                "primaryExperimentId": proposal.experiment_id,
                "primaryProposalId": proposal.proposal_id,
                "observingProgramExecutionId": program_id,
                "instrumentProgramExecutionId": ip_id,
                "instrumentName": instrument,
                "datasetSize": int(22 * random_()),
                "frameCount": frame_count,
                "headerVersion": header_version,
                "headerDocumentationUrl": header_url,
                "calibrationDocumentationUrl": calibration_url,
                "hasSpectralAxis": is_visp,
                "hasTemporalAxis": True,
                "boundingBox": (
                    f"({format_arcsec(x_centre + half_width)},{format_arcsec(y_centre + half_height)}),"
                    f"({format_arcsec(x_centre - half_width)},{format_arcsec(y_centre - half_height)})"
                ),
                "stokesParameters": stokes,
                "wavelengthMax": wavelength_max,
                "wavelengthMin": wavelength_min,
                # Zero counts are null, as in the store.
                "health": {
                    "bad": None if not_good_is_ill else not_good,
                    "ill": not_good if not_good_is_ill else None,
                    "good": good or None,
                    "unknown": None,
                },
                "gosStatus": {
                    "open": gos_open or None,
                    "closed": (frame_count - gos_open) or None,
                    "closing": None,
                    "opening": None,
                    "undefined": None,
                },
                "aoLocked": round(frame_count * arm_ao),
                "lightLevel": light,
                "polarimetricAccuracy": polarimetric,
                "friedParameter": fried,
            }
            if newer:
                record["spectralLines"] = list(window.lines) if window else []
                record["bucket"] = "data"
                record["productId"] = f"L1-{self.product_ids.next()}"
                record["browseMovieUrl"] = f"https://vimeo.com/{1_000_000_000 + int(random_() * 1e8)}"
            records.append(record)
        return records

    def _update_date(self, created: datetime) -> datetime:
        """Most records are updated once right after creation; some were reprocessed later."""
        days_to_now = (self.now - created) / timedelta(days=1)
        if days_to_now > 2 and self.rng.random() < 0.3:
            return created + timedelta(days=self.rng.uniform(1, min(400, days_to_now - 1)))
        updated = created + timedelta(seconds=self.rng.uniform(1, 600))
        return min(updated, max(created, self.now - timedelta(seconds=1)))


def _iter_history(
    generator: _Generator, proposals: list[_Proposal], *, datasets: int, programs: int
) -> Iterator[Record]:
    """The records of every OP created before `now`, OP by OP in creation order."""
    rng, now = generator.rng, generator.now
    recent = max(1, round(programs * RECENT_PROGRAM_FRACTION)) if programs > 1 else 0
    older_span = HISTORY_DAYS - ARRIVING_WINDOW_DAYS - 2
    firsts = sorted(
        generator.history_start + timedelta(days=rng.uniform(0, older_span)) for _ in range(programs - recent)
    )
    # Within the arriving window each OP's datasets are still coming in (all before `now`).
    firsts += sorted(now - timedelta(days=rng.uniform(0.2, ARRIVING_WINDOW_DAYS)) for _ in range(recent))
    sizes = generator.program_sizes(datasets=datasets, programs=programs)
    now_text = iso(now)
    for index, (first_created, size) in enumerate(zip(firsts, sizes, strict=True)):
        # Proposals run in blocks of time; one in five OPs goes to the previous proposal.
        proposal_index = index * len(proposals) // programs
        if proposal_index and rng.random() < 0.2:
            proposal_index -= 1
        records = generator.program(
            proposal=proposals[proposal_index], first_created=first_created, size=size
        )
        for record in records:
            # The rare last arm of a recent OP that would land after `now` arrived just before.
            if record["createDate"] >= now_text:
                arrived = now - timedelta(minutes=rng.uniform(1, 30))
                record["createDate"] = record["updateDate"] = iso(arrived)
                record["headerDataUnitCreationDate"] = iso(arrived - timedelta(minutes=30))
        yield from records


def _iter_arrivals(
    generator: _Generator,
    proposals: list[_Proposal],
    *,
    count: int,
    interval: timedelta,
) -> Iterator[Record]:
    """OPs created after `now`, one every `interval`; a few IPs of each arrive later still."""
    rng, now = generator.rng, generator.now
    for slot in range(1, count + 1):
        # Arrivals come from the newest proposals, where observing is under way.
        proposal = proposals[-1 - rng.randrange(min(len(proposals), 3))]
        first_created = (
            now + interval * slot + timedelta(seconds=rng.uniform(0, interval.total_seconds() / 2))
        )
        records = generator.program(proposal=proposal, first_created=first_created, size=rng.randint(1, 7))
        for position, record in enumerate(records):
            # Spread the OP's datasets over the next few slots so that a scan sees it grow.
            created = (
                first_created
                + interval * (position // 3) * rng.randint(1, 3)
                + timedelta(seconds=position * rng.uniform(5, 40))
            )
            record["createDate"] = record["updateDate"] = iso(created)
            record["headerDataUnitCreationDate"] = iso(created - timedelta(minutes=30))
        yield from records


def generate_store(
    *,
    seed: int = 42,
    datasets: int,
    now: datetime,
    programs: int | None = None,
    arriving_programs: int = 0,
    arrival_interval: timedelta = timedelta(minutes=2),
) -> DemoStore:
    """A store of exactly `datasets` records created before `now`, in `programs` OPs
    (default datasets / 5), plus `arriving_programs` OPs created after `now`, one every
    `arrival_interval`. `now` is naive UTC."""
    if datasets < 1:
        raise ValueError("datasets must be at least 1")
    programs = programs or max(1, datasets // DATASETS_PER_PROGRAM)
    if programs > datasets:
        raise ValueError("programs cannot outnumber datasets")
    generator = _Generator(seed=seed, now=now)
    proposals = generator.proposals(max(2, programs // PROGRAMS_PER_PROPOSAL))
    experiments = generator.experiments(proposals)
    records = list(_iter_history(generator, proposals, datasets=datasets, programs=programs))
    records.extend(_iter_arrivals(generator, proposals, count=arriving_programs, interval=arrival_interval))
    records.sort(key=lambda record: record["createDate"])
    return DemoStore(datasets=records, experiments=experiments, now=now)


def with_changes(store: DemoStore, *, fraction: float = 0.01, seed: int = 1, at: datetime) -> DemoStore:
    """The store after `fraction` of its datasets were reprocessed at `at`: each of those has
    a newer ``updateDate`` and a changed ``aoLocked`` and ``datasetSize``. The given store is
    left as it was; unchanged records are shared."""
    rng = random.Random(seed)
    at_text = iso(at)
    visible = [index for index, record in enumerate(store.datasets) if record["createDate"] <= at_text]
    changed_count = max(1, round(len(visible) * fraction))
    changes: dict[str, Record] = {}
    for index in rng.sample(visible, changed_count):
        record = store.datasets[index]
        changes[record["datasetId"]] = {
            "updateDate": at_text,
            "aoLocked": max(0, record["aoLocked"] - rng.randint(1, max(1, record["frameCount"] // 5))),
            "datasetSize": record["datasetSize"] + 1,
        }
    return with_reprocessed(store, changes)


def with_reprocessed(store: DemoStore, changes: dict[str, Record]) -> DemoStore:
    """The store with the fields in ``changes`` (dataset id → fields) replaced in those records.
    The given store is left as it was; unchanged records are shared."""
    if not changes:
        return store
    datasets = [
        {**record, **changes[record["datasetId"]]} if record["datasetId"] in changes else record
        for record in store.datasets
    ]
    return DemoStore(datasets=datasets, experiments=store.experiments, now=store.now)


_DOCUMENTATION_VERSION = re.compile(r"/v(\d+)\.(\d+)\.(\d+)/")


def recalibrated(record: Record, *, at: datetime) -> Record:
    """The fields the data center changes when it reprocesses a dataset with a newer calibration:
    its ``updateDate``, when its frames were written, and the calibration documentation's
    version (``…/v2.0.0/`` → ``…/v2.1.0/``)."""
    changes: Record = {"updateDate": iso(at), "headerDataUnitCreationDate": iso(at)}
    url = record.get("calibrationDocumentationUrl")
    if isinstance(url, str) and (match := _DOCUMENTATION_VERSION.search(url)):
        major, minor, _patch = (int(part) for part in match.groups())
        changes["calibrationDocumentationUrl"] = (
            f"{url[: match.start()]}/v{major}.{minor + 1}.0/{url[match.end() :]}"
        )
    return changes
