import pytest


def test_bench_scan_prints_its_figures_as_a_json_last_line(run_bench):
    output, figures = run_bench("scan", BENCH_DATASETS="200")
    assert set(figures) == {
        "datasets", "floor_s", "full_scan_s", "full_ratio", "qualify_s", "qualify_ratio", "whole_s",
        "whole_ratio", "rescan_s", "rescan_qualify_s", "rescan_whole_s", "rescan_ratio", "peak_rss_mb",
        "floor_cpu_s", "qualify_cpu_s", "whole_cpu_s", "whole_cpu_ratio", "batch_rules_s",
        "batch_recording_s", "qualification_s",
    }  # fmt: skip
    assert figures["datasets"] == 200
    assert all(value > 0 for value in figures.values())
    # The times are printed to the millisecond: at 200 datasets that rounding moves a ratio by a few %.
    ratio = {"rel": 0.01, "abs": 0.03}
    assert figures["full_ratio"] == pytest.approx(figures["full_scan_s"] / figures["floor_s"], **ratio)
    assert figures["qualify_ratio"] == pytest.approx(figures["qualify_s"] / figures["floor_s"], **ratio)
    assert figures["whole_s"] == pytest.approx(figures["full_scan_s"] + figures["qualify_s"], abs=0.002)
    assert figures["whole_ratio"] == pytest.approx(figures["whole_s"] / figures["floor_s"], **ratio)
    assert figures["rescan_whole_s"] == pytest.approx(
        figures["rescan_s"] + figures["rescan_qualify_s"], abs=0.002
    )
    assert figures["rescan_ratio"] == pytest.approx(figures["rescan_whole_s"] / figures["whole_s"], **ratio)
    assert figures["qualify_cpu_s"] < figures["whole_cpu_s"]
    # The new OPs' verdicts are recorded in the scan's batches; the step after adds its own time.
    assert figures["batch_recording_s"] < figures["full_scan_s"]
    assert figures["qualification_s"] == pytest.approx(
        figures["batch_recording_s"] + figures["qualify_s"], abs=0.002
    )
    # The floor's CPU at this size is a few hundredths of a second: its rounding moves the ratio more.
    assert figures["whole_cpu_ratio"] == pytest.approx(
        figures["whole_cpu_s"] / figures["floor_cpu_s"], rel=0.05
    )
    assert "200 new, 0 changed" in output
    assert "0 new, 2 changed, 198 unchanged" in output
    for part in ("scan", "qualification", "whole"):
        assert f"  {part} " in output
    assert "x the floor's)" in output
