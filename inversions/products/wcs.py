"""World coordinates of the products: FITS WCS cards per HDU, and the gwcs of the ASDF.

Both derive from the canonical L1 dataset (its frame headers, its ASDF's gwcs) and both bin the
slit the same way: L2 slit pixel p covers L1 pixels b(p-1)+1 … bp (1-based), so its centre is
L1 pixel b·x + (b-1)/2 (0-based x).
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from pathlib import Path

import asdf
import astropy.units as u
import gwcs
import numpy as np
from astropy.io import fits
from astropy.modeling import Model
from astropy.modeling import models as m
from gwcs import coordinate_frames as cf

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


@dataclass(frozen=True)
class L1Coordinates:
    """What the products take from the L1 dataset's gwcs: pixels (slit, raster) -> lon, lat, time."""

    transform: Model  # the L1 forward transform, all its pixel inputs
    pixel_roles: tuple[str, ...]  # per L1 pixel input: slit, raster or other
    world_outputs: tuple[int, int, int]  # lon, lat, time
    celestial: cf.CelestialFrame
    temporal: cf.TemporalFrame


def read_l1_coordinates(asdf_path: Path) -> L1Coordinates:
    try:
        with asdf.open(asdf_path, lazy_load=False, memmap=False) as file:
            wcs = file["dataset"].wcs
    except (OSError, KeyError, ValueError, AttributeError) as error:
        raise ProductInputError(f"{asdf_path.name} is not a Level 1 dataset ASDF: {error}") from error
    types = list(wcs.world_axis_physical_types)
    try:
        lon, lat, time = (
            next(i for i, kind in enumerate(types) if kind.endswith(suffix))
            for suffix in ("pos.helioprojective.lon", "pos.helioprojective.lat", "time")
        )
    except StopIteration:
        raise ProductInputError(f"{asdf_path.name}: its gwcs has world axes {types}.") from None
    correlation = np.asarray(wcs.axis_correlation_matrix)
    roles = []
    for pixel in range(wcs.pixel_n_dim):
        if correlation[time, pixel]:
            roles.append("raster")
        elif correlation[lon, pixel] or correlation[lat, pixel]:
            roles.append("slit")
        else:
            roles.append("other")
    if roles.count("raster") != 1 or roles.count("slit") != 1:
        raise ProductInputError(
            f"{asdf_path.name}: expected one slit and one raster pixel axis; its gwcs has pixel axes "
            f"{list(wcs.input_frame.axes_names)}."
        )
    frames = wcs.output_frame.frames
    return L1Coordinates(
        transform=wcs.forward_transform,
        pixel_roles=tuple(roles),
        world_outputs=(lon, lat, time),
        celestial=next(frame for frame in frames if isinstance(frame, cf.CelestialFrame)),
        temporal=next(frame for frame in frames if isinstance(frame, cf.TemporalFrame)),
    )


def _sky_and_time(l1: L1Coordinates, binning: int) -> Model:
    """(L2 slit pixel, raster pixel) -> (lon, lat, time) through the L1 transform."""
    inputs = []
    for role in l1.pixel_roles:
        if role == "slit":
            inputs.append((0, m.Scale(binning) | m.Shift((binning - 1) / 2 * u.pix)))
        elif role == "raster":
            inputs.append((1, m.Identity(1)))
        else:  # wavelength, Stokes: any pixel will do, their outputs are dropped
            inputs.append((0, m.Const1D(0 * u.pix)))
    feed = m.Mapping(tuple(index for index, _ in inputs)) | functools.reduce(
        operator.and_, (model for _, model in inputs)
    )
    return feed | l1.transform | m.Mapping(l1.world_outputs, n_inputs=l1.transform.n_outputs)


def _celestial_frame(l1: L1Coordinates, axes_order: tuple[int, int]) -> cf.CelestialFrame:
    return cf.CelestialFrame(
        axes_order=axes_order,
        reference_frame=l1.celestial.reference_frame,
        unit=l1.celestial.unit,
        axes_names=l1.celestial.axes_names,
        axis_physical_types=("custom:pos.helioprojective.lon", "custom:pos.helioprojective.lat"),
        name="helioprojective",
    )


def _temporal_frame(l1: L1Coordinates, axes_order: tuple[int]) -> cf.TemporalFrame:
    return cf.TemporalFrame(
        axes_order=axes_order,
        reference_frame=l1.temporal.reference_frame,
        unit=(u.s,),
        axes_names=("time",),
        name="temporal",
    )


def _pixel_frame(names: tuple[str, ...]) -> cf.CoordinateFrame:
    return cf.CoordinateFrame(
        naxes=len(names),
        axes_type=["PIXEL"] * len(names),
        axes_order=tuple(range(len(names))),
        unit=[u.pix] * len(names),
        axes_names=names,
        name="pixel",
    )


def quantity_gwcs(l1: L1Coordinates, *, binning: int, depths: int, slit_bins: int, frames: int) -> gwcs.WCS:
    """Pixel (depth, slit, raster) -> log τ, helioprojective lon/lat, time."""
    log_tau = m.Linear1D(
        slope=LOG_TAU_STEP * u.one / u.pix, intercept=LOG_TAU_FIRST * u.one, name="optical_depth"
    )
    depth_frame = cf.CoordinateFrame(
        naxes=1,
        axes_type=("PHYSICAL",),
        axes_order=(0,),
        unit=(u.one,),
        axes_names=("optical depth",),
        axis_physical_types=("phys.absorption.opticalDepth",),
        name="optical_depth",
    )
    world = cf.CompositeFrame([depth_frame, _celestial_frame(l1, (1, 2)), _temporal_frame(l1, (3,))])
    wcs = gwcs.WCS(
        forward_transform=log_tau & _sky_and_time(l1, binning),
        input_frame=_pixel_frame(("optical_depth", "slit_x", "frame_y")),
        output_frame=world,
    )
    wcs.pixel_shape = (depths, slit_bins, frames)
    return wcs


def profile_gwcs(l1: L1Coordinates, arm: Arm, *, binning: int, slit_bins: int, frames: int) -> gwcs.WCS:
    """Pixel (Stokes, wavelength, slit, raster) -> Stokes, wavelength, helioprojective lon/lat, time."""
    stokes = m.Tabular1D(
        np.arange(4) * u.pix, np.arange(1, 5) * u.one, method="nearest", bounds_error=False, name="stokes"
    )
    wavelength = m.Linear1D(
        slope=arm.delta_nm * u.nm / u.pix, intercept=arm.first_wavelength_nm * u.nm, name="wavelength"
    )
    world = cf.CompositeFrame(
        [
            cf.StokesFrame(axes_order=(0,), name="polarization state"),
            cf.SpectralFrame(
                axes_order=(1,),
                unit=(u.nm,),
                axes_names=("wavelength",),
                axis_physical_types=("em.wl",),
                name="wavelength",
            ),
            _celestial_frame(l1, (2, 3)),
            _temporal_frame(l1, (4,)),
        ]
    )
    wcs = gwcs.WCS(
        forward_transform=stokes & wavelength & _sky_and_time(l1, binning),
        input_frame=_pixel_frame(("stokes", "wavelength", "slit_x", "frame_y")),
        output_frame=world,
    )
    wcs.pixel_shape = (4, arm.size, slit_bins, frames)
    return wcs
