"""End to end: the products of a small synthetic inversion, read back as a user reads them."""

import astropy.units as u
import dkist
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from inversions.products import frames, generate
from inversions.products.results import FIT_FILE, ORIGINAL_FILE, QUANTITIES_FILE
from inversions.products.spec import COPIED_KEYS, OPTIONAL_KEYS, QUANTITIES

from .conftest import (
    BINNING,
    CANONICAL,
    FRAMES,
    OTHER,
    SLIT_BINS,
    assert_header_tables_hold_the_files_headers,
)


@pytest.fixture(scope="module")
def inversion(generated):
    return dkist.load_dataset(generated.asdf_path)


@pytest.fixture(scope="module")
def converted(inputs):
    """What the products must hold: the inputs converted, [quantity] -> (frame, slit, depth)."""
    values = fits.getdata(inputs.results / QUANTITIES_FILE)  # small: the test may read it whole
    return {q.key: q.convert(values[i]).transpose(1, 2, 0) for i, q in enumerate(QUANTITIES)}


def test_result_describes_what_was_written(generated):
    assert generated.frame_count == FRAMES
    assert generated.frames_written == FRAMES
    assert generated.canonical_dataset == CANONICAL
    assert generated.dataset_ids == (CANONICAL, OTHER)
    assert generated.spectral_lines == ("NaID", "FeI630", "CaII854")
    assert [file.name for file in generated.files] == [
        "INV_PUYATW_2024_04_17T20_25_26_516_L2.fits",
        "INV_PUYATW_2024_04_17T20_25_29_334_L2.fits",
        "INV_PUYATW_2024_04_17T20_25_32_152_L2.fits",
        "INV_PUYATW_2024_04_17T20_25_34_970_L2.fits",
        "INV_PUYATW_2024_04_17T20_25_37_788_L2.fits",
    ]
    assert generated.asdf_path.name == "INV_PUYATW_L2_metadata.asdf"
    assert sorted(path.name for path in generated.out_dir.iterdir()) == sorted(
        [file.name for file in generated.files] + [generated.asdf_path.name]
    )
    assert generated.bytes == sum(file.bytes for file in generated.files) + generated.asdf_path.stat().st_size
    assert [path.name for path in generated.quicklooks] == [
        "temperature.png", "mag_strength.png", "mag_inclination.png", "velocity.png", "profiles.png",
    ]  # fmt: skip
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in generated.quicklooks)
    # Wide enough for the page's full width, where their labels are read (PNG header: width).
    maps = generated.quicklooks[:-1]
    assert all(int.from_bytes(path.read_bytes()[16:20], "big") >= 1100 for path in maps)


def test_dkist_loads_every_quantity_exactly_with_its_unit(inversion, converted):
    assert sorted(inversion.keys()) == sorted(q.key for q in QUANTITIES)
    for quantity in QUANTITIES:
        dataset = inversion[quantity.key]
        assert dataset.data.shape == (FRAMES, SLIT_BINS, 15)
        assert dataset.unit == u.Unit(quantity.bunit)
        np.testing.assert_array_equal(np.asarray(dataset.data), converted[quantity.key])


def test_conversions_follow_the_contract(converted, inputs):
    raw = fits.getdata(inputs.results / QUANTITIES_FILE)
    np.testing.assert_allclose(converted["mag_strength"], raw[4].transpose(1, 2, 0) / 1e4, rtol=1e-6)
    np.testing.assert_allclose(converted["density"], raw[10].transpose(1, 2, 0) * 1000, rtol=1e-6)
    assert raw[7].min() < 0 <= converted["mag_azimuth"].min() and converted["mag_azimuth"].max() < 360


def test_dkist_loads_the_profiles_per_arm(inversion, inputs):
    fitted = fits.getdata(inputs.results / FIT_FILE)
    observed = fits.getdata(inputs.results / ORIGINAL_FILE)
    starts = {"NaID": 0, "FeI630": 28, "CaII854": 52}
    sizes = {"NaID": 28, "FeI630": 24, "CaII854": 32}
    assert sorted(inversion.profiles.keys()) == sorted(
        f"{line}_{kind}" for line in starts for kind in ("orig", "fit")
    )
    for line, start in starts.items():
        for kind, source in (("orig", observed), ("fit", fitted)):
            profile = inversion.profiles[f"{line}_{kind}"]
            expected = source[:, start : start + sizes[line]].transpose(
                2, 3, 1, 0
            )  # (frame, slit, wl, stokes)
            np.testing.assert_array_equal(np.asarray(profile.data), expected)


