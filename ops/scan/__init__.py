"""The scan: bring proposals, experiments, OPs, IPs and datasets up to date with the store.

Incremental. The cheap list (id, proposal, updateDate) of every dataset is compared with
what is stored; only new or changed datasets are fetched in full, a few proposals at a
time, and written in one transaction per batch with bulk upserts. A killed scan therefore
leaves whole batches behind, and the next scan's compare finds exactly what is left.
Datasets no longer listed are marked vanished, never deleted. Only one scan runs at a time.

Its parts, in the order a scan uses them:

- ``service``: ``run_scan`` and ``request_scan``, the Scan row's start and finish;
- ``lock``: the scan lock (a PostgreSQL advisory lock on a session of its own);
- ``scanner``: the steps of one scan, batch after batch;
- ``listing``: the store's cheap list against the stored compare keys, the plan, batches;
- ``fetching``: the full records of a batch, parsed, one batch ahead in a thread;
- ``upserting``: the batch's rows written set-wise, vanished datasets, the OPs' totals;
- ``grouping``: what a batch changed, per OP;
- ``events``: the scanner's events (``discovered``, datasets changed) through ops.history;
- ``qualifying``: the verdicts of the OPs new in a batch, from its records, in its transaction;
- ``statistics``: planner statistics refreshed as the tables fill.

The rest of the qualification is a step of its own: the caller (the task, the command)
hands the returned row to ``ops.qualification.qualify_after_scan`` once the scan lock is
released, which qualifies the OPs new or changed that the batches did not.
"""

from ops.scan.lock import ScanAlreadyRunning
from ops.scan.service import request_scan, run_scan

__all__ = ["ScanAlreadyRunning", "request_scan", "run_scan"]
