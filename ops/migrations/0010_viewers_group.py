"""The read-only role: reading any page or the API needs a role, viewers the least of them."""

from django.db import migrations

VIEWERS = "viewers"


def create_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name=VIEWERS)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=VIEWERS).delete()


class Migration(migrations.Migration):
    dependencies = [("ops", "0009_event_state_change_index")]

    operations = [migrations.RunPython(create_group, remove_group)]
