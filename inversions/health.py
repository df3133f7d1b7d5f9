"""The service's own health: ``/healthz``, ``/readyz`` (JSON) and ``/metrics`` (Prometheus).

``/healthz`` says the process answers; ``/readyz`` checks what the service needs to do its
work: the database, the broker, a live worker, a recent good scan and free space on scratch
(503 when one fails). Both are answered by a middleware at the top of the stack: a container's
health check or an orchestrator's probe comes with whatever Host header it has, and needs no
session or login. They name no host, path, address or error text: only what passed.

``/metrics`` counts OPs per state, overdue OPs, scans, transfers and failures, for the clients
allowed by ``LEVEL2_METRICS_ALLOWED_IPS`` or with ``Authorization: Bearer
<LEVEL2_METRICS_TOKEN>``.
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from inversions.models import Transfer
from inversions.overdue import overdue_filter
from level2.celery import WORKER_HEARTBEAT_KEY
from ops.models import ObservingProgram, ProgramEvent, Scan
from ops.states import State

log = logging.getLogger(__name__)

Check = dict[str, Any]


def _database() -> Check:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def _broker() -> Check:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return {"ok": True}


def _worker() -> Check:
    """A worker writes its heartbeat every 2 s (level2.celery)."""
    beat = cache.get(WORKER_HEARTBEAT_KEY)
    if beat is None:
        return {"ok": False, "last_heartbeat_age_s": None}
    age = max(0.0, time.time() - beat)
    return {"ok": age <= settings.LEVEL2_READY_WORKER_MAX_AGE_S, "last_heartbeat_age_s": round(age, 1)}


def _last_good_scan_at():
    return Scan.objects.filter(status=Scan.Status.SUCCEEDED).aggregate(at=Max("finished_at"))["at"]


def _scan() -> Check:
    """Before the first good scan there is nothing to be late with."""
    last = _last_good_scan_at()
    if last is None:
        return {"ok": True, "last_good_scan_age_s": None}
    age = (timezone.now() - last).total_seconds()
    return {"ok": age <= settings.LEVEL2_READY_SCAN_MAX_AGE_S, "last_good_scan_age_s": round(age)}


def _scratch() -> Check:
    # Before the first transfer the folder may not exist yet: its nearest existing parent
    # lives on the same disk.
    path = Path(settings.LEVEL2_SCRATCH_DIR)
    while not path.exists() and path != path.parent:
        path = path.parent
    free_gb = shutil.disk_usage(path).free / 1e9
    return {"ok": free_gb >= settings.LEVEL2_READY_MIN_FREE_GB, "free_gb": round(free_gb, 1)}


READY_CHECKS: dict[str, Callable[[], Check]] = {
    "database": _database,
    "broker": _broker,
    "worker": _worker,
    "scan": _scan,
    "scratch": _scratch,
}


def readiness() -> dict[str, Any]:
    """Every check's result; one that raises failed (its error goes to the log, not the answer)."""
    checks = {}
    for name, check in READY_CHECKS.items():
        try:
            checks[name] = check()
        except Exception as error:
            log.warning("readyz: the %s check failed: %s: %s", name, type(error).__name__, error)
            checks[name] = {"ok": False}
    return {"ready": all(check["ok"] for check in checks.values()), "checks": checks}


class HealthProbeMiddleware:
    """Answers ``/healthz`` and ``/readyz`` before host validation, sessions and login."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == "/healthz":
            return JsonResponse({"status": "ok"})
        if request.path_info == "/readyz":
            report = readiness()
            return JsonResponse(report, status=200 if report["ready"] else 503)
        return self.get_response(request)


# --- /metrics ------------------------------------------------------------------------------


def _count_by(queryset, field: str) -> dict[str, int]:
    return dict(queryset.values_list(field).annotate(n=Count("pk")).values_list(field, "n"))


def _gauge(name: str, documentation: str, label: str, counts: dict[str, int], values=()) -> GaugeMetricFamily:
    """One sample per value (every one of ``values``, 0 when absent, and every counted one)."""
    gauge = GaugeMetricFamily(name, documentation, labels=[label])
    for value in sorted({*values, *counts}):
        gauge.add_metric([value], counts.get(value, 0))
    return gauge


class _Collector:
    """Read from the database at each scrape: every web process answers the same numbers."""

    def collect(self):
        yield _gauge(
            "level2_programs",
            "Observing programs per state.",
            "state",
            _count_by(ObservingProgram.objects.exclude(state=""), "state"),
            values=State.values,
        )
        yield GaugeMetricFamily(
            "level2_programs_overdue",
            "OPs in a state longer than expected.",
            value=ObservingProgram.objects.filter(overdue_filter(now=timezone.now())).count(),
        )
        yield _gauge(
            "level2_scans",
            "Scans of the metadata store per status.",
            "status",
            _count_by(Scan.objects.all(), "status"),
            values=Scan.Status.values,
        )
        last = _last_good_scan_at()
        if last is not None:
            yield GaugeMetricFamily(
                "level2_last_good_scan_timestamp_seconds",
                "When the last successful scan finished (Unix time).",
                value=last.timestamp(),
            )
        yield _gauge(
            "level2_transfers",
            "Transfers per status.",
            "status",
            _count_by(Transfer.objects.all(), "status"),
            values=Transfer.Status.values,
        )
        yield _gauge(
            "level2_failures",
            "Steps that failed (events into error), by the failed step.",
            "step",
            _count_by(ProgramEvent.objects.filter(to_state=State.ERROR), "from_state"),
        )


def _metrics_allowed(request: HttpRequest) -> bool:
    token = settings.LEVEL2_METRICS_TOKEN
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if token and scheme == "Bearer" and constant_time_compare(presented.strip(), token):
        return True
    try:
        client = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(client in network for network in settings.LEVEL2_METRICS_ALLOWED_IPS)


@login_not_required
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _metrics_allowed(request):
        return HttpResponse(
            "Metrics are for the addresses in LEVEL2_METRICS_ALLOWED_IPS or a bearer token.\n",
            status=403,
            content_type="text/plain",
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
