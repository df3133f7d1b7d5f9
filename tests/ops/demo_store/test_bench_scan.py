import json
import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings


def test_bench_scan_prints_its_figures_as_a_json_last_line():
    env = {
        **os.environ,
        "BENCH_DATASETS": "200",
        # A database of its own: never the one a full benchmark may be using.
        "BENCH_DATABASE": f"bench_test_{uuid.uuid4().hex[:8]}",
        "DATABASE_URL": settings.DATABASE_URL,
    }

    result = subprocess.run(
        [sys.executable, "-m", "bench.scan"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) == {
        "datasets", "floor_s", "full_scan_s", "full_ratio", "rescan_s", "rescan_ratio", "peak_rss_mb",
        "qualify_s", "rescan_qualify_s",
    }  # fmt: skip
    assert figures["datasets"] == 200
    assert all(value > 0 for value in figures.values())
    assert figures["full_ratio"] == pytest.approx(figures["full_scan_s"] / figures["floor_s"], rel=0.01)
    assert figures["rescan_ratio"] == pytest.approx(figures["rescan_s"] / figures["full_scan_s"], rel=0.01)
    assert "200 new, 0 changed" in result.stdout
    assert "0 new, 2 changed, 198 unchanged" in result.stdout
