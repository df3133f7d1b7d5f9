"""World coordinates of the products' FITS files: WCS cards per HDU, from the paired L1 frame's header.

These and the ASDF's gwcs (coordinates.py) bin the slit the same way: L2 slit pixel p covers L1
pixels b(p-1)+1 … bp (1-based), so its centre is L1 pixel b·x + (b-1)/2 (0-based x). Kept apart
from the gwcs so that frame-writing worker processes need not import gwcs.
"""

from __future__ import annotations

from dataclasses import dataclass

from astropy.io import fits

from inversions.products.errors import ProductInputError
from inversions.products.results import Arm
from inversions.products.spec import LOG_TAU_FIRST, LOG_TAU_STEP

# L1 ViSP frame axes (FITS numbering): slit, wavelength (dropped), raster.
L1_SLIT_AXIS, L1_SPECTRAL_AXIS, L1_RASTER_AXIS = 1, 2, 3
ALTERNATES = ("", "A")  # helioprojective, equatorial


@dataclass(frozen=True)
class LinearAxis:
    """An axis the products add in front of the L1 spatial axes."""

    ctype: str
    cunit: str
    crpix: float
    crval: float
    cdelt: float


def depth_axis() -> LinearAxis:
    return LinearAxis("LOGTAU", "", 1.0, LOG_TAU_FIRST, LOG_TAU_STEP)


def stokes_axis() -> LinearAxis:
    return LinearAxis("STOKES", "", 1.0, 1.0, 1.0)


def wavelength_axis(arm: Arm) -> LinearAxis:
    return LinearAxis("AWAV", "nm", arm.reference_pixel, arm.line.wavelength_nm, arm.delta_nm)


def wcs_cards(l1_header: fits.Header, new_axes: list[LinearAxis], binning: int) -> list[tuple[str, object]]:
    """Main and alternate-A WCS cards: `new_axes` first, then the binned slit, then the raster."""
    check_l1_axes(l1_header)
    naxis = len(new_axes) + 2
    old_axis = {len(new_axes) + 1: L1_SLIT_AXIS, len(new_axes) + 2: L1_RASTER_AXIS}
    cards: list[tuple[str, object]] = []
    for alt in ALTERNATES:
        if f"CTYPE{L1_SLIT_AXIS}{alt}" not in l1_header:
            continue
        cards.append((f"WCSAXES{alt}", naxis))
        if f"WCSNAME{alt}" in l1_header:
            cards.append((f"WCSNAME{alt}", l1_header[f"WCSNAME{alt}"]))
        for number, axis in enumerate(new_axes, start=1):
            for key, value in (("CTYPE", axis.ctype), ("CUNIT", axis.cunit), ("CRPIX", axis.crpix),
                               ("CRVAL", axis.crval), ("CDELT", axis.cdelt)):  # fmt: skip
                cards.append((f"{key}{number}{alt}", value))
        for number, old in old_axis.items():
            crpix = float(l1_header[f"CRPIX{old}{alt}"])
            if old == L1_SLIT_AXIS:
                crpix = (crpix + (binning - 1) / 2) / binning
            cards += [
                (f"CTYPE{number}{alt}", l1_header[f"CTYPE{old}{alt}"]),
                (f"CUNIT{number}{alt}", l1_header.get(f"CUNIT{old}{alt}", "deg")),
                (f"CRPIX{number}{alt}", crpix),
                (f"CRVAL{number}{alt}", float(l1_header[f"CRVAL{old}{alt}"])),
                (f"CDELT{number}{alt}", float(l1_header.get(f"CDELT{old}{alt}", 1.0))),
            ]
        for row in range(1, naxis + 1):
            for column in range(1, naxis + 1):
                cards.append((f"PC{row}_{column}{alt}", _pc(l1_header, alt, old_axis, row, column, binning)))
        for key in ("LONPOLE", "LATPOLE"):
            if f"{key}{alt}" in l1_header:
                cards.append((f"{key}{alt}", float(l1_header[f"{key}{alt}"])))
    return cards


def _pc(
    header: fits.Header, alt: str, old_axis: dict[int, int], row: int, column: int, binning: int
) -> float:
    if row not in old_axis or column not in old_axis:
        return 1.0 if row == column else 0.0
    old_row, old_column = old_axis[row], old_axis[column]
    value = float(header.get(f"PC{old_row}_{old_column}{alt}", 1.0 if old_row == old_column else 0.0))
    # The slit pixel axis's column carries the binning: one L2 pixel spans b L1 pixels.
    return value * binning if old_column == L1_SLIT_AXIS else value


def check_l1_axes(header: fits.Header) -> None:
    for axis in (L1_SLIT_AXIS, L1_SPECTRAL_AXIS, L1_RASTER_AXIS):
        for key in ("CTYPE", "CRPIX", "CRVAL"):
            if f"{key}{axis}" not in header:
                raise ProductInputError(f"The Level 1 frame header has no {key}{axis}.")
    if "WAV" not in str(header[f"CTYPE{L1_SPECTRAL_AXIS}"]):
        raise ProductInputError(
            f"Level 1 axis {L1_SPECTRAL_AXIS} is {header[f'CTYPE{L1_SPECTRAL_AXIS}']!r}, not wavelength."
        )
