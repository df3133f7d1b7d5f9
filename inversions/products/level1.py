"""The Level 1 side (L2-PRODUCTS.md §2): the datasets' folders, the canonical dataset, its frames."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits

from inversions.products.errors import ProductInputError

FRAME_NAME = re.compile(
    r"^VISP_(?P<time>\d{4}_\d{2}_\d{2}T\d{2}_\d{2}_\d{2}_\d{3})_.*_(?P<stokes>[IQUV])_(?P<dataset>[^_]+)_L1\.fits$"
)
ARM_KEY = "VSPARMID"


@dataclass(frozen=True)
class L1Frame:
    path: Path
    date_beg: str


@dataclass(frozen=True)
class CanonicalDataset:
    dataset_id: str
    asdf_path: Path
    frames: tuple[L1Frame, ...]  # Stokes I, by DATE-BEG; frame i pairs with raster step i
    dataset_ids: tuple[str, ...]  # every dataset used, the canonical one first


def find_canonical(
    l1_dir: Path, *, fiducial_arm: str, frames: int, dataset_ids: list[str] | None = None
) -> CanonicalDataset:
    """The dataset whose first Stokes I frame has VSPARMID == `fiducial_arm`, paired with `frames` steps."""
    folders = _dataset_folders(l1_dir, dataset_ids)
    arms = {folder.name: _arm(_stokes_i_paths(folder)[0]) for folder in folders}
    matches = [dataset_id for dataset_id, arm in arms.items() if arm == fiducial_arm]
    if len(matches) != 1:
        found = ", ".join(f"{dataset_id}: {arm}" for dataset_id, arm in arms.items())
        raise ProductInputError(
            f"{'No' if not matches else 'More than one'} Level 1 dataset in {l1_dir} has {ARM_KEY} == "
            f"{fiducial_arm} (DESR-FID); found {found}."
        )
    canonical = l1_dir / matches[0]
    l1_frames = sorted(
        (L1Frame(path, str(_date_beg(path))) for path in _stokes_i_paths(canonical)),
        key=lambda frame: frame.date_beg,
    )
    if len(l1_frames) not in (frames, frames + 1):
        raise ProductInputError(
            f"Level 1 dataset {canonical.name} has {len(l1_frames)} Stokes I frames but the inversion has "
            f"{frames} raster steps (allowed: {frames} or {frames + 1})."
        )
    return CanonicalDataset(
        dataset_id=canonical.name,
        asdf_path=_asdf_path(canonical),
        frames=tuple(l1_frames[:frames]),
        dataset_ids=(canonical.name, *(folder.name for folder in folders if folder != canonical)),
    )


def check_slit(header: fits.Header, *, slit_bins: int, binning: int, dataset_id: str) -> None:
    """The results' slit positions, ``binning`` Level 1 pixels each, must lie on the Level 1
    frame's slit (its first axis): ProductInputError naming both counts."""
    # A tile-compressed frame's table header keeps the image's axes as ZNAXISn.
    pixels = header.get("ZNAXIS1", header.get("NAXIS1"))
    if not isinstance(pixels, int):
        raise ProductInputError(
            f"Level 1 dataset {dataset_id}'s frames do not say their slit length (NAXIS1)."
        )
    if slit_bins * binning > pixels:
        raise ProductInputError(
            f"The results have {slit_bins} slit positions of {binning} pixels ({slit_bins * binning} pixels) "
            f"but Level 1 dataset {dataset_id} has {pixels} pixels along the slit."
        )


def _dataset_folders(l1_dir: Path, dataset_ids: list[str] | None) -> list[Path]:
    if not l1_dir.is_dir():
        raise ProductInputError(f"The Level 1 folder {l1_dir} does not exist.")
    if dataset_ids is None:
        folders = sorted(path for path in l1_dir.iterdir() if path.is_dir())
    else:
        folders = [l1_dir / dataset_id for dataset_id in dataset_ids]
        for folder in folders:
            if not folder.is_dir():
                raise ProductInputError(f"The Level 1 folder has no dataset folder {folder.name}.")
    if not folders:
        raise ProductInputError(f"The Level 1 folder {l1_dir} holds no dataset folders.")
    return folders


def _stokes_i_paths(folder: Path) -> list[Path]:
    """Stokes I frames in time order (the names start with the frame's time)."""
    paths = sorted(
        path for path in folder.iterdir() if (match := FRAME_NAME.match(path.name)) and match["stokes"] == "I"
    )
    if not paths:
        raise ProductInputError(f"Level 1 dataset {folder.name} has no Stokes I frames (VISP_…_I_…_L1.fits).")
    return paths


def read_l1_header(path: Path) -> fits.Header:
    """The header of a frame's image extension, keywords as the file stores them.

    A compressed image's keywords come from its table's header, where they are stored unchanged but
    for the structural ones (BITPIX, NAXISn), which nothing here reads: rebuilding the image header
    took three quarters of the reading time."""
    try:
        with fits.open(path, disable_image_compression=True) as hdul:
            return hdul[1].header
    except (OSError, IndexError) as error:
        raise ProductInputError(
            f"{path.name} is not a Level 1 frame with an image extension: {error}"
        ) from error


def _arm(path: Path) -> str:
    header = read_l1_header(path)
    if ARM_KEY not in header:
        raise ProductInputError(f"{path.name} has no {ARM_KEY}.")
    return str(header[ARM_KEY]).strip()


def _date_beg(path: Path) -> str:
    header = read_l1_header(path)
    if "DATE-BEG" not in header:
        raise ProductInputError(f"{path.name} has no DATE-BEG.")
    return str(header["DATE-BEG"])


def _asdf_path(folder: Path) -> Path:
    paths = sorted(folder.glob(f"VISP_L1_*_{folder.name}_metadata.asdf"))
    if len(paths) != 1:
        raise ProductInputError(
            f"Level 1 dataset {folder.name} needs one VISP_L1_<time>_{folder.name}_metadata.asdf; "
            f"found {len(paths)}."
        )
    return paths[0]
