import json
import os
import subprocess
import sys
import uuid

from django.conf import settings


def test_the_programs_page_bench_prints_times_and_constant_queries():
    env = {
        **os.environ,
        "BENCH_PROGRAMS": "120",
        "BENCH_DATABASE": f"bench_pages_test_{uuid.uuid4().hex[:8]}",
        "DATABASE_URL": settings.DATABASE_URL,
    }
    result = subprocess.run(
        [sys.executable, "-m", "bench.program_list"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["programs"] == 120
    assert figures["events"] == 1200
    assert 0 < figures["p50_ms"] <= figures["p95_ms"]
    assert len(figures["queries_per_page"]) == 1
