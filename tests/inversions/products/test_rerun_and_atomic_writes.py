"""A re-run keeps complete frames and rewrites broken ones; no final name is ever half-written."""

import os

import pytest
from astropy.io import fits

from inversions.products import frames, generate
from inversions.products.frames import is_complete

from .conftest import FRAMES, INVERSION_ID, assert_header_tables_hold_the_files_headers


def test_rerun_skips_valid_frames_and_rewrites_a_corrupted_one(inputs, tmp_path):
    out = tmp_path / "out"
    first = generate(inputs.results, inputs.l1, out, inversion_id=INVERSION_ID)
    corrupted, truncated = (out / first.files[index].name for index in (1, 3))
    content = bytearray(corrupted.read_bytes())
    content[-100] ^= 0xFF  # one flipped byte in the last HDU's data
    corrupted.write_bytes(bytes(content))
    truncated.write_bytes(truncated.read_bytes()[:50_000])
    file_ids = {file.name: fits.getval(out / file.name, "FILE_ID") for file in first.files}

    second = generate(inputs.results, inputs.l1, out, inversion_id=INVERSION_ID)

    assert second.frames_written == 2
    rewritten = {
        file.name for file in second.files if fits.getval(out / file.name, "FILE_ID") != file_ids[file.name]
    }
    assert rewritten == {corrupted.name, truncated.name}
    assert all(is_complete(out / file.name, 18) for file in second.files)
    # The kept frames' headers are read back, the rewritten ones' come from their writing.
    assert_header_tables_hold_the_files_headers(second)


def test_a_failed_write_leaves_no_file_under_a_final_name(inputs, tmp_path, monkeypatch):
    original = frames._write_file
    calls = []

    def fail_on_third_frame(name, *args, **kwargs):
        calls.append(name)
        if len(calls) == 3:
            with open(name, "wb") as file:  # half a file, then the disk fills up
                file.write(b"SIMPLE  =                    T" + b" " * 50_000)
            raise OSError("No space left on device")
        return original(name, *args, **kwargs)

    monkeypatch.setattr(frames, "_write_file", fail_on_third_frame)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        generate(inputs.results, inputs.l1, out, inversion_id=INVERSION_ID)
    assert sorted(os.listdir(out)) == sorted(
        os.path.basename(name)[1:].rsplit(".", 2)[0] for name in calls[:2]
    )
    assert all(name.endswith(".partial") and os.path.dirname(name) == str(out) for name in map(str, calls))

    monkeypatch.setattr(frames, "_write_file", original)
    result = generate(inputs.results, inputs.l1, out, inversion_id=INVERSION_ID)
    assert result.frames_written == FRAMES - 2


def test_rerun_rewrites_frames_of_an_earlier_format(inputs, tmp_path):
    out = tmp_path / "out"
    first = generate(inputs.results, inputs.l1, out, inversion_id=INVERSION_ID)
    earlier = out / first.files[2].name
    with fits.open(earlier) as hdul:
        hdul[0].header["HEADVERS"] = "1.0.0"  # before the profiles' BUNIT and HEAD_URL
        del hdul[0].header["HEAD_URL"]
        hdul.writeto(earlier, overwrite=True, checksum=True)
    assert not is_complete(earlier, 18)
    file_id = fits.getval(earlier, "FILE_ID")

    second = generate(inputs.results, inputs.l1, out, inversion_id=INVERSION_ID)

    assert second.frames_written == 1
    assert fits.getval(earlier, "FILE_ID") != file_id
    assert fits.getval(earlier, "HEADVERS") == "1.1.0" and "HEAD_URL" in fits.getheader(earlier)
    assert all(is_complete(out / file.name, 18) for file in second.files)
