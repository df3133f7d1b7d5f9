"""The science team's three result files (L2-PRODUCTS.md §1): validated from their headers, read
one raster step at a time."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from inversions.products.errors import ProductInputError
from inversions.products.spec import LINES, QUANTITIES, SpectralLine

QUANTITIES_FILE = "inv_res_mod.fits"
FIT_FILE = "inv_res_pre.fits"
ORIGINAL_FILE = "per_ori.fits"
BINNING_KEY = "DESR-BIN"
FIDUCIAL_ARM_KEY = "DESR-FID"
BITPIX_DTYPES = {-32: ">f4", -64: ">f8"}


@dataclass(frozen=True)
class ImageLayout:
    """Where a primary array lies in its file, so that one raster step can be read alone."""

    path: Path
    data_offset: int
    shape: tuple[int, int, int, int]  # numpy order: [a, b, frameY, slitX]
    dtype: str


@dataclass(frozen=True)
class Arm:
    """One spectral arm: a run of one line id along the concatenated wavelength axis."""

    line: SpectralLine
    start: int
    stop: int
    delta_nm: float  # mean wavelength step
    reference_pixel: float  # 1-based pixel of the line's reference wavelength

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def first_wavelength_nm(self) -> float:
        return self.line.wavelength_nm + (1 - self.reference_pixel) * self.delta_nm


@dataclass(frozen=True)
class Results:
    quantities: ImageLayout
    fit: ImageLayout
    original: ImageLayout
    arms: tuple[Arm, ...]
    binning: int  # L1 slit pixels per slit bin
    fiducial_arm: str  # VSPARMID of the canonical L1 dataset

    @property
    def frames(self) -> int:
        return self.quantities.shape[2]

    @property
    def slit_bins(self) -> int:
        return self.quantities.shape[3]

    @property
    def depths(self) -> int:
        return self.quantities.shape[1]


def read_results(folder: Path) -> Results:
    """Validate the three files in `folder` from their headers and small extensions."""
    paths = [folder / name for name in (QUANTITIES_FILE, FIT_FILE, ORIGINAL_FILE)]
    for path in paths:
        if not path.is_file():
            raise ProductInputError(f"Missing result file {path}.")
    quantities, fit, original = (_layout(path) for path in paths)
    if quantities.shape[0] != len(QUANTITIES):
        raise ProductInputError(
            f"{quantities.path.name} holds {quantities.shape[0]} quantities; expected {len(QUANTITIES)}."
        )
    for profiles in (fit, original):
        if profiles.shape[0] != 4:
            raise ProductInputError(
                f"{profiles.path.name} holds {profiles.shape[0]} Stokes parameters; expected 4."
            )
        if profiles.shape[2:] != quantities.shape[2:]:
            raise ProductInputError(
                f"{profiles.path.name} has {profiles.shape[2]} frames x {profiles.shape[3]} slit positions "
                "but "
                f"{quantities.path.name} has {quantities.shape[2]} x {quantities.shape[3]}."
            )
    if fit.shape != original.shape:
        raise ProductInputError(
            f"{fit.path.name} has shape {list(fit.shape)} "
            f"but {original.path.name} has {list(original.shape)}."
        )
    offsets, line_ids = _wavelength_axis(fit)
    original_offsets, original_ids = _wavelength_axis(original)
    if not np.array_equal(offsets, original_offsets):
        raise ProductInputError(
            f"The wavelength offsets of {fit.path.name} and {original.path.name} disagree."
        )
    if not np.array_equal(line_ids, original_ids):
        raise ProductInputError(f"The line ids of {fit.path.name} and {original.path.name} disagree.")
    header = fits.getheader(fit.path, 0)
    return Results(
        quantities=quantities,
        fit=fit,
        original=original,
        arms=_arms(offsets, line_ids, fit.path.name),
        binning=_binning(header, fit.path.name),
        fiducial_arm=_required_key(header, FIDUCIAL_ARM_KEY, fit.path.name).strip(),
    )


def read_frame(layout: ImageLayout, frame: int) -> np.ndarray:
    """The `[a, b, slitX]` section of raster step `frame`, read without touching the rest.

    Not through a memory map: the kernel maps the cached pages around each one a map touches, so a
    process's resident size would grow with the file (with the frame count), though it reads no more."""
    count, depth, frames, slit = layout.shape
    itemsize = np.dtype(layout.dtype).itemsize
    run = slit * itemsize
    buffer = bytearray(count * depth * run)
    view = memoryview(buffer)
    with open(layout.path, "rb") as file:
        descriptor = file.fileno()
        for row in range(count * depth):
            offset = layout.data_offset + (row * frames + frame) * run
            if os.preadv(descriptor, [view[row * run : (row + 1) * run]], offset) != run:
                raise ProductInputError(f"{layout.path.name} ends before the data of frame {frame}.")
    return np.frombuffer(buffer, dtype=layout.dtype).reshape(count, depth, slit)


