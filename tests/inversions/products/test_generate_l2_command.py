"""``manage.py generate_l2``: progress on stdout; bad input is one message and a non-zero exit."""

import pytest

from inversions.management.commands.generate_l2 import Command
from inversions.products.results import ORIGINAL_FILE

from .conftest import FRAMES


def run_command(capsys, *arguments: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        Command().run_from_argv(["manage.py", "generate_l2", *arguments])
        raise SystemExit(0)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_writes_the_products_and_reports_progress(inputs, tmp_path, capsys):
    code, out, _ = run_command(
        capsys, "--results", str(inputs.results), "--l1", str(inputs.l1), "--out", str(tmp_path / "out"),
        "--inversion-id", "inv.CMD001",
    )  # fmt: skip
    assert code == 0
    assert [line for line in out.splitlines() if line.startswith("frames")] == [
        f"frames {done}/{FRAMES}" for done in range(FRAMES + 1)
    ]
    assert "inv.CMD001: 5 frames (5 written)" in out
    assert (tmp_path / "out" / "INV_CMD001_L2_metadata.asdf").is_file()


def test_bad_input_is_one_message_and_a_non_zero_exit(own_inputs, tmp_path, capsys):
    (own_inputs.results / ORIGINAL_FILE).unlink()
    code, _, err = run_command(
        capsys,
        "--results",
        str(own_inputs.results),
        "--l1",
        str(own_inputs.l1),
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 1
    assert err.strip() == f"CommandError: Missing result file {own_inputs.results / ORIGINAL_FILE}."
    assert "Traceback" not in err
