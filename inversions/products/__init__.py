"""Level 2 product generation as a plain library (no Django): read the science team's results
and the L1 headers, write one FITS per raster step, the ASDF the `dkist` tools load, and
quicklooks. The contract is ../shared/L2-PRODUCTS.md."""

from inversions.products.errors import ProductInputError
from inversions.products.generate import GenerationResult, ProductFile, fit_results, generate
from inversions.products.naming import inversion_dir, new_inversion_id
from inversions.products.spec import HEADER_VERSION

__all__ = [
    "HEADER_VERSION",
    "GenerationResult",
    "ProductFile",
    "ProductInputError",
    "fit_results",
    "generate",
    "inversion_dir",
    "new_inversion_id",
]