def test_pixel_to_world_agrees_with_the_fits_wcs(inversion, generated):
    frame, slit, depth = 3, 7, 4
    path = generated.out_dir / generated.files[frame].name
    optical_depth, sky, _ = inversion["temperature"].wcs.pixel_to_world(depth, slit, frame)
    fits_world = WCS(fits.getheader(path, 2)).pixel_to_world_values(depth, slit, 0)
    assert optical_depth.value == pytest.approx(fits_world[0])
    # FITS axes: 2 = latitude (slit), 3 = longitude (raster), in degrees.
    assert sky.Tx.to_value("deg") == pytest.approx(fits_world[2], abs=1e-9)
    assert sky.Ty.to_value("deg") == pytest.approx(fits_world[1], abs=1e-9)

    stokes, wavelength, sky, _ = inversion.profiles["FeI630_fit"].wcs.pixel_to_world(3, 10, slit, frame)
    fits_world = WCS(fits.getheader(path, 15)).pixel_to_world_values(3, 10, slit, 0)
    assert stokes.symbol == "V" and fits_world[0] == 4
    assert wavelength.to_value("m") == pytest.approx(fits_world[1], rel=1e-12)
    assert sky.Tx.to_value("deg") == pytest.approx(fits_world[3], abs=1e-9)
    assert sky.Ty.to_value("deg") == pytest.approx(fits_world[2], abs=1e-9)


def test_time_axis_is_the_paired_frames_time(inversion, generated):
    for frame in (0, FRAMES - 1):
        *_, time = inversion["velocity"].wcs.pixel_to_world(0, 0, frame)
        header = fits.getheader(generated.out_dir / generated.files[frame].name)
        assert abs((time - type(time)(header["DATE-AVG"])).to_value("s")) < 1e-3


def test_every_checksum_verifies(generated):
    for file in generated.files:
        with fits.open(generated.out_dir / file.name, checksum=True) as hdul:
            assert len(hdul) == 1 + 11 + 6
            for hdu in hdul:
                assert hdu.verify_checksum() == 1 and hdu.verify_datasum() == 1, (file.name, hdu.name)


def test_primary_header(generated, inputs):
    file = generated.files[1]
    header = fits.getheader(generated.out_dir / file.name)
    l1_path = sorted((inputs.l1 / CANONICAL).glob("*_I_*.fits"))[1]
    l1 = fits.getheader(l1_path, 1)
    for key in COPIED_KEYS:
        if key in OPTIONAL_KEYS and key not in l1:
            continue
        assert header[key] == l1[key] and type(header[key]) is type(l1[key]), key
    assert header["PROPID01"] == l1["PROPID01"] and header["EXPRID01"] == l1["EXPRID01"]
    assert header["SOLARNET"] == 1.0 and isinstance(header["SOLARNET"], float)
    assert header["TIMESYS"] == "UTC" and header["LEVEL"] == 2 and header["PROCTYPE"] == "L2"
    assert header["DSETID"] == "inv.PUYATW"
    assert header["FILENAME"] == file.name
    assert header["FRAMEVOL"] == pytest.approx(file.bytes / 1e6)
    assert len(header["FILE_ID"]) == 36


