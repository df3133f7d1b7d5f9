"""Inversion ids and the names of the files they produce (L2-PRODUCTS.md §3)."""

from __future__ import annotations

import re
import secrets
import string
from datetime import datetime

from inversions.products.errors import ProductInputError

ID_ALPHABET = string.ascii_uppercase + string.digits
INVERSION_ID = re.compile(r"^inv\.[A-Z0-9]{6}$")


def new_inversion_id() -> str:
    """A fresh id: ``inv.`` and 6 characters of A-Z0-9 (uniqueness is the caller's to check)."""
    return "inv." + "".join(secrets.choice(ID_ALPHABET) for _ in range(6))


def check_inversion_id(inversion_id: str) -> str:
    if not INVERSION_ID.match(inversion_id):
        raise ProductInputError(f"{inversion_id!r} is not an inversion id (inv. and 6 characters of A-Z0-9).")
    return inversion_id


def inversion_dir(inversion_id: str) -> str:
    """The folder of an inversion's products: ``inv.PUYATW`` -> ``inv_PUYATW``."""
    return inversion_id.replace(".", "_")


def _short_id(inversion_id: str) -> str:
    return inversion_id.removeprefix("inv.")


def frame_file_name(inversion_id: str, date_beg: str) -> str:
    """``INV_<ID>_<DATE-BEG with - : . -> _, milliseconds in 3 digits>_L2.fits``."""
    try:
        moment = datetime.fromisoformat(date_beg)
    except ValueError:
        raise ProductInputError(f"DATE-BEG {date_beg!r} is not an ISO date and time.") from None
    stamp = moment.strftime("%Y_%m_%dT%H_%M_%S") + f"_{moment.microsecond // 1000:03d}"
    return f"INV_{_short_id(inversion_id)}_{stamp}_L2.fits"


def asdf_file_name(inversion_id: str) -> str:
    return f"INV_{_short_id(inversion_id)}_L2_metadata.asdf"
