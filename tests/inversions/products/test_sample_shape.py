"""Our products and the data center's own Level 2 sample (inv.PUYATW, shipped inside the dkist
wheel), both loaded as a user loads them, with `dkist.load_dataset`, compared point by point
(L2-PRODUCTS.md §3). Two quirks of the sample are not ours: its quantities all carry the unit
`pix`, and its 3-D quantities a fifth, Stokes world axis."""

import gzip
import shutil
from importlib import resources

import astropy.units as u
import dkist
import gwcs
import pytest
from astropy.io import fits
from astropy.modeling import Model
from astropy.time import Time
from sunpy.coordinates import Helioprojective

from inversions.products.spec import COPIED_KEYS, LINES, NUMBERED_KEY_PREFIXES, OPTIONAL_KEYS, QUANTITIES

from .conftest import CANONICAL

SAMPLE = resources.files("dkist") / "data" / "test" / "test_L2_inversion.asdf.gz"
SAMPLE_STOKES_AXIS = "phys.polarization.stokes"  # the sample's quantities' fifth world axis
# Optional cards of the sample's image HDUs that L2-PRODUCTS.md §3 does not ask for.
SAMPLE_ONLY_IMAGE_CARDS = {"BSCALE", "BZERO", "WCSVALID"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    if not SAMPLE.is_file():
        pytest.skip("the installed dkist wheel has no data/test/test_L2_inversion.asdf.gz")
    path = tmp_path_factory.mktemp("sample") / "test_L2_inversion.asdf"
    with gzip.open(SAMPLE) as packed, open(path, "wb") as unpacked:
        shutil.copyfileobj(packed, unpacked)
    return dkist.load_dataset(path)


@pytest.fixture(scope="module")
def ours(generated):
    return dkist.load_dataset(generated.asdf_path)


def test_the_same_kind_of_object_with_the_same_quantity_keys(ours, sample):
    assert type(ours) is type(sample)
    assert set(ours.keys()) == set(sample.keys()) == {quantity.key for quantity in QUANTITIES}


def test_meta_has_the_same_keys_and_axes(ours, sample):
    assert set(ours.meta) == set(sample.meta) == {"axes", "gwcs", "l1gwcs", "inventory", "headers", "history"}
    assert ours.meta["axes"] == sample.meta["axes"] == ["frame_y", "slit_x", "optical_depth"]


def test_meta_gwcs_is_the_quantities_gwcs(ours, sample):
    for inversion in (ours, sample):
        assert isinstance(inversion.meta["gwcs"], gwcs.WCS)
        assert all(inversion[key].wcs is inversion.meta["gwcs"] for key in inversion)
    assert ours.meta["gwcs"].pixel_n_dim == sample.meta["gwcs"].pixel_n_dim == 3


def test_meta_l1gwcs_holds_the_level_1_transform_and_frame(ours, sample):
    for inversion in (ours, sample):
        l1gwcs = inversion.meta["l1gwcs"]
        assert set(l1gwcs) == {"transform", "helioFrame"}
        assert isinstance(l1gwcs["transform"], Model)
        assert isinstance(l1gwcs["helioFrame"], Helioprojective)
        assert {"hp_lon", "hp_lat", "time"} <= set(sample.meta["l1gwcs"]["transform"].outputs)
    # Ours maps L1 pixels (slit, raster) to lon, lat, time: the L2 gwcs bins in front of it.
    assert ours.meta["l1gwcs"]["transform"].n_inputs == 2
    assert ours.meta["l1gwcs"]["transform"].n_outputs == 3


def test_inventory_has_the_same_keys_and_kinds_of_values(ours, sample):
    mine, theirs = ours.meta["inventory"], sample.meta["inventory"]
    assert set(mine) == set(theirs)
    assert {key: type(value) for key, value in mine.items()} == {
        key: type(value) for key, value in theirs.items()
    }
    assert isinstance(mine["created"], Time)


def test_spectral_lines_are_named_as_in_the_sample(ours, sample):
    assert set(sample.meta["inventory"]["spectralLines"]) == {line.key for line in LINES.values()}
    assert ours.meta["inventory"]["spectralLines"] == ["NaID", "FeI630", "CaII854"]


def test_profiles_have_the_same_keys_and_meta(ours, sample):
    assert set(ours.profiles.keys()) == set(sample.profiles.keys())
    assert set(ours.profiles.meta) == set(sample.profiles.meta) == {"axes", "gwcs"}
    assert (
        ours.profiles.meta["axes"]
        == sample.profiles.meta["axes"]
        == ["frame_y", "slit_x", "wavelength", "stokes"]
    )
    for inversion in (ours, sample):
        per_line = inversion.profiles.meta["gwcs"]
        assert set(per_line) == set(inversion.meta["inventory"]["spectralLines"])
        for key in inversion.profiles:
            assert inversion.profiles[key].wcs is per_line[key.rsplit("_", 1)[0]]


def test_each_profile_has_the_same_meta_and_unit(ours, sample):
    for key in sample.profiles:
        mine, theirs = ours.profiles[key], sample.profiles[key]
        assert set(mine.meta) == set(theirs.meta) == {"ion", "wavelength", "profile", "headers", "inventory"}
        assert (mine.meta["ion"], mine.meta["profile"]) == (theirs.meta["ion"], theirs.meta["profile"])
        assert mine.unit == theirs.unit == u.ct
        assert mine.wcs.world_axis_physical_types == theirs.wcs.world_axis_physical_types
        assert mine.data.ndim == theirs.data.ndim == 4


def test_each_quantity_has_the_same_meta_and_axes_less_the_quirks(ours, sample):
    for key in sample:
        mine, theirs = ours[key], sample[key]
        assert set(mine.meta) == set(theirs.meta) == {"headers", "inventory"}
        assert theirs.unit == u.pix  # quirk: ours carries its physical unit (test_generate)
        sample_axes = [kind for kind in theirs.wcs.world_axis_physical_types if kind != SAMPLE_STOKES_AXIS]
        assert list(mine.wcs.world_axis_physical_types) == sample_axes  # quirk: no Stokes world axis
        assert mine.data.ndim == theirs.data.ndim == 3


def _optional(key: str) -> bool:
    return key in OPTIONAL_KEYS or (key.startswith(NUMBERED_KEY_PREFIXES) and key[len("PROPID") :].isdigit())


def test_primary_headers_table_has_the_same_columns(ours, sample, inputs):
    mine, theirs = set(ours.meta["headers"].colnames), set(sample.meta["headers"].colnames)
    # Optional and numbered keys: where the paired L1 header has them; the sample's L1 is not at hand.
    assert {key for key in mine if not _optional(key)} == {key for key in theirs if not _optional(key)}
    l1_header = fits.getheader(sorted((inputs.l1 / CANONICAL).glob("*_I_*.fits"))[0], 1)
    assert {key for key in mine if _optional(key)} == {key for key in l1_header if _optional(key)}
    assert "HEAD_URL" in mine and "HEAD_URL" in l1_header
    assert set(COPIED_KEYS) - OPTIONAL_KEYS <= mine


def test_image_headers_tables_have_the_same_columns(ours, sample):
    for key in [*sample.keys(), *sample.profiles.keys()]:
        theirs = set(
            (sample.profiles[key] if key in sample.profiles else sample[key]).meta["headers"].colnames
        )
        mine = set((ours.profiles[key] if key in ours.profiles else ours[key]).meta["headers"].colnames)
        assert mine == theirs - SAMPLE_ONLY_IMAGE_CARDS, key
