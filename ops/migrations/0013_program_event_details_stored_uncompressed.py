"""Events' details stored out of line without compression, as datasets' raw records are (0012).

A qualification report is a JSON document of about 4.4 kB, over PostgreSQL's 2 kB toast
threshold, so each verdict event compressed its details (pglz, to about 1.4 kB) as it was
written. Measured on a scan's 3,800 reports: the COPY and its commit took 0.38 s of the
server's CPU with pglz, 0.23 s without (lz4 would do as well, but not every server has
it). The price is space: about 3.5 kB more per report, out of line, which the lists and the
charts do not read. Details written before stay compressed (the history is append-only);
PostgreSQL reads both.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("ops", "0012_dataset_raw_stored_uncompressed")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE ops_programevent ALTER COLUMN details SET STORAGE EXTERNAL",
            "ALTER TABLE ops_programevent ALTER COLUMN details SET STORAGE EXTENDED",
        )
    ]
