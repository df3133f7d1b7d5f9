"""Datasets' rows kept whole up to a page: raw stays in its row unless the row outgrows 8 kB.

A scanned dataset's row is about 2.4 kB, raw 1.8 kB of it: just over PostgreSQL's 2 kB toast
target, so every write moved raw out of line (0012: without compression), a second tuple in
the toast table and an entry in its index per dataset. With the table's toast target at its
largest (8160 bytes), a row that fits a page stays whole; a larger one still moves raw out of
line, uncompressed. Measured on the embedded server, a binary COPY of 100,000 scanned rows
into a copy of the table (its indexes, no foreign keys): 2.1–2.4 s of the server's time
instead of 2.9–3.6 s. The price: the table's main part is about half as large again (45
instead of 31 MB per 20,000 rows), the whole a little smaller. Rows written before stay as
they are until rewritten; PostgreSQL reads both.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("ops", "0014_scan_listed_since")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE ops_dataset SET (toast_tuple_target = 8160)",
            "ALTER TABLE ops_dataset RESET (toast_tuple_target)",
        )
    ]
