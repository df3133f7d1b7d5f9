"""Against Level 1 data made by the data center's own tools: frames from dkist-data-simulator
(spec 214, a slit rotating and drifting with time) and their ASDF from dkist-inventory."""

import astropy.units as u
import dkist
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from dkist_data_simulator.spec214.visp import TimeDependentVISPDataset
from dkist_inventory.asdf_generator import dataset_from_fits

from inversions.products import generate
from inversions.products.spec import COPIED_KEYS, OPTIONAL_KEYS
from inversions.products.synthetic import write_results

STEPS = 4
SLIT_PIXELS = 20
BINNING = 4


def same_angle(first_deg: float, second_deg: float) -> bool:
    return abs((first_deg - second_deg + 180) % 360 - 180) < 1e-9


@pytest.fixture(scope="module")
def simulated_l1(tmp_path_factory):
    folder = tmp_path_factory.mktemp("simulated") / "l1" / "SIMUL"
    simulation = TimeDependentVISPDataset(
        n_maps=1,
        n_steps=STEPS,
        n_stokes=4,
        time_delta=3,
        linewave=630.2 * u.nm,
        detector_shape=(3, SLIT_PIXELS),
    )
    for path in simulation.generate_files(folder, "{ds.index}.fits", rice_compress=True):
        header = fits.getheader(path, 1)
        stokes = "IQUV"[header["DINDEX4"] - 1]
        stamp = header["DATE-BEG"].replace("-", "_").replace(":", "_").replace(".", "_")[:23]
        path.rename(folder / f"VISP_{stamp}_00630200_{stokes}_SIMUL_L1.fits")
    dataset_from_fits(folder, "VISP_L1_20240417T202526_SIMUL_metadata.asdf", hdu=1, glob="VISP_*.fits")
    return folder


def test_products_of_spec_214_frames_and_a_dkist_inventory_asdf(simulated_l1, tmp_path):
    first = fits.getheader(sorted(simulated_l1.glob("*_I_*.fits"))[0], 1)
    write_results(tmp_path / "results", frames=STEPS, slit_bins=SLIT_PIXELS // BINNING, binning=BINNING,
                  fiducial_arm=first["VSPARMID"])  # fmt: skip
    result = generate(tmp_path / "results", simulated_l1.parent, tmp_path / "out", inversion_id="inv.SIMUL1")

    header = fits.getheader(result.out_dir / result.files[0].name)
    for key in COPIED_KEYS:
        if key in first or key not in OPTIONAL_KEYS:
            assert header[key] == first[key] and type(header[key]) is type(first[key]), key
    inversion = dkist.load_dataset(result.asdf_path)
    for frame in range(STEPS):
        wcs = WCS(fits.getheader(result.out_dir / result.files[frame].name, 5))
        for slit in (0, SLIT_PIXELS // BINNING - 1):
            _, sky, _ = inversion["velocity"].wcs.pixel_to_world(0, slit, frame)
            _, lat, lon = wcs.pixel_to_world_values(0, slit, 0)
            assert same_angle(sky.Tx.to_value("deg"), lon) and same_angle(sky.Ty.to_value("deg"), lat)
    l1 = dkist.load_dataset(simulated_l1 / "VISP_L1_20240417T202526_SIMUL_metadata.asdf")
    # The L2 slit pixel sits at the mean of the L1 pixels it bins, in the L1 dataset's own gwcs.
    _, sky, _ = inversion["velocity"].wcs.pixel_to_world(0, 2, 1)
    l1_sky = l1.wcs.pixel_to_world(np.arange(2 * BINNING, 3 * BINNING), 0, 1, 0)[0]
    assert sky.Tx.to_value("arcsec") == pytest.approx(l1_sky.Tx.to_value("arcsec").mean(), abs=1e-6)
    assert sky.Ty.to_value("arcsec") == pytest.approx(l1_sky.Ty.to_value("arcsec").mean(), abs=1e-6)
