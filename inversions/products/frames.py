"""One Level 2 FITS file per raster step (L2-PRODUCTS.md §3): built from one step's inputs, written
under a temporary name, renamed when complete.

Every card is formatted by astropy's `fits.Card`, once (most cards recur in every HDU of every
frame), but the file is assembled here rather than by `HDUList.writeto`: astropy's Header
bookkeeping (a copy of the header per HDU, every card formatted again for sizing and for each
checksum) cost more than writing the data did. Assembling the headers here also gives their values
to the caller, so that the ASDF's headers tables need not read the files back."""

from __future__ import annotations

import functools
import os
import uuid
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from astropy.io import fits

from inversions.products.errors import ProductInputError
from inversions.products.level1 import read_l1_header
from inversions.products.results import Arm, Results, read_frame
from inversions.products.spec import (
    COPIED_KEYS,
    FIXED_PRIMARY_CARDS,
    HEADER_VERSION,
    NUMBERED_KEY_PREFIXES,
    OPTIONAL_KEYS,
    PROFILE_BUNIT,
    QUANTITIES,
)
from inversions.products.wcs import depth_axis, stokes_axis, wavelength_axis, wcs_cards

TEMPORARY_SUFFIX = ".partial"
BLOCK_SIZE = 2880  # FITS block
CARD_SIZE = 80
END_CARD = b"END".ljust(CARD_SIZE)
PROFILE_KINDS = ("Original", "Fit")
SKIPPED_HEADER_KEYS = frozenset({"", "COMMENT", "HISTORY"})
# The FITS structure cards (and NAXISn): in every file, but not in the ASDF's headers tables (as in the
# data center's own products).
STRUCTURE_KEYS = frozenset(
    {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "CHECKSUM", "DATASUM"}
)
# Characters the checksum encoding avoids (FITS checksum convention): punctuation between digits and letters.
CHECKSUM_EXCLUDED = frozenset(b":;<=>?@[\\]^_`")
FRAMEVOL_COMMENT = "Size of this file [MB]"

HeaderValues = Mapping[str, Any]  # keyword -> value of its first card, as `fits.Header.get` gives
# Formatted cards kept for reuse. Its keys compare by value, so a -0.0 may be written as 0.0.
CARD_CACHE_SIZE = 4096


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


@dataclass(frozen=True)
class WrittenFrame:
    index: int  # raster step
    bytes: int
    headers: list[HeaderValues]  # one per HDU, equal to what `read_header_values` reads from the file


class _Card(NamedTuple):
    keyword: str
    image: str  # as the file holds it: 80 characters, or more for a long string
    value: Any  # as astropy reads it back from `image`


@functools.lru_cache(maxsize=CARD_CACHE_SIZE, typed=True)
def _card(keyword: str, value: Any, comment: str = "") -> _Card:
    card = fits.Card(keyword, value, comment)
    return _Card(keyword, card.image, _value_as_written(card))


@dataclass(frozen=True)
class _Hdu:
    cards: list[_Card]  # the header, less the checksum cards and END
    data: np.ndarray | None  # big-endian and contiguous, as the file holds it

    @property
    def header_bytes(self) -> int:
        """With the CHECKSUM, DATASUM and END cards to come, padded to whole blocks."""
        return _padded(sum(len(card.image) for card in self.cards) + 3 * CARD_SIZE)

    @property
    def padded_data_bytes(self) -> int:
        return 0 if self.data is None else _padded(self.data.nbytes)


def hdu_count(results: Results) -> int:
    return 1 + len(QUANTITIES) + 2 * len(results.arms)


def profile_hdu_index(results: Results, arm: Arm, kind: str) -> int:
    return 1 + len(QUANTITIES) + 2 * results.arms.index(arm) + PROFILE_KINDS.index(kind)


def write_frame(plan: FramePlan, job: FrameJob) -> WrittenFrame:
    """Write the file of one raster step."""
    l1_header = read_l1_header(job.l1_path)
    hdus = [
        _primary_hdu(l1_header, plan, job),
        *_quantity_hdus(plan.results, job.index, l1_header),
        *_profile_hdus(plan.results, job.index, l1_header),
    ]
    size = sum(hdu.header_bytes + hdu.padded_data_bytes for hdu in hdus)
    # A float card is as long whatever its value, so the size above stays right.
    primary_cards = hdus[0].cards
    framevol = next(index for index, card in enumerate(primary_cards) if card.keyword == "FRAMEVOL")
    primary_cards[framevol] = _card("FRAMEVOL", size / 1e6, FRAMEVOL_COMMENT)
    timestamp = datetime.now().isoformat()[:19]  # astropy's, in its checksum comments
    headers = [_checksummed_header(hdu, timestamp) for hdu in hdus]
    final = plan.out_dir / job.file_name
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}{TEMPORARY_SUFFIX}")
    try:
        _write_file(temporary, [(header, hdu.data) for (header, _), hdu in zip(headers, hdus, strict=True)])
        if temporary.stat().st_size != size:
            raise RuntimeError(f"{final.name}: wrote {temporary.stat().st_size} bytes, expected {size}.")
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    return WrittenFrame(job.index, size, [values for _, values in headers])


