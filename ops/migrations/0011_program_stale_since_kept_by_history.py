"""Since when an OP is *stale* (the Level 1 data its latest inversion used changed), kept by
the history trigger like its state (migrations 0005, 0007).

An information event whose details carry ``"stale": {...}`` sets it (the first such event
of a run keeps its time); entering ``queued`` clears it, since a new attempt uses the new data.
Within one INSERT statement the newest of these events decides. Direct writes are ignored.
"""

from django.db import migrations, models

POINTING = """
CREATE OR REPLACE FUNCTION ops_point_programs_at_newest_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ops_observingprogram AS program
    SET current_event_id = newest.id, state = newest.to_state,
        -- An information event (same state) keeps the time the OP entered its state.
        state_since = CASE WHEN program.state IS DISTINCT FROM newest.to_state OR program.state_since IS NULL
                           THEN newest.created_at ELSE program.state_since END,
        stale_since = CASE WHEN marking.program_id IS NULL THEN program.stale_since
                           WHEN marking.enters_queued THEN NULL
                           ELSE coalesce(program.stale_since, marking.created_at) END
    FROM (
        SELECT DISTINCT ON (program_id) program_id, id, to_state, created_at
        FROM inserted_events ORDER BY program_id, id DESC
    ) AS newest
    LEFT JOIN (
        -- The newest event of the statement that marks the OP stale or enters queued.
        SELECT DISTINCT ON (program_id) program_id, created_at,
               (to_state = 'queued' AND from_state IS DISTINCT FROM 'queued') AS enters_queued
        FROM inserted_events
        WHERE (to_state = 'queued' AND from_state IS DISTINCT FROM 'queued')
           OR (from_state = to_state AND jsonb_typeof(details -> 'stale') = 'object')
        ORDER BY program_id, id DESC
    ) AS marking ON marking.program_id = newest.program_id
    WHERE program.id = newest.program_id;
    RETURN NULL;
END;
$$;
"""

OLD_POINTING = """
CREATE OR REPLACE FUNCTION ops_point_programs_at_newest_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ops_observingprogram AS program
    SET current_event_id = newest.id, state = newest.to_state,
        -- An information event (same state) keeps the time the OP entered its state.
        state_since = CASE WHEN program.state IS DISTINCT FROM newest.to_state OR program.state_since IS NULL
                           THEN newest.created_at ELSE program.state_since END
    FROM (
        SELECT DISTINCT ON (program_id) program_id, id, to_state, created_at
        FROM inserted_events ORDER BY program_id, id DESC
    ) AS newest
    WHERE program.id = newest.program_id;
    RETURN NULL;
END;
$$;
"""

GUARD = """
DROP TRIGGER ops_observingprogram_state_from_history ON ops_observingprogram;
CREATE OR REPLACE FUNCTION ops_program_state_from_history_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Depth 1: a direct write. Depth 2 and more: the pointing trigger.
    IF pg_trigger_depth() < 2 THEN
        IF TG_OP = 'INSERT' THEN
            NEW.current_event_id := NULL;
            NEW.state := '';
            NEW.state_since := NULL;
            NEW.stale_since := NULL;
        ELSE
            NEW.current_event_id := OLD.current_event_id;
            NEW.state := OLD.state;
            NEW.state_since := OLD.state_since;
            NEW.stale_since := OLD.stale_since;
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ops_observingprogram_state_from_history
    BEFORE INSERT OR UPDATE OF current_event_id, state, state_since, stale_since ON ops_observingprogram
    FOR EACH ROW EXECUTE FUNCTION ops_program_state_from_history_only();
"""

OLD_GUARD = """
DROP TRIGGER ops_observingprogram_state_from_history ON ops_observingprogram;
CREATE OR REPLACE FUNCTION ops_program_state_from_history_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Depth 1: a direct write. Depth 2 and more: the pointing trigger.
    IF pg_trigger_depth() < 2 THEN
        IF TG_OP = 'INSERT' THEN
            NEW.current_event_id := NULL;
            NEW.state := '';
            NEW.state_since := NULL;
        ELSE
            NEW.current_event_id := OLD.current_event_id;
            NEW.state := OLD.state;
            NEW.state_since := OLD.state_since;
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ops_observingprogram_state_from_history
    BEFORE INSERT OR UPDATE OF current_event_id, state, state_since ON ops_observingprogram
    FOR EACH ROW EXECUTE FUNCTION ops_program_state_from_history_only();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0010_viewers_group"),
    ]

    operations = [
        migrations.AddField(
            model_name="observingprogram",
            name="stale_since",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="observingprogram",
            index=models.Index(
                condition=models.Q(stale_since__isnull=False),
                fields=["stale_since", "id"],
                name="op_stale_idx",
            ),
        ),
        # No event carries "stale" yet: nothing to fill in.
        migrations.RunSQL(POINTING, OLD_POINTING),
        migrations.RunSQL(GUARD, OLD_GUARD),
    ]
