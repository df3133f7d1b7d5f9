"""The fixed facts of the Level 2 format (L2-PRODUCTS.md §1 and §3): quantities, lines, keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# log τ(500 nm) of the first depth pixel, and its step per pixel.
LOG_TAU_FIRST = 1.2
LOG_TAU_STEP = -0.1


def _divide_by(divisor: float) -> Callable[[np.ndarray], np.ndarray]:
    def convert(values: np.ndarray) -> np.ndarray:
        return np.divide(values, np.float32(divisor), dtype=np.float32)

    return convert


def _multiply_by(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    def convert(values: np.ndarray) -> np.ndarray:
        return np.multiply(values, np.float32(factor), dtype=np.float32)

    return convert


def _unchanged(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32)


def _modulo_360(values: np.ndarray) -> np.ndarray:
    return np.mod(values, np.float32(360), dtype=np.float32)


@dataclass(frozen=True)
class PhysicalQuantity:
    key: str  # the ASDF key
    extname: str
    bunit: str
    btype: str
    convert: Callable[[np.ndarray], np.ndarray]  # input unit -> BUNIT, float32


QUANTITIES: tuple[PhysicalQuantity, ...] = (
    PhysicalQuantity(
        "optical_depth", "Log of Optical Depth at 500nm", "", "phys.absorption.opticalDepth", _unchanged
    ),
    PhysicalQuantity("temperature", "Temperature", "K", "phys.temperature", _unchanged),
    PhysicalQuantity(
        "electron_pressure", "Electron Pressure", "N/m^2", "phys.electron;phys.pressure", _divide_by(10)
    ),
    PhysicalQuantity("microturbulence", "Microturbulence", "km/s", "phys.veloc.microturb", _divide_by(1e5)),
    PhysicalQuantity("mag_strength", "Magnetic Field Strength", "T", "phys.magField", _divide_by(1e4)),
    PhysicalQuantity("velocity", "Line-of-sight Velocity", "km/s", "spect.dopplerVeloc", _divide_by(1e5)),
    PhysicalQuantity(
        "mag_inclination",
        "Magnetic Field Inclination (w.r.t. line-of-sight)",
        "deg",
        "phys.magField;pos.angDistance",
        _modulo_360,
    ),
    PhysicalQuantity(
        "mag_azimuth",
        "Magnetic Field Azimuth (w.r.t. line-of-sight)",
        "deg",
        "phys.magField;pos.azimuth",
        _modulo_360,
    ),
    PhysicalQuantity(
        "geo_height",
        "Geometric Height above solar surface (tau ~ 1 at 500nm)",
        "km",
        "phys.distance",
        _unchanged,
    ),
    PhysicalQuantity("gas_pressure", "Gas Pressure", "N/m^2", "phys.pressure", _divide_by(10)),
    PhysicalQuantity("density", "Density", "kg/m^3", "phys.density", _multiply_by(1000)),
)


@dataclass(frozen=True)
class SpectralLine:
    line_id: int  # as DeSIRe numbers it in the profile files
    key: str  # the ASDF key prefix, as the data center's own products name the line
    ion: str  # as written in headers
    wavelength_nm: float  # the reference the wavelength offsets count from


LINES: dict[int, SpectralLine] = {
    line.line_id: line
    for line in (
        SpectralLine(23, "FeI630", "Fe I", 630.15012),
        SpectralLine(9, "NaID", "Na I", 588.95095),
        SpectralLine(4, "CaII854", "Ca II", 854.2091),
    )
}

STOKES = ("I", "Q", "U", "V")

# Keys copied from the paired L1 header into each primary header; OPTIONAL ones may be absent.
COPIED_KEYS = (
    "DATE-BEG", "DATE-END", "DATE-AVG", "TELAPSE", "OBJECT", "INSTRUME", "TAZIMUTH", "ELEV_ANG", "TELTRACK",
    "TELSCAN", "TTBLANGL", "TTBLTRCK", "DATEREF", "ROTCOMP", "OBS_VR", "OBSGEO-X", "OBSGEO-Y", "OBSGEO-Z",
    "DKISTVER", "OBSPR_ID", "EXPER_ID", "PROP_ID", "DSP_ID", "IP_ID", "HLSVERS", "NPROPOS", "NEXPERS",
    "OCS_CTRL", "FIDO_CFG", "DSHEALTH", "LIGHTLVL", "ATMOS_R0", "AO_LOCK", "HEAD_URL",
)  # fmt: skip
# HEAD_URL: the data center's own products carry it where their L1 header does.
OPTIONAL_KEYS = frozenset({"TELSCAN", "ROTCOMP", "HEAD_URL"})
# Numbered keys (PROPID01, EXPRID01, …) copied as they come.
NUMBERED_KEY_PREFIXES = ("PROPID", "EXPRID")

HEADER_VERSION = "1.1.0"
PROFILE_BUNIT = "ct"  # the profiles are in counts, as the Level 1 data are

FIXED_PRIMARY_CARDS: tuple[tuple[str, object, str], ...] = (
    ("ORIGIN", "National Solar Observatory", "Location where file was written"),
    ("TELESCOP", "Daniel K. Inouye Solar Telescope", "Telescope"),
    ("OBSRVTRY", "Haleakala High Altitude Observatory Site", "Observatory"),
    ("NETWORK", "NSF-DKIST", "Network"),
    ("TIMESYS", "UTC", "Time system of the time keywords"),
    ("SOLARNET", 1.0, "SOLARNET compliance"),
    ("PROCTYPE", "L2", "Processing type"),
    ("LEVEL", 2, "Data level"),
    # 1.1.0: profile HDUs in counts (BUNIT), HEAD_URL copied. A re-run rewrites frames of another version.
    ("HEADVERS", HEADER_VERSION, "Version of the Level 2 header format"),
    ("INFO_URL", "https://dkist.nso.edu", "Where to find out about this data"),
)
