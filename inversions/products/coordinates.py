"""World coordinates of the products' ASDF: its gwcs, from the canonical L1 dataset's gwcs.

These and the FITS WCS cards (wcs.py) bin the slit the same way: L2 slit pixel p covers L1 pixels
b(p-1)+1 … bp (1-based), so its centre is L1 pixel b·x + (b-1)/2 (0-based x).
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
from astropy.modeling import Model
from astropy.modeling import models as m
from gwcs import coordinate_frames as cf

from inversions.products.errors import ProductInputError
from inversions.products.results import Arm
from inversions.products.spec import LOG_TAU_FIRST, LOG_TAU_STEP


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


def l1_sky_and_time(l1: L1Coordinates) -> Model:
    """(L1 slit pixel, raster pixel) -> (lon, lat, time) through the L1 transform."""
    inputs = []
    for role in l1.pixel_roles:
        if role == "slit":
            inputs.append((0, m.Identity(1)))
        elif role == "raster":
            inputs.append((1, m.Identity(1)))
        else:  # wavelength, Stokes: any pixel will do, their outputs are dropped
            inputs.append((0, m.Const1D(0 * u.pix)))
    feed = m.Mapping(tuple(index for index, _ in inputs)) | functools.reduce(
        operator.and_, (model for _, model in inputs)
    )
    return feed | l1.transform | m.Mapping(l1.world_outputs, n_inputs=l1.transform.n_outputs)


def _sky_and_time(l1: L1Coordinates, binning: int) -> Model:
    """(L2 slit pixel, raster pixel) -> (lon, lat, time): the centre of the L2 pixel's L1 bin."""
    bin_centre = m.Scale(binning) | m.Shift((binning - 1) / 2 * u.pix)
    return bin_centre & m.Identity(1) | l1_sky_and_time(l1)


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