def _write_file(path: Path, units: list[tuple[bytes, np.ndarray | None]]) -> None:
    """Each HDU's header bytes, then its data padded to a whole block."""
    with open(path, "wb") as file:
        for header, data in units:
            file.write(header)
            if data is not None:
                file.write(data.data)
                file.write(bytes(-data.nbytes % BLOCK_SIZE))


def _padded(size: int) -> int:
    return -(-size // BLOCK_SIZE) * BLOCK_SIZE


def _checksummed_header(hdu: _Hdu, timestamp: str) -> tuple[bytes, dict[str, Any]]:
    """The header's bytes with its DATASUM and CHECKSUM cards, and its keyword values."""
    datasum = 0 if hdu.data is None else _ones_complement_sum(hdu.data.view(np.uint8).ravel())
    checksum_comment = f"HDU checksum updated {timestamp}"
    cards = [
        *hdu.cards,
        _card("CHECKSUM", "0" * 16, checksum_comment),
        _card("DATASUM", str(datasum), f"data unit checksum updated {timestamp}"),
    ]
    # The checksum convention: sum the HDU with CHECKSUM all zeros, then encode the complement.
    text = _header_bytes(cards)
    checksum = _encode_checksum(~_ones_complement_sum(np.frombuffer(text, np.uint8), datasum) & 0xFFFFFFFF)
    cards[-2] = _card("CHECKSUM", checksum, checksum_comment)
    return _header_bytes(cards), _header_values(cards)


def _header_bytes(cards: list[_Card]) -> bytes:
    text = "".join(card.image for card in cards).encode("ascii") + END_CARD
    return text.ljust(_padded(len(text)), b" ")


def _ones_complement_sum(data: np.ndarray, start: int = 0) -> int:
    """The 32-bit ones' complement sum of `data` (bytes, a whole number of big-endian words)."""
    total = start + int(data.view(">u4").sum(dtype=np.uint64))
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def _encode_checksum(value: int) -> str:
    """`value` as the 16 characters of the FITS checksum convention (as astropy encodes it)."""
    characters = [0] * 16
    for byte_index in range(4):
        byte = (value >> (24 - 8 * byte_index)) & 0xFF
        quotient, remainder = divmod(byte, 4)
        group = [ord("0") + quotient + remainder, *[ord("0") + quotient] * 3]
        for pair in (0, 2):
            # Moving one unit within a pair keeps the sum and steps off the excluded characters.
            while group[pair] in CHECKSUM_EXCLUDED or group[pair + 1] in CHECKSUM_EXCLUDED:
                group[pair] += 1
                group[pair + 1] -= 1
        for position, character in enumerate(group):
            characters[4 * position + byte_index] = character
    return bytes(characters[-1:] + characters[:-1]).decode("ascii")


def _header_values(cards: Iterable[_Card | fits.Card]) -> dict[str, Any]:
    """Keyword -> value, less comments and the structure cards."""
    values: dict[str, Any] = {}
    for card in cards:
        keyword = card.keyword
        if keyword in SKIPPED_HEADER_KEYS or keyword in STRUCTURE_KEYS or keyword in values:
            continue
        if keyword.startswith("NAXIS") and keyword[len("NAXIS") :].isdigit():
            continue
        values[keyword] = card.value
    return values


def _value_as_written(card: fits.Card) -> Any:
    """The value of a card made here as astropy will read it back from the file."""
    value = card.value
    if isinstance(value, float):
        # astropy writes a float in at most 20 characters (columns 11-30), so the file may hold fewer digits.
        return float(card.image[10:30])
    if isinstance(value, str):
        return value.rstrip()
    return value


def read_header_values(path: Path) -> list[HeaderValues]:
    """The keyword values of every HDU header of a written file (as `_header_values`), read back from it."""
    with fits.open(path) as hdul:
        return [_header_values(hdu.header.cards) for hdu in hdul]


def is_complete(path: Path, expected_hdus: int) -> bool:
    """Whether `path` is a finished product of this format: every HDU present, its checksums
    verifying, and its header version this one (a file of an earlier format is written again)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with fits.open(path, memmap=False) as hdul:
                return (
                    len(hdul) == expected_hdus
                    and hdul[0].header.get("HEADVERS") == HEADER_VERSION
                    and all(hdu.verify_datasum() == 1 and hdu.verify_checksum() == 1 for hdu in hdul)
                )
    except (OSError, ValueError, Warning):
        return False


def _primary_hdu(l1_header: fits.Header, plan: FramePlan, job: FrameJob) -> _Hdu:
    cards = [
        _card("SIMPLE", True, "conforms to FITS standard"),
        _card("BITPIX", 8, "array data type"),
        _card("NAXIS", 0, "number of array dimensions"),
        _card("EXTEND", True),
    ]
    for key in COPIED_KEYS:
        if key in l1_header:
            cards.append(_card(key, l1_header[key], l1_header.comments[key]))
        elif key not in OPTIONAL_KEYS:
            raise ProductInputError(f"{job.l1_path.name} has no {key}.")
    for key in l1_header:
        if key.startswith(NUMBERED_KEY_PREFIXES) and key[len("PROPID") :].isdigit():
            cards.append(_card(key, l1_header[key], l1_header.comments[key]))
    cards += [_card(key, value, comment) for key, value, comment in FIXED_PRIMARY_CARDS]
    cards += [
        _card("DSETID", plan.inversion_id, "Unique ID of the inversion this file belongs to"),
        _card("FILE_ID", str(uuid.uuid4()), "Unique ID of this file"),
        _card("FILENAME", job.file_name, "Name of this file"),
        _card("FRAMEVOL", 0.0, FRAMEVOL_COMMENT),
    ]
    return _Hdu(cards, None)


def _image_hdu(data: np.ndarray, cards: list[tuple[Any, ...]]) -> _Hdu:
    data = np.ascontiguousarray(data, dtype=">f4")
    structure = [
        _card("XTENSION", "IMAGE", "Image extension"),
        _card("BITPIX", -32, "array data type"),
        _card("NAXIS", data.ndim, "number of array dimensions"),
        *[_card(f"NAXIS{axis}", size) for axis, size in enumerate(reversed(data.shape), start=1)],
        _card("PCOUNT", 0, "number of parameters"),
        _card("GCOUNT", 1, "number of groups"),
    ]
    return _Hdu([*structure, *(_card(*card) for card in cards)], data)


def _data_range(data: np.ndarray) -> list[tuple[str, object]]:
    """DATAMIN and DATAMAX of the finite values, if any."""
    # fmin/fmax pass over NaNs in one read, without the copy that selecting the finite values makes
    # (a quarter of a frame's time for the profiles); only an infinity needs that.
    low, high = float(np.fmin.reduce(data, axis=None)), float(np.fmax.reduce(data, axis=None))
    if not (np.isfinite(low) and np.isfinite(high)):
        finite = data[np.isfinite(data)]
        if not finite.size:
            return []
        low, high = float(finite.min()), float(finite.max())
    return [("DATAMIN", low), ("DATAMAX", high)]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _quantity_hdus(results: Results, frame: int, l1_header: fits.Header) -> list[_Hdu]:
    values = read_frame(results.quantities, frame)  # [quantity, depth, slit]
    wcs = wcs_cards(l1_header, [depth_axis()], results.binning)
    hdus = []
    for index, quantity in enumerate(QUANTITIES):
        data = quantity.convert(values[index]).T[np.newaxis]  # (1, slit, depth)
        cards = [("EXTNAME", quantity.extname), ("BTYPE", quantity.btype), ("BUNIT", quantity.bunit),
                 *_data_range(data), ("DATE", _now()), *wcs]  # fmt: skip
        hdus.append(_image_hdu(data, cards))
    return hdus


def _profile_hdus(results: Results, frame: int, l1_header: fits.Header) -> list[_Hdu]:
    profiles = {"Original": read_frame(results.original, frame), "Fit": read_frame(results.fit, frame)}
    hdus = []
    for arm in results.arms:
        wcs = wcs_cards(l1_header, [stokes_axis(), wavelength_axis(arm)], results.binning)
        for kind in PROFILE_KINDS:
            data = _slit_major(profiles[kind][:, arm.start : arm.stop, :])
            cards = [
                ("EXTNAME", f"{arm.line.ion} Profile {kind}"),
                ("BTYPE", "spect.line.profile"),
                ("BUNIT", PROFILE_BUNIT),
                *_data_range(data),
                ("SPECPFTP", kind, "Profile type"),
                ("SPECPFIN", arm.line.ion, "Ion of the profile's line"),
                ("DATE", _now()),
                *wcs,
            ]
            hdus.append(_image_hdu(data, cards))
    return hdus


def _slit_major(profiles: np.ndarray) -> np.ndarray:
    """[stokes, wavelength, slit] -> (1, slit, wavelength, stokes), big-endian and contiguous."""
    stokes, wavelengths, slit = profiles.shape
    result = np.empty((1, slit, wavelengths, stokes), dtype=">f4")
    for index in range(stokes):
        # A plane at a time: one copy transposing all three axes takes twice as long (cache misses).
        result[0, :, :, index] = profiles[index].T
    return result
