"""The database itself keeps the OP history append-only: UPDATE, DELETE and TRUNCATE fail.

TRUNCATE of an empty table is let through: it removes no history, and it is how Django's
test runner resets the database between transactional tests.
"""

from django.db import migrations

FORBID = """
CREATE FUNCTION ops_programevent_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND NOT EXISTS (SELECT 1 FROM ops_programevent) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'ops_programevent is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER ops_programevent_no_update_delete
    BEFORE UPDATE OR DELETE ON ops_programevent
    FOR EACH ROW EXECUTE FUNCTION ops_programevent_append_only();
CREATE TRIGGER ops_programevent_no_truncate
    BEFORE TRUNCATE ON ops_programevent
    FOR EACH STATEMENT EXECUTE FUNCTION ops_programevent_append_only();
"""

ALLOW = """
DROP TRIGGER ops_programevent_no_truncate ON ops_programevent;
DROP TRIGGER ops_programevent_no_update_delete ON ops_programevent;
DROP FUNCTION ops_programevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("ops", "0001_initial")]

    operations = [migrations.RunSQL(FORBID, ALLOW)]