def test_image_headers(generated, converted):
    with fits.open(generated.out_dir / generated.files[2].name) as hdul:
        for index, quantity in enumerate(QUANTITIES, start=1):
            header = hdul[index].header
            assert (header["EXTNAME"], header["BTYPE"], header["BUNIT"]) == (
                quantity.extname, quantity.btype, quantity.bunit,
            )  # fmt: skip
            assert hdul[index].data.shape == (1, SLIT_BINS, 15)
            assert header["DATAMIN"] == converted[quantity.key][2].min()
            assert header["DATAMAX"] == converted[quantity.key][2].max()
        names = [hdu.header["EXTNAME"] for hdu in hdul[12:]]
        assert names == [
            f"{ion} Profile {kind}" for ion in ("Na I", "Fe I", "Ca II") for kind in ("Original", "Fit")
        ]
        for hdu in hdul[12:]:
            assert hdu.header["WCSAXES"] == 4 and hdu.header["WCSAXESA"] == 4
            assert hdu.header["BTYPE"] == "spect.line.profile" and hdu.header["BUNIT"] == "ct"
            assert (hdu.header["DATAMIN"], hdu.header["DATAMAX"]) == (hdu.data.min(), hdu.data.max())
            assert hdu.header["CTYPE1"] == "STOKES" and hdu.header["CTYPE2"] == "AWAV"
        assert hdul[14].data.shape == (1, SLIT_BINS, 24, 4)


def test_inventory(inversion):
    inventory = inversion.meta["inventory"]
    assert inventory["inversionId"] == "inv.PUYATW"
    assert inventory["proposalId"] == "pid_2_114"
    assert inventory["canonicalDataset"] == CANONICAL
    assert inventory["datasetIds"] == [CANONICAL, OTHER]
    assert inventory["spectralLines"] == ["NaID", "FeI630", "CaII854"]
    assert inventory["wavelengths"] == [588.95095, 630.15012, 854.2091]
    assert inventory["frameCount"] == FRAMES


def test_header_tables_are_typed_and_files_sorted_by_time(inversion, generated):
    headers = inversion.meta["headers"]
    assert len(headers) == FRAMES
    assert headers["FRAMEVOL"].dtype.kind == "f" and headers["LEVEL"].dtype.kind == "i"
    assert headers["AO_LOCK"].dtype.kind == "b" and headers["ATMOS_R0"].dtype.kind == "f"
    assert list(headers["DATE-BEG"]) == sorted(headers["DATE-BEG"])
    temperature = inversion["temperature"]
    assert list(temperature.files.filenames) == [file.name for file in generated.files]
    assert list(temperature.meta["headers"]["EXTNAME"]) == ["Temperature"] * FRAMES
    assert temperature.meta["headers"]["DATAMAX"].dtype.kind == "f"


def test_header_tables_hold_the_files_headers(generated):
    assert_header_tables_hold_the_files_headers(generated)


def test_binning_maps_an_l2_pixel_to_the_centre_of_its_l1_pixels(generated, inputs):
    l1_header = fits.getheader(sorted((inputs.l1 / CANONICAL).glob("*_I_*.fits"))[2], 1)
    assert l1_header["PC1_3"] != 0 and l1_header["PC3_1"] != 0  # a rotated slit
    l2_header = fits.getheader(generated.out_dir / generated.files[2].name, 1)
    for alt in (" ", "A"):
        l1 = WCS(l1_header, key=alt)
        l2 = WCS(l2_header, key=alt)
        for pixel in (0, 5, SLIT_BINS - 1):
            covered = np.arange(BINNING * pixel, BINNING * (pixel + 1))
            lat, _, lon = l1.pixel_to_world_values(covered, np.zeros(BINNING), np.zeros(BINNING))
            _, l2_lat, l2_lon = l2.pixel_to_world_values(0, pixel, 0)
            assert l2_lat == pytest.approx(lat.mean(), abs=1e-9)
            assert l2_lon == pytest.approx(lon.mean(), abs=1e-9)
            l1_centre = SkyCoord(lon.mean(), lat.mean(), unit="deg")
            assert l1_centre.separation(SkyCoord(l2_lon, l2_lat, unit="deg")).arcsec < 1e-6


def test_progress_is_reported_per_frame(inputs, tmp_path):
    calls = []
    generate(
        inputs.results,
        inputs.l1,
        tmp_path / "out",
        on_progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(done, FRAMES) for done in range(FRAMES + 1)]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([2.0, np.nan, -1.5], [("DATAMIN", -1.5), ("DATAMAX", 2.0)]),
        ([np.inf, 3.0, -np.inf, 1.0], [("DATAMIN", 1.0), ("DATAMAX", 3.0)]),
        ([np.nan, np.inf], []),
    ],
)
def test_data_range_is_that_of_the_finite_values(values, expected):
    assert frames._data_range(np.array(values, dtype=np.float32)) == expected
