"""An index on each IP's instrument, for the programs table: its instrument filter and the list
of instruments it offers (a loose index scan instead of reading every IP on every page)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0007_program_state_since_and_score"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="instrumentprogram",
            index=models.Index(fields=["instrument", "program"], name="ip_instrument_idx"),
        ),
    ]
