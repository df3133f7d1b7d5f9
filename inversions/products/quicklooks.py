"""Quicklook PNGs: maps of a few quantities at two depths, and one pixel's Stokes profiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # no pyplot: a Figure saves to PNG through Agg, without global state

from inversions.products.results import ImageLayout, Results, read_frame
from inversions.products.spec import LOG_TAU_FIRST, LOG_TAU_STEP, QUANTITIES, STOKES

MAP_QUANTITIES = ("temperature", "mag_strength", "mag_inclination", "velocity")
MAP_LOG_TAUS = (0.0, -1.0)
# Shown at the page's full width (about 1200 px) and opened full size: matplotlib's 10 pt labels
# come out about 18 px high.
DPI = 130
COLOUR_MAPS = {
    "temperature": "inferno",
    "mag_strength": "viridis",
    "mag_inclination": "RdBu_r",
    "velocity": "bwr",
}


def write_quicklooks(results: Results, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [_write_map(results, key, folder) for key in MAP_QUANTITIES]
    paths.append(_write_profiles(results, folder))
    return paths


def _depth_index(results: Results, log_tau: float) -> int:
    # The nearest depth the grid has (small grids may not reach log τ = -1).
    return int(np.clip(round((log_tau - LOG_TAU_FIRST) / LOG_TAU_STEP), 0, results.depths - 1))


def _read_plane(layout: ImageLayout, first: int, second: int) -> np.ndarray:
    """The contiguous [frameY, slitX] plane at (first, second) of a [a, b, frameY, slitX] file."""
    _, depth, frames, slit = layout.shape
    itemsize = np.dtype(layout.dtype).itemsize
    with open(layout.path, "rb") as file:
        file.seek(layout.data_offset + (first * depth + second) * frames * slit * itemsize)
        return np.frombuffer(file.read(frames * slit * itemsize), dtype=layout.dtype).reshape(frames, slit)


def _write_map(results: Results, key: str, folder: Path) -> Path:
    index, quantity = next((i, q) for i, q in enumerate(QUANTITIES) if q.key == key)
    # No layout engine: constrained layout costs seconds per figure here.
    figure = Figure(figsize=(4.5 * len(MAP_LOG_TAUS), 4))
    figure.subplots_adjust(left=0.1, right=0.95, bottom=0.12, top=0.9, wspace=0.35)
    for panel, log_tau in enumerate(MAP_LOG_TAUS, start=1):
        depth = _depth_index(results, log_tau)
        values = quantity.convert(_read_plane(results.quantities, index, depth))
        axes = figure.add_subplot(1, len(MAP_LOG_TAUS), panel)
        image = axes.imshow(values.T, origin="lower", aspect="auto", cmap=COLOUR_MAPS[key])
        axes.set_title(f"{quantity.extname}, log τ = {LOG_TAU_FIRST + depth * LOG_TAU_STEP:.1f}", fontsize=9)
        axes.set_xlabel("raster step")
        axes.set_ylabel("slit position (binned)")
        figure.colorbar(image, ax=axes, label=quantity.bunit)
    path = folder / f"{key}.png"
    figure.savefig(path, dpi=DPI)
    return path


def _write_profiles(results: Results, folder: Path) -> Path:
    """The observed and fitted profiles of the pixel with the strongest field at log τ = 0."""
    strength = _read_plane(results.quantities, 4, _depth_index(results, 0.0))
    frame, slit = np.unravel_index(int(np.nanargmax(np.abs(strength))), strength.shape)
    observed = read_frame(results.original, int(frame))[:, :, slit]
    fitted = read_frame(results.fit, int(frame))[:, :, slit]
    arms = results.arms
    figure = Figure(figsize=(3.5 * len(arms), 8))
    figure.subplots_adjust(left=0.08, right=0.97, bottom=0.07, top=0.92, wspace=0.3, hspace=0.3)
    for column, arm in enumerate(arms):
        wavelengths = arm.first_wavelength_nm + arm.delta_nm * np.arange(arm.size)
        for row, stokes in enumerate(STOKES):
            axes = figure.add_subplot(len(STOKES), len(arms), row * len(arms) + column + 1)
            axes.plot(wavelengths, observed[row, arm.start : arm.stop], ".", markersize=3, label="observed")
            axes.plot(wavelengths, fitted[row, arm.start : arm.stop], "-", linewidth=1, label="fit")
            if row == 0:
                axes.set_title(f"{arm.line.ion} ({arm.line.wavelength_nm:.2f} nm)", fontsize=9)
            if column == 0:
                axes.set_ylabel(stokes)
            if row == len(STOKES) - 1:
                axes.set_xlabel("wavelength [nm]")
    figure.axes[0].legend(fontsize=7)
    figure.suptitle(f"Raster step {frame}, slit bin {slit}", fontsize=10)
    path = folder / "profiles.png"
    figure.savefig(path, dpi=DPI)
    return path
