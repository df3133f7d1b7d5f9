"""Production settings: `check --deploy` passes with DEBUG off, and a default SECRET_KEY is refused."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "DATABASE_URL": os.environ.get("DATABASE_URL", settings.DATABASE_URL),
        "REDIS_URL": os.environ.get("REDIS_URL", settings.REDIS_URL),
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "extra",
    [{}, {"LEVEL2_METRICS_ALLOWED_IPS": "10.0.0.0/8,::1", "LEVEL2_METRICS_TOKEN": "scrape-" + "z" * 40}],
    ids=["defaults", "metrics configured"],
)
def test_deploy_check_passes_with_debug_off_and_real_settings(extra):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="a-real-secret-" + "x" * 50,
        ALLOWED_HOSTS="level2.example.org",
        **extra,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_a_bad_metrics_allow_list_refuses_to_start():
    result = _manage("check", LEVEL2_METRICS_ALLOWED_IPS="10.0.0.0/8,level2.example.org")
    assert result.returncode != 0
    message = "LEVEL2_METRICS_ALLOWED_IPS: 'level2.example.org' is not an IP address or network."
    assert message in result.stderr


def test_debug_off_with_the_default_secret_key_refuses_to_start():
    result = _manage("check", DEBUG="false", SECRET_KEY="", ALLOWED_HOSTS="level2.example.org")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_secrets_can_come_from_files(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file-" + "y" * 50 + "\n")
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
        SECRET_KEY_FILE=str(secret_file),
    )
    assert result.stdout.strip().splitlines()[-1] == "from-a-file-" + "y" * 50


def test_the_cache_is_the_configured_redis_and_works():
    script = (
        "import django; django.setup(); from django.core.cache import cache; "
        "from django.conf import settings; "
        "cache.set('level2-settings-test', 42, 30); "
        "print(settings.CACHES['default']['BACKEND'], cache.get('level2-settings-test'))"
    )
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "level2.settings", "REDIS_URL": settings.REDIS_URL}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.core.cache.backends.redis.RedisCache", "42"]
