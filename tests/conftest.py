import pytest
from django.db import connection

from tests.factories import UserFactory

# Tables that tests with committed data (threads, separate connections) fill.
COMMITTED_TABLES = [
    "ops_programevent",
    "ops_observingprogram",
    "ops_instrumentprogram",
    "ops_dataset",
    "ops_proposal",
    "ops_experiment",
    "ops_scanerror",
    "ops_scan",
]


@pytest.fixture
def committed_db(transactional_db):
    """Data that other connections see. The event table refuses TRUNCATE, so the cleanup
    runs as a replica session (a superuser's way to skip triggers) before Django's flush."""
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(f"TRUNCATE {', '.join(COMMITTED_TABLES)} CASCADE")
        cursor.execute("SET session_replication_role = DEFAULT")


@pytest.fixture
def user(db):
    return UserFactory(username="viewer")


@pytest.fixture
def staff_user(db):
    return UserFactory(username="staff", is_staff=True, is_superuser=True)


@pytest.fixture
def viewer_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client
