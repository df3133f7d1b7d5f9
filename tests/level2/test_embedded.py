"""The embedded services start under var/, are reused while they run, and stop on request."""

import importlib

import psycopg
import pytest
import redis

from level2 import embedded


@pytest.fixture
def own_var_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LEVEL2_VAR_DIR", str(tmp_path))
    module = importlib.reload(embedded)
    yield module
    module.stop()
    monkeypatch.delenv("LEVEL2_VAR_DIR")
    importlib.reload(embedded)


def test_embedded_redis_starts_once_and_is_reused(own_var_dir, tmp_path):
    url = own_var_dir.redis_url()
    client = redis.Redis.from_url(url)
    client.set("level2-test", "kept")
    assert own_var_dir.redis_url() == url
    assert client.get("level2-test") == b"kept"
    assert (tmp_path / "redis" / "redis.pid").exists()

    own_var_dir.stop()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()


def test_embedded_postgresql_starts_once_and_stops(own_var_dir, tmp_path):
    url = own_var_dir.postgres_url()
    with psycopg.connect(url.replace("postgres://", "postgresql://")) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
    assert own_var_dir.postgres_url() == url

    own_var_dir.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url.replace("postgres://", "postgresql://"), connect_timeout=2)
