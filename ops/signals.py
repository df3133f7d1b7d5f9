"""What ops announces to the apps built on it, which ops never imports (pyproject.toml's layers)."""

from django.dispatch import Signal

# Sent by the scan inside each batch's transaction, after the batch's own events, with
# ``scan`` (its row) and ``program_ids`` (the OPs whose datasets the batch added, changed or
# marked vanished). What a receiver writes commits or rolls back with the batch, so a change
# is never seen without its consequences; a receiver reads only what concerns these OPs.
datasets_changed = Signal()
