"""The database itself refuses to change or remove OP history, whatever the client."""

import pytest
from django.db import connection, transaction
from django.db.utils import IntegrityError

from ops.models import ProgramEvent
from ops.states import State
from tests.factories import program_in_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def event():
    return program_in_state(State.INVERTIBLE).current_event


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ops_programevent SET to_state = 'published' WHERE id = %s",
        "UPDATE ops_programevent SET details = '{}'::jsonb WHERE id = %s",
        "DELETE FROM ops_programevent WHERE id = %s",
    ],
)
def test_raw_sql_update_and_delete_fail(event, statement):
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, [event.pk])
    event.refresh_from_db()
    assert event.to_state == State.INVERTIBLE


def test_raw_sql_truncate_fails(event):
    with (
        pytest.raises(IntegrityError, match="append-only: TRUNCATE"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        # Run the foreign key checks of this test's inserts first; PostgreSQL refuses to
        # truncate a table with pending trigger events before asking our trigger.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE ops_programevent CASCADE")
    assert ProgramEvent.objects.filter(pk=event.pk).exists()


def test_truncating_an_empty_history_removes_nothing_and_is_allowed():
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE ops_programevent CASCADE")
    assert not ProgramEvent.objects.exists()


def test_orm_update_and_delete_fail(event):
    with pytest.raises(IntegrityError), transaction.atomic():
        ProgramEvent.objects.filter(pk=event.pk).update(to_state=State.PUBLISHED)
    with pytest.raises(IntegrityError), transaction.atomic():
        ProgramEvent.objects.filter(pk=event.pk).delete()
    assert ProgramEvent.objects.get(pk=event.pk).to_state == State.INVERTIBLE


def test_inserting_still_works(event):
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ops_programevent WHERE program_id = %s", [event.program_id])
        assert cursor.fetchone()[0] == 2
