"""The ASDF that the `dkist` user tools load (L2-PRODUCTS.md §3), built with dkist's own classes and
validated against dkist's Level 2 schema before it is written."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import asdf
import astropy.units as u
import numpy as np
from astropy.table import MaskedColumn, Table
from astropy.time import Time
from dkist import Dataset
from dkist.dataset.inversion import Inversion, Profiles
from dkist.io.dask.loaders import AstropyFITSLoader
from dkist.io.dask.striped_array import FileManager

from inversions.products.coordinates import L1Coordinates, l1_sky_and_time, profile_gwcs, quantity_gwcs
from inversions.products.frames import PROFILE_KINDS, HeaderValues, profile_hdu_index
from inversions.products.results import Results
from inversions.products.spec import PROFILE_BUNIT, QUANTITIES

PROFILE_SUFFIXES = {"Original": "orig", "Fit": "fit"}
# The data's pixel axes, numpy order (slowest first), named as in the data center's own products.
QUANTITY_AXES = ("frame_y", "slit_x", "optical_depth")
PROFILE_AXES = ("frame_y", "slit_x", "wavelength", "stokes")


def inventory(
    *,
    inversion_id: str,
    proposal_id: str,
    canonical_dataset: str,
    dataset_ids: Sequence[str],
    results: Results,
) -> dict[str, Any]:
    return {
        "inversionId": inversion_id,
        "created": Time.now(),
        "proposalId": proposal_id,
        "canonicalDataset": canonical_dataset,
        "datasetIds": list(dataset_ids),
        "spectralLines": [arm.line.key for arm in results.arms],
        "wavelengths": [arm.line.wavelength_nm for arm in results.arms],
        "frameCount": results.frames,
    }


def headers_table(headers: Sequence[HeaderValues]) -> Table:
    """One row per header; each column typed by its values (bool, int, float or str)."""
    keys = list(dict.fromkeys(key for header in headers for key in header))
    table = Table()
    for key in keys:
        values = [header.get(key) for header in headers]
        present = [value for value in values if value is not None]
        dtype = _column_dtype(present)
        missing = [value is None for value in values]
        filler = np.zeros((), dtype=dtype).item() if dtype is not str else ""
        data = np.array([filler if value is None else value for value in values], dtype=dtype)
        table[key] = MaskedColumn(data, mask=missing) if any(missing) else data
    return table


def _column_dtype(values: list[Any]) -> type:
    if values and all(isinstance(value, bool) for value in values):
        return bool
    if values and all(isinstance(value, int) and not isinstance(value, bool) for value in values):
        return np.int64
    if values and all(isinstance(value, int | float) and not isinstance(value, bool) for value in values):
        return np.float64
    return str


def build_inversion(
    *,
    out_dir: Path,
    file_names: Sequence[str],
    headers: list[list[HeaderValues]],
    results: Results,
    l1: L1Coordinates,
    meta_inventory: dict[str, Any],
) -> Inversion:
    """The Inversion of the files `file_names` (time order), with their `headers`: [file][hdu]."""

    def dataset(target: int, shape: tuple[int, ...], wcs: Any, unit: u.UnitBase, **meta: Any) -> Dataset:
        files = FileManager.from_parts(
            list(file_names), target, "float32", shape, loader=AstropyFITSLoader, basepath=out_dir
        )
        meta |= {"headers": headers_table([file[target] for file in headers]), "inventory": meta_inventory}
        result = Dataset(files._generate_array(), wcs=wcs, meta=meta, unit=unit)
        result._file_manager = files
        return result

    frames, slit_bins, depths = results.frames, results.slit_bins, results.depths
    quantities_wcs = quantity_gwcs(
        l1, binning=results.binning, depths=depths, slit_bins=slit_bins, frames=frames
    )
    quantities = {
        quantity.key: dataset(index, (1, slit_bins, depths), quantities_wcs, u.Unit(quantity.bunit))
        for index, quantity in enumerate(QUANTITIES, start=1)
    }
    profile_items = {}
    profile_wcs = {}
    for arm in results.arms:
        wcs = profile_gwcs(l1, arm, binning=results.binning, slit_bins=slit_bins, frames=frames)
        profile_wcs[arm.line.key] = wcs
        for kind in PROFILE_KINDS:
            profile_items[f"{arm.line.key}_{PROFILE_SUFFIXES[kind]}"] = dataset(
                profile_hdu_index(results, arm, kind),
                (1, slit_bins, arm.size, 4),
                wcs,
                u.Unit(PROFILE_BUNIT),
                ion=arm.line.ion,
                wavelength=arm.line.wavelength_nm,
                profile=kind.lower(),
            )
    profiles = Profiles(
        profile_items,
        aligned_axes=tuple((0, 1, 3) for _ in profile_items),
        meta={"axes": list(PROFILE_AXES), "gwcs": profile_wcs},
    )
    meta = {
        "axes": list(QUANTITY_AXES),
        "gwcs": quantities_wcs,
        # The L1 dataset's own (slit, raster) -> lon, lat, time; the gwcs above bin in front of it.
        "l1gwcs": {"transform": l1_sky_and_time(l1), "helioFrame": l1.celestial.reference_frame},
        "inventory": meta_inventory,
        "headers": headers_table([file[0] for file in headers]),
    }
    return Inversion(quantities, aligned_axes="all", meta=meta, profiles=profiles)


def write_asdf(inversion: Inversion, path: Path) -> int:
    """Validate against dkist's Level 2 schema, write under a temporary name, rename; its size."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    schema = resources.files("dkist.io") / "level_2_dataset_schema.yaml"
    try:
        with (
            resources.as_file(schema) as schema_path,
            asdf.AsdfFile({"inversion": inversion}, custom_schema=schema_path) as file,
        ):
            # write_to validates against the custom schema itself: no separate validate() pass.
            file.write_to(temporary, all_array_compression="zlib")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path.stat().st_size
