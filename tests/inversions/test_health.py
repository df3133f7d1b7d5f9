"""/healthz, /readyz and /metrics: what they check, what they reveal, who may read metrics."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from celery.worker.heartbeat import Heart
from django.core.cache import cache
from django.utils import timezone
from kombu.asynchronous.timer import Timer

from level2.celery import WORKER_HEARTBEAT_KEY
from ops.models import Scan
from ops.states import State
from tests.factories import ScanFactory, TransferFactory, program_in_state

CHECKS = {"database", "broker", "worker", "scan", "scratch"}


@pytest.fixture(autouse=True)
def no_heartbeat():
    # Local-memory caches of one location share their entries, from test to test.
    cache.delete(WORKER_HEARTBEAT_KEY)


@pytest.fixture
def worker_alive(db):
    cache.set(WORKER_HEARTBEAT_KEY, time.time())


@pytest.fixture
def scratch(tmp_path, settings):
    settings.LEVEL2_SCRATCH_DIR = str(tmp_path / "scratch")
    settings.LEVEL2_READY_MIN_FREE_GB = 0
    return tmp_path / "scratch"


def test_healthz_answers_without_a_login_a_database_or_an_allowed_host(client, settings):
    settings.ALLOWED_HOSTS = ["level2.example.org"]
    settings.SECURE_SSL_REDIRECT = True  # as with DEBUG off: a probe speaks plain HTTP
    response = client.get("/healthz", headers={"Host": "10.0.0.7:8000"})
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_with_every_check_passing(client, worker_alive, scratch, settings):
    settings.ALLOWED_HOSTS = ["level2.example.org"]
    settings.LEVEL2_READY_SCAN_MAX_AGE_S = 3600
    ScanFactory(status=Scan.Status.SUCCEEDED, finished_at=timezone.now() - dt.timedelta(minutes=5))
    response = client.get("/readyz", headers={"Host": "10.0.0.7:8000"})
    body = response.json()
    assert response.status_code == 200, body
    assert body["ready"] is True
    assert set(body["checks"]) == CHECKS
    assert all(check["ok"] for check in body["checks"].values())
    assert 290 <= body["checks"]["scan"]["last_good_scan_age_s"] <= 400
    assert body["checks"]["worker"]["last_heartbeat_age_s"] < 60


def test_readyz_is_503_without_a_live_worker(client, db, scratch):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["worker"] == {"ok": False, "last_heartbeat_age_s": None}
    cache.set(WORKER_HEARTBEAT_KEY, time.time() - 3600)
    assert client.get("/readyz").json()["checks"]["worker"]["ok"] is False


def test_readyz_is_503_when_the_last_good_scan_is_old(client, worker_alive, scratch, settings):
    settings.LEVEL2_READY_SCAN_MAX_AGE_S = 3600
    ScanFactory(status=Scan.Status.SUCCEEDED, finished_at=timezone.now() - dt.timedelta(hours=2))
    ScanFactory(status=Scan.Status.FAILED, finished_at=timezone.now())
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["scan"]["ok"] is False


def test_readyz_is_503_when_scratch_is_nearly_full(client, worker_alive, scratch, settings):
    settings.LEVEL2_READY_MIN_FREE_GB = 10**9  # an exabyte: more than any disk has free
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["scratch"]["ok"] is False


def test_readyz_is_503_without_the_broker_and_reveals_no_address(client, worker_alive, scratch, settings):
    settings.CELERY_BROKER_URL = "redis://:hunter2@127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False}
    assert "hunter2" not in response.text and "127.0.0.1" not in response.text


class _Dispatcher:
    """What celery's Heart uses of a worker's event dispatcher (events on, sending nothing)."""

    enabled = True

    def __init__(self):
        self.on_enabled, self.on_disabled = set(), set()

    def send(self, *args, **kwargs):
        pass


def test_a_worker_heartbeat_writes_the_time_readyz_reads(db):
    # Celery's own heartbeat service, as a worker runs it, without a second worker in this
    # process: starting one reconfigures the root logger for the tests after it.
    heart = Heart(timer=Timer(), eventer=_Dispatcher(), interval=60)
    heart.start()
    heart.stop()
    assert time.time() - cache.get(WORKER_HEARTBEAT_KEY) < 5


# --- /metrics ---------------------------------------------------------------------------------


def test_metrics_count_programs_scans_transfers_and_failures(client, db, settings):
    settings.LEVEL2_EXPECTED_DAYS = {"working": 0}
    program_in_state(State.INVERTIBLE)
    program_in_state(State.WORKING)
    program_in_state(State.ERROR)
    ScanFactory(status=Scan.Status.SUCCEEDED, finished_at=timezone.now())
    TransferFactory(status="failed")
    response = client.get("/metrics")  # the test client's address is 127.0.0.1: allowed by default
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.text
    assert 'level2_programs{state="invertible"} 1.0' in text
    assert 'level2_programs{state="working"} 1.0' in text
    assert 'level2_programs{state="published"} 0.0' in text
    assert "level2_programs_overdue 1.0" in text
    assert 'level2_scans{status="succeeded"} 1.0' in text
    assert "level2_last_good_scan_timestamp_seconds " in text
    assert 'level2_transfers{status="failed"} 1.0' in text
    assert 'level2_failures{step="preprocessing"} 1.0' in text


def test_metrics_are_refused_to_other_addresses_without_the_token(client, db, settings):
    settings.LEVEL2_METRICS_TOKEN = "scrape-secret"
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", **outside).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}, **outside).status_code == 403
    assert (
        client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}, **outside).status_code
        == 200
    )


def test_metrics_allow_a_configured_network(client, db, settings):
    import ipaddress

    settings.LEVEL2_METRICS_ALLOWED_IPS = [ipaddress.ip_network("10.1.0.0/16")]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
