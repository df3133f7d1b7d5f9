import pytest
from django.db import connection

from tests.factories import UserFactory


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


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Real hashers are slow on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
