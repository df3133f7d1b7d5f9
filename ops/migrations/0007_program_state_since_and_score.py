"""When each OP entered its state, kept by the history trigger like the state itself; and the
ranking score of invertible OPs (ops.scoring), computed here for OPs already qualified."""

from django.db import migrations, models

POINTING = """
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

OLD_POINTING = """
CREATE OR REPLACE FUNCTION ops_point_programs_at_newest_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ops_observingprogram AS program
    SET current_event_id = newest.id, state = newest.to_state
    FROM (
        SELECT DISTINCT ON (program_id) program_id, id, to_state
        FROM inserted_events ORDER BY program_id, id DESC
    ) AS newest
    WHERE program.id = newest.program_id;
    RETURN NULL;
END;
$$;
"""

# The first event of the run of events in the OP's current state. The guard does not watch
# state_since yet, so this direct write goes through.
BACKFILL = """
UPDATE ops_observingprogram AS program SET state_since = run.since
FROM (
    SELECT event.program_id, min(event.created_at) AS since
    FROM ops_programevent AS event JOIN ops_observingprogram AS op ON op.id = event.program_id
    WHERE event.to_state = op.state AND NOT EXISTS (
        SELECT 1 FROM ops_programevent AS later
        WHERE later.program_id = event.program_id AND later.id > event.id AND later.to_state <> op.state
    )
    GROUP BY event.program_id
) AS run
WHERE program.id = run.program_id;
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

OLD_GUARD = """
DROP TRIGGER ops_observingprogram_state_from_history ON ops_observingprogram;
CREATE OR REPLACE FUNCTION ops_program_state_from_history_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 THEN
        IF TG_OP = 'INSERT' THEN
            NEW.current_event_id := NULL;
            NEW.state := '';
        ELSE
            NEW.current_event_id := OLD.current_event_id;
            NEW.state := OLD.state;
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ops_observingprogram_state_from_history
    BEFORE INSERT OR UPDATE OF current_event_id, state ON ops_observingprogram
    FOR EACH ROW EXECUTE FUNCTION ops_program_state_from_history_only();
"""


def score_qualified_programs(apps, schema_editor):
    """Scores from each OP's newest report and its datasets, as the qualification now sets them."""
    from dataclasses import fields

    from ops.qualify import DatasetValues
    from ops.scoring import program_score

    ObservingProgram = apps.get_model("ops", "ObservingProgram")
    ProgramEvent = apps.get_model("ops", "ProgramEvent")
    Dataset = apps.get_model("ops", "Dataset")
    columns = {
        field.name: {"dataset_id": "id", "instrument": "instrument_program__instrument"}.get(
            field.name, field.name
        )
        for field in fields(DatasetValues)
    }
    reports = (
        ProgramEvent.objects.filter(details__report__invertible=True)
        .order_by("program_id", "-id")
        .distinct("program_id")
        .values_list("program_id", "details__report")
    )
    for program_id, report in reports.iterator():
        datasets = [
            DatasetValues(**dict(zip(columns, values, strict=True)))
            for values in Dataset.objects.filter(program_id=program_id, vanished_at__isnull=True).values_list(
                *columns.values()
            )
        ]
        if score := program_score(report=report, datasets=datasets):
            ObservingProgram.objects.filter(pk=program_id).update(score=score["score"], score_parts=score)


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0006_generating_and_generated_states"),
    ]

    operations = [
        migrations.AddField(
            model_name="observingprogram",
            name="score",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="observingprogram",
            name="score_parts",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="observingprogram",
            name="state_since",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="observingprogram",
            index=models.Index(
                models.F("state"),
                models.OrderBy(models.F("score"), descending=True, nulls_last=True),
                models.F("first_seen_at"),
                models.F("id"),
                name="op_state_score_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="observingprogram",
            index=models.Index(fields=["state", "state_since"], name="op_state_since_idx"),
        ),
        migrations.RunSQL(POINTING, OLD_POINTING),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.RunSQL(GUARD, OLD_GUARD),
        migrations.RunPython(score_qualified_programs, migrations.RunPython.noop),
    ]