def _layout(path: Path) -> ImageLayout:
    try:
        with fits.open(path, memmap=True) as hdul:
            header = hdul[0].header
            data_offset = hdul.fileinfo(0)["datLoc"]
    except OSError as error:
        raise ProductInputError(f"{path.name} is not a readable FITS file: {error}") from error
    shape = tuple(header.get(f"NAXIS{axis}", 0) for axis in range(header.get("NAXIS", 0), 0, -1))
    if len(shape) != 4:
        raise ProductInputError(f"{path.name} has a {len(shape)}-dimensional primary array; expected 4.")
    if header.get("BITPIX") not in BITPIX_DTYPES or "BSCALE" in header or "BZERO" in header:
        raise ProductInputError(f"{path.name} must hold unscaled floating point data (BITPIX -32 or -64).")
    expected_end = data_offset + int(np.prod(shape)) * abs(header["BITPIX"]) // 8
    if path.stat().st_size < expected_end:
        raise ProductInputError(f"{path.name} is truncated: its header announces shape {list(shape)}.")
    return ImageLayout(path, data_offset, shape, BITPIX_DTYPES[header["BITPIX"]])  # type: ignore[arg-type]


def _wavelength_axis(layout: ImageLayout) -> tuple[np.ndarray, np.ndarray]:
    """The two 1-D extensions: wavelength offsets (mÅ) and line ids."""
    with fits.open(layout.path, memmap=True) as hdul:
        if len(hdul) != 3:
            raise ProductInputError(
                f"{layout.path.name} has {len(hdul) - 1} extensions; "
                "expected 2 (wavelength offsets, line ids)."
            )
        offsets, line_ids = (np.array(hdu.data, dtype=np.float64).ravel() for hdu in hdul[1:])
    wavelengths = layout.shape[1]
    if offsets.size != wavelengths or line_ids.size != wavelengths:
        raise ProductInputError(
            f"{layout.path.name}: the wavelength extensions hold {offsets.size} offsets and {line_ids.size} "
            f"line ids for {wavelengths} wavelengths."
        )
    return offsets, line_ids


def _arms(offsets: np.ndarray, line_ids: np.ndarray, file_name: str) -> tuple[Arm, ...]:
    arms: list[Arm] = []
    boundaries = [0, *(np.flatnonzero(np.diff(line_ids)) + 1).tolist(), line_ids.size]
    for start, stop in itertools.pairwise(boundaries):
        line_id = line_ids[start]
        line = LINES.get(int(line_id)) if float(line_id).is_integer() else None
        if line is None:
            raise ProductInputError(f"{file_name}: unknown line id {line_id:g} (known: 23, 9, 4).")
        if any(arm.line == line for arm in arms):
            raise ProductInputError(f"{file_name}: line id {line.line_id} appears in two separate runs.")
        if stop - start < 2:
            raise ProductInputError(f"{file_name}: line id {line.line_id} has a single wavelength.")
        arm_offsets_nm = offsets[start:stop] * 1e-4  # mÅ -> nm
        delta = float(np.mean(np.diff(arm_offsets_nm)))
        if delta <= 0:
            raise ProductInputError(
                f"{file_name}: the wavelength offsets of line {line.line_id} do not increase."
            )
        arms.append(Arm(line, start, stop, delta, -float(arm_offsets_nm.min()) / delta + 1))
    return tuple(arms)


def _binning(header: fits.Header, file_name: str) -> int:
    value = _required_key(header, BINNING_KEY, file_name)
    try:
        binning = float(value)
    except ValueError:
        binning = 0.0
    if binning < 1 or not binning.is_integer():
        raise ProductInputError(f"{file_name}: {BINNING_KEY} must be a positive whole number, not {value!r}.")
    return int(binning)


def _required_key(header: fits.Header, key: str, file_name: str) -> str:
    if key not in header or header[key] in (None, ""):
        raise ProductInputError(f"{file_name}: the primary header has no {key}.")
    return str(header[key])
