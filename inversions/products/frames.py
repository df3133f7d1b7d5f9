"""One Level 2 FITS file per raster step (L2-PRODUCTS.md §3): built from one step's inputs, written
under a temporary name, renamed when complete."""

from __future__ import annotations

import os
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from astropy.io import fits

from inversions.products.errors import ProductInputError
from inversions.products.level1 import read_l1_header
from inversions.products.results import Arm, Results, read_frame
from inversions.products.spec import (
    COPIED_KEYS,
    FIXED_PRIMARY_CARDS,
    NUMBERED_KEY_PREFIXES,
    OPTIONAL_KEYS,
    QUANTITIES,
)
from inversions.products.wcs import depth_axis, stokes_axis, wavelength_axis, wcs_cards

TEMPORARY_SUFFIX = ".partial"
BLOCK_SIZE = 2880  # FITS block
PROFILE_KINDS = ("Original", "Fit")


@dataclass(frozen=True)
class FramePlan:
    """What every frame shares; sent as is to worker processes."""

    results: Results
    inversion_id: str
    out_dir: Path


@dataclass(frozen=True)
class FrameJob:
    index: int  # raster step
    l1_path: Path  # the paired L1 Stokes I frame
    file_name: str


def hdu_count(results: Results) -> int:
    return 1 + len(QUANTITIES) + 2 * len(results.arms)


def profile_hdu_index(results: Results, arm: Arm, kind: str) -> int:
    return 1 + len(QUANTITIES) + 2 * results.arms.index(arm) + PROFILE_KINDS.index(kind)


def write_frame(plan: FramePlan, job: FrameJob) -> int:
    """Write the file of one raster step; its size in bytes."""
    l1_header = read_l1_header(job.l1_path)
    hdul = fits.HDUList([_primary_hdu(l1_header, plan, job)])
    hdul.extend(_quantity_hdus(plan.results, job.index, l1_header))
    hdul.extend(_profile_hdus(plan.results, job.index, l1_header))
    for hdu in hdul:
        # Placeholders, so that the size below is the final one; writeto fills them in.
        hdu.header["DATASUM"] = ("0", "data unit checksum")
        hdu.header["CHECKSUM"] = ("0" * 16, "HDU checksum")
    size = sum(_hdu_bytes(hdu) for hdu in hdul)
    hdul[0].header["FRAMEVOL"] = size / 1e6
    final = plan.out_dir / job.file_name
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}{TEMPORARY_SUFFIX}")
    try:
        # The headers are built here from checked values: astropy's write-time verification
        # (a pass over every card of every HDU) would find nothing to fix.
        hdul.writeto(temporary, checksum=True, output_verify="ignore")
        if temporary.stat().st_size != size:
            raise RuntimeError(f"{final.name}: wrote {temporary.stat().st_size} bytes, expected {size}.")
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    return size


def _hdu_bytes(hdu: fits.PrimaryHDU | fits.ImageHDU) -> int:
    """What `hdu` takes in the file: its padded header and its padded data (no scaling here).

    Equal to astropy's `filebytes()`, which instead renders the data into a null file."""
    data = 0 if hdu.data is None else hdu.data.nbytes
    return len(hdu.header.tostring()) + -(-data // BLOCK_SIZE) * BLOCK_SIZE


def is_complete(path: Path, expected_hdus: int) -> bool:
    """Whether `path` is a finished product: every HDU present and its checksums verifying."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with fits.open(path, memmap=False) as hdul:
                return len(hdul) == expected_hdus and all(
                    hdu.verify_datasum() == 1 and hdu.verify_checksum() == 1 for hdu in hdul
                )
    except (OSError, ValueError, Warning):
        return False


def _primary_hdu(l1_header: fits.Header, plan: FramePlan, job: FrameJob) -> fits.PrimaryHDU:
    header = fits.Header()
    for key in COPIED_KEYS:
        if key in l1_header:
            header.append(fits.Card(key, l1_header[key], l1_header.comments[key]))
        elif key not in OPTIONAL_KEYS:
            raise ProductInputError(f"{job.l1_path.name} has no {key}.")
    for key in l1_header:
        if key.startswith(NUMBERED_KEY_PREFIXES) and key[len("PROPID") :].isdigit():
            header.append(fits.Card(key, l1_header[key], l1_header.comments[key]))
    for key, value, comment in FIXED_PRIMARY_CARDS:
        header[key] = (value, comment)
    header["DSETID"] = (plan.inversion_id, "Unique ID of the inversion this file belongs to")
    header["FILE_ID"] = (str(uuid.uuid4()), "Unique ID of this file")
    header["FILENAME"] = (job.file_name, "Name of this file")
    header["FRAMEVOL"] = (0.0, "Size of this file [MB]")
    hdu = fits.PrimaryHDU()
    hdu.header["EXTEND"] = True
    hdu.header.extend(header)
    return hdu


def _image_hdu(data: np.ndarray, cards: list[tuple[str, object] | fits.Card]) -> fits.ImageHDU:
    # Big-endian and contiguous, so that writing needs no further copy.
    return fits.ImageHDU(data=np.ascontiguousarray(data, dtype=">f4"), header=fits.Header(cards))


def _cards(cards: list[tuple[str, object]]) -> list[fits.Card]:
    """Cards parsed once, for the HDUs that share them (each HDU's header copies them)."""
    return [fits.Card(*card) for card in cards]


def _data_range(data: np.ndarray) -> list[tuple[str, object]]:
    finite = data[np.isfinite(data)]
    if not finite.size:
        return []
    return [("DATAMIN", float(finite.min())), ("DATAMAX", float(finite.max()))]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _quantity_hdus(results: Results, frame: int, l1_header: fits.Header) -> list[fits.ImageHDU]:
    values = read_frame(results.quantities, frame)  # [quantity, depth, slit]
    wcs = _cards(wcs_cards(l1_header, [depth_axis()], results.binning))
    hdus = []
    for index, quantity in enumerate(QUANTITIES):
        data = quantity.convert(values[index]).T[np.newaxis]  # (1, slit, depth)
        cards = [("EXTNAME", quantity.extname), ("BTYPE", quantity.btype), ("BUNIT", quantity.bunit),
                 *_data_range(data), ("DATE", _now()), *wcs]  # fmt: skip
        hdus.append(_image_hdu(data, cards))
    return hdus


def _profile_hdus(results: Results, frame: int, l1_header: fits.Header) -> list[fits.ImageHDU]:
    profiles = {"Original": read_frame(results.original, frame), "Fit": read_frame(results.fit, frame)}
    hdus = []
    for arm in results.arms:
        wcs = _cards(wcs_cards(l1_header, [stokes_axis(), wavelength_axis(arm)], results.binning))
        for kind in PROFILE_KINDS:
            # [stokes, wavelength, slit] -> (1, slit, wavelength, stokes)
            data = profiles[kind][:, arm.start : arm.stop, :].transpose(2, 1, 0)[np.newaxis]
            cards = [
                ("EXTNAME", f"{arm.line.ion} Profile {kind}"),
                ("BTYPE", "spect.line.profile"),
                ("SPECPFTP", kind, "Profile type"),
                ("SPECPFIN", arm.line.ion, "Ion of the profile's line"),
                ("DATE", _now()),
                *wcs,
            ]
            hdus.append(_image_hdu(data, cards))
    return hdus
