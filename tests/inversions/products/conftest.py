import shutil
from dataclasses import dataclass
from pathlib import Path

import dkist
import pytest
from astropy.io import fits

from inversions.products import GenerationResult, generate
from inversions.products.synthetic import write_l1_dataset, write_results

FRAMES = 5
SLIT_BINS = 12
BINNING = 5
CANONICAL, OTHER = "BXPJD", "BVNED"
INVERSION_ID = "inv.PUYATW"


@dataclass(frozen=True)
class Inputs:
    results: Path
    l1: Path

    def copy_to(self, folder: Path) -> "Inputs":
        shutil.copytree(self.results, folder / "results")
        shutil.copytree(self.l1, folder / "l1")
        return Inputs(folder / "results", folder / "l1")


@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> Inputs:
    """Two ViSP arms; the canonical one (VSPARMID 2 = DESR-FID) has one frame more than the inversion."""
    root = tmp_path_factory.mktemp("inputs")
    write_l1_dataset(
        root / "l1" / CANONICAL, CANONICAL, frames=FRAMES + 1, arm_id=2, slit_pixels=SLIT_BINS * BINNING
    )
    write_l1_dataset(root / "l1" / OTHER, OTHER, frames=FRAMES + 1, arm_id=1, slit_pixels=SLIT_BINS * BINNING)
    write_results(root / "results", frames=FRAMES, slit_bins=SLIT_BINS, binning=BINNING, fiducial_arm=2)
    return Inputs(root / "results", root / "l1")


@pytest.fixture
def own_inputs(inputs, tmp_path) -> Inputs:
    """A copy this test may change."""
    return inputs.copy_to(tmp_path)


@pytest.fixture(scope="session")
def generated(inputs, tmp_path_factory) -> GenerationResult:
    """The products of the session's inputs, written once in this process (tests only read them)."""
    out = tmp_path_factory.mktemp("products") / "inv_PUYATW"
    return generate(inputs.results, inputs.l1, out, inversion_id=INVERSION_ID, proposal_id="pid_2_114")


# In every file, in no headers table (as in the data center's own products).
STRUCTURE_CARDS = frozenset(
    {"SIMPLE", "XTENSION", "BITPIX", "EXTEND", "PCOUNT", "GCOUNT", "CHECKSUM", "DATASUM"}
    | {f"NAXIS{axis}" for axis in ("", 1, 2, 3, 4)}
)


def assert_header_tables_hold_the_files_headers(result: GenerationResult) -> None:
    """The ASDF's header tables are built from the headers as the frames were written, without
    reading the files back; every cell must equal what the file holds, structure cards aside."""
    inversion = dkist.load_dataset(result.asdf_path)
    datasets = [
        *(inversion[key] for key in inversion),
        *(inversion.profiles[key] for key in inversion.profiles),
    ]
    tables = [(inversion.meta["headers"], None)] + [(dataset.meta["headers"], True) for dataset in datasets]
    for row, file in enumerate(result.files):
        with fits.open(result.out_dir / file.name) as hdul:
            for table, is_extension in tables:
                header = hdul[table["EXTNAME"][row]].header if is_extension else hdul[0].header
                keys = {key for key in header if key not in ("", "COMMENT", "HISTORY", *STRUCTURE_CARDS)}
                assert set(table.colnames) == keys, file.name
                for key in keys:
                    assert table[key][row] == header[key], (file.name, key)
