import json
import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings


@pytest.fixture
def run_bench():
    """Run ``python -m bench.<name>`` small, in a database of its own (never one that a full
    benchmark may be using); its output and the JSON object of its last line."""

    def run(name: str, **env: str) -> tuple[str, dict]:
        environment = {
            **os.environ,
            **env,
            "BENCH_DATABASE": f"bench_test_{uuid.uuid4().hex[:8]}",
            "DATABASE_URL": settings.DATABASE_URL,
            "REDIS_URL": settings.REDIS_URL,
        }
        result = subprocess.run(
            [sys.executable, "-m", f"bench.{name}"],
            env=environment,
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout, json.loads(result.stdout.strip().splitlines()[-1])

    return run
