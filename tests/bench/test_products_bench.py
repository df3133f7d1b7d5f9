import pytest


def test_bench_products_prints_its_figures_as_a_json_last_line(run_bench):
    output, figures = run_bench("products", BENCH_FRAMES="2", BENCH_PROCESSES="2")
    assert figures["frames"] == 2 and figures["processes"] == 2
    assert figures["mb_per_file"] == pytest.approx(31.4, abs=0.5)
    assert all(value > 0 for value in figures.values())
    assert figures["serial_ratio"] == pytest.approx(figures["serial_s"] / figures["floor_s"], rel=0.01)
    assert "generation, 2 processes" in output
