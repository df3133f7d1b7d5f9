"""`make run` serves with gunicorn on LEVEL2_WEB_PORT, says so, and answers a burst in full."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        process, _, command = line.partition(":")
        if process == name:
            return command.strip()
    raise AssertionError(f"no {name} process in the Procfile")


def test_make_run_prints_the_port_it_serves_on():
    result = subprocess.run(
        ["make", "--dry-run", "run"],
        cwd=ROOT,
        env={**os.environ, "LEVEL2_WEB_PORT": "8123"},
        capture_output=True,
        text=True,
    )
    assert "Level 2 on http://127.0.0.1:8123 " in result.stdout


@pytest.fixture
def web_server():
    """The Procfile's web process on a free port; its base URL."""
    port = _free_port()
    environment = {
        **os.environ,
        "LEVEL2_WEB_PORT": str(port),
        "DATABASE_URL": os.environ.get("DATABASE_URL", settings.DATABASE_URL),
        "REDIS_URL": os.environ.get("REDIS_URL", settings.REDIS_URL),
    }
    process = subprocess.Popen(
        _procfile_command("web"),
        shell=True,
        cwd=ROOT,
        env=environment,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                requests.get(f"{base}/accounts/login/", timeout=30)
                break
            except requests.RequestException:  # not listening yet, or its workers still booting
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(process.stderr.read().decode()) from None
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_the_web_process_is_gunicorn_with_static_files_from_whitenoise(web_server):
    page = requests.get(f"{web_server}/accounts/login/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Server"].startswith("gunicorn")
    css = requests.get(f"{web_server}/static/level2/level2.css", timeout=10)
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")


def test_a_burst_of_50_calls_is_answered_in_full(web_server):
    def call(_):
        return requests.get(f"{web_server}/accounts/login/", timeout=60).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(call, range(50)))
    assert statuses == [200] * 50
