"""docker-compose.yml: the long-running services have health checks, the web's is /readyz."""

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_web_worker_and_redis_have_health_checks_and_web_uses_readyz():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name in ("db", "redis", "web", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert "http://127.0.0.1:8000/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["migrate"]["depends_on"]["redis"] == {"condition": "service_healthy"}
