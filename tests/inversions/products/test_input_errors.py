"""Every input problem is one ProductInputError whose message names the file, key or counts."""

import numpy as np
import pytest
from astropy.io import fits

from inversions.products import ProductInputError, generate
from inversions.products.results import FIT_FILE, ORIGINAL_FILE, QUANTITIES_FILE
from inversions.products.synthetic import write_l1_dataset, write_results

from .conftest import CANONICAL, FRAMES, SLIT_BINS


def run(inputs, tmp_path, **options):
    return generate(inputs.results, inputs.l1, tmp_path / "out", **options)


def expect_error(inputs, tmp_path, message: str, **options) -> None:
    with pytest.raises(ProductInputError, match=message):
        run(inputs, tmp_path, **options)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def rewrite_primary(path, data=None, **header_changes) -> None:
    with fits.open(path) as hdul:
        hdus = [hdu.copy() for hdu in hdul]
    if data is not None:
        hdus[0] = fits.PrimaryHDU(data, header=hdus[0].header)
    for key, value in header_changes.items():
        if value is None:
            del hdus[0].header[key]
        else:
            hdus[0].header[key] = value
    fits.HDUList(hdus).writeto(path, overwrite=True)


def rewrite_extension(path, index: int, values) -> None:
    with fits.open(path) as hdul:
        hdus = [hdu.copy() for hdu in hdul]
    hdus[index] = fits.ImageHDU(np.asarray(values, dtype=np.float32))
    fits.HDUList(hdus).writeto(path, overwrite=True)


def test_missing_result_file(own_inputs, tmp_path):
    (own_inputs.results / ORIGINAL_FILE).unlink()
    expect_error(own_inputs, tmp_path, r"Missing result file .*per_ori\.fits")


def test_wrong_number_of_quantities(own_inputs, tmp_path):
    path = own_inputs.results / QUANTITIES_FILE
    rewrite_primary(path, data=fits.getdata(path)[:10])
    expect_error(own_inputs, tmp_path, r"inv_res_mod\.fits holds 10 quantities; expected 11")


def test_wrong_dimensionality(own_inputs, tmp_path):
    path = own_inputs.results / QUANTITIES_FILE
    rewrite_primary(path, data=fits.getdata(path)[0])
    expect_error(own_inputs, tmp_path, r"inv_res_mod\.fits has a 3-dimensional primary array; expected 4")


def test_frames_disagree_between_files(own_inputs, tmp_path):
    path = own_inputs.results / FIT_FILE
    rewrite_primary(path, data=fits.getdata(path)[:, :, :-1])
    expect_error(
        own_inputs, tmp_path,
        rf"inv_res_pre\.fits has {FRAMES - 1} frames x {SLIT_BINS} slit positions but inv_res_mod\.fits has "
        rf"{FRAMES} x {SLIT_BINS}",
    )  # fmt: skip


def test_slit_positions_disagree_between_files(own_inputs, tmp_path):
    path = own_inputs.results / ORIGINAL_FILE
    rewrite_primary(path, data=fits.getdata(path)[..., :-2])
    expect_error(own_inputs, tmp_path, rf"per_ori\.fits has {FRAMES} frames x {SLIT_BINS - 2} slit positions")


def test_wavelength_offsets_disagree(own_inputs, tmp_path):
    path = own_inputs.results / ORIGINAL_FILE
    offsets = fits.getdata(path, 1) + 1
    rewrite_extension(path, 1, offsets)
    expect_error(own_inputs, tmp_path, r"wavelength offsets of inv_res_pre\.fits and per_ori\.fits disagree")


def test_line_ids_disagree(own_inputs, tmp_path):
    path = own_inputs.results / ORIGINAL_FILE
    line_ids = fits.getdata(path, 2).copy()
    line_ids[:28] = 4  # Na D relabelled Ca II
    rewrite_extension(path, 2, line_ids)
    expect_error(own_inputs, tmp_path, r"line ids of inv_res_pre\.fits and per_ori\.fits disagree")


def test_unknown_line_id(own_inputs, tmp_path):
    for name in (FIT_FILE, ORIGINAL_FILE):
        line_ids = fits.getdata(own_inputs.results / name, 2).copy()
        line_ids[-5:] = 7
        rewrite_extension(own_inputs.results / name, 2, line_ids)
    expect_error(own_inputs, tmp_path, r"inv_res_pre\.fits: unknown line id 7")


def test_missing_wavelength_extension(own_inputs, tmp_path):
    path = own_inputs.results / FIT_FILE
    with fits.open(path) as hdul:
        fits.HDUList([hdu.copy() for hdu in hdul[:2]]).writeto(path, overwrite=True)
    expect_error(own_inputs, tmp_path, r"inv_res_pre\.fits has 1 extensions; expected 2")


@pytest.mark.parametrize("key", ["DESR-BIN", "DESR-FID"])
def test_missing_desire_key(own_inputs, tmp_path, key):
    rewrite_primary(own_inputs.results / FIT_FILE, **{key: None})
    expect_error(own_inputs, tmp_path, rf"inv_res_pre\.fits: the primary header has no {key}")


def test_bad_binning(own_inputs, tmp_path):
    rewrite_primary(own_inputs.results / FIT_FILE, **{"DESR-BIN": 0})
    expect_error(own_inputs, tmp_path, r"DESR-BIN must be a positive whole number, not '0'")


def test_no_canonical_dataset(own_inputs, tmp_path):
    rewrite_primary(own_inputs.results / FIT_FILE, **{"DESR-FID": 3})
    expect_error(
        own_inputs,
        tmp_path,
        r"No Level 1 dataset .* has VSPARMID == 3 \(DESR-FID\); found BVNED: 1, BXPJD: 2",
    )


def test_frame_count_mismatch(own_inputs, tmp_path):
    write_results(own_inputs.results, frames=FRAMES - 2, slit_bins=SLIT_BINS)
    expect_error(
        own_inputs, tmp_path,
        rf"Level 1 dataset {CANONICAL} has {FRAMES + 1} Stokes I frames "
        rf"but the inversion has {FRAMES - 2} raster steps \(allowed: {FRAMES - 2} or {FRAMES - 1}\)",
    )  # fmt: skip


def test_missing_l1_asdf(own_inputs, tmp_path):
    next((own_inputs.l1 / CANONICAL).glob("*.asdf")).unlink()
    expect_error(
        own_inputs,
        tmp_path,
        rf"Level 1 dataset {CANONICAL} needs one VISP_L1_<time>_{CANONICAL}_metadata\.asdf",
    )


def test_named_dataset_missing(inputs, tmp_path):
    expect_error(inputs, tmp_path, r"no dataset folder NOPE", dataset_ids=[CANONICAL, "NOPE"])


def test_l1_frame_without_a_copied_key(own_inputs, tmp_path):
    write_l1_dataset(own_inputs.l1 / CANONICAL, CANONICAL, frames=FRAMES, slit_pixels=60)
    for path in sorted((own_inputs.l1 / CANONICAL).glob("*_I_*.fits")):
        with fits.open(path) as hdul:
            header = hdul[1].header.copy()
            data = hdul[1].data
        del header["LIGHTLVL"]
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header)]).writeto(path, overwrite=True)
    with pytest.raises(
        ProductInputError, match=r"VISP_2024_04_17T20_25_26_516_.*_I_BXPJD_L1\.fits has no LIGHTLVL"
    ):
        run(own_inputs, tmp_path)


def test_bad_inversion_id(inputs, tmp_path):
    expect_error(inputs, tmp_path, r"'inv\.abc' is not an inversion id", inversion_id="inv.abc")
