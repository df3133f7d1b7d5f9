import pytest
from celery.signals import before_task_publish
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connection
from pytest_httpserver import HTTPServer

from inversions.transfers import _backend_for
from level2.celery import app
from tests.factories import UserFactory
from tests.ops.metadata.store import FakeStore

# The live server (pytest-django's live_server) listens with socketserver's backlog of 5: a burst
# of 50 clients (tests/inversions/test_api.py) on a busy machine then meets resets from the
# kernel, not answers from Level 2. Listen as gunicorn does (level2/gunicorn.py).
ThreadedWSGIServer.request_queue_size = 2048


@pytest.fixture
def committed_db(transactional_db):
    """Data committed for real, so that other threads and connections see them.

    The event table refuses TRUNCATE while it holds rows, so its rows (and what refers to
    them) are removed first as a replica session, a superuser's way to skip triggers; then
    Django's flush resets the rest.
    """
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("TRUNCATE ops_programevent CASCADE")
        cursor.execute("SET session_replication_role = DEFAULT")
    # Beside a browser test's event loop this may be a connection of its own: close it, or
    # it would keep the test database from being dropped.
    connection.close()


@pytest.fixture
def user(db):
    return UserFactory(username="viewer", groups=["viewers"])


@pytest.fixture
def staff_user(db):
    return UserFactory(username="staff", is_staff=True, is_superuser=True)


# Log test clients in with force_login: django-axes (level2/settings.py) refuses client.login(),
# which authenticates without a request; a browser test logs in through the form.
@pytest.fixture
def viewer_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Real hashers are slow on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def cache_of_this_test(settings):
    # A cache of each test's own: Redis outlives the test database, whose ids start again.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture(scope="session")
def metadata_httpserver():
    # Threaded, so that a request kept waiting (a timeout test) does not hold up the retry.
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def metadata_store(metadata_httpserver, settings):
    """A metadata store over real HTTP (tests.ops.metadata.store) that the client points at,
    with retries quick enough for tests."""
    httpserver = metadata_httpserver
    httpserver.clear()
    store = FakeStore()
    httpserver.expect_request("/graphql", method="POST").respond_with_handler(store.handle)
    settings.LEVEL2_METADATA_URL = httpserver.url_for("/graphql")
    settings.LEVEL2_METADATA_TOKEN = ""
    settings.LEVEL2_METADATA_TIMEOUT_S = 5.0
    settings.LEVEL2_METADATA_RETRIES = 2
    settings.LEVEL2_METADATA_BACKOFF_S = 0.001
    return store


@pytest.fixture
def local_collections(tmp_path, settings):
    """The local transfer backend on folders under tmp_path (collections level1, scratch, publish, team)."""
    settings.LEVEL2_LOCAL_TRANSFER_ROOT = str(tmp_path / "collections")
    settings.LEVEL2_SCRATCH_DIR = str(tmp_path / "collections" / "scratch")
    _backend_for.cache_clear()
    yield tmp_path / "collections"
    _backend_for.cache_clear()


@pytest.fixture
def eager_tasks():
    """Celery tasks run in the caller, as soon as they are sent."""
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


@pytest.fixture
def sent_tasks():
    """The Celery tasks sent to the broker meanwhile, as (name, args, whether it runs later)."""
    sent = []

    def record(sender, headers, body, **kwargs):
        sent.append((sender, list(body[0]), headers.get("eta") is not None))

    before_task_publish.connect(record, weak=False)
    yield sent
    before_task_publish.disconnect(record)
