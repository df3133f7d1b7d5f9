import os
import time

from celery import Celery
from celery.signals import heartbeat_sent
from django.core.cache import cache

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "level2.settings")

app = Celery("level2")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The cache key (shared Redis) where every worker writes the time of its heartbeat; /readyz
# reads it to tell that a worker lives.
WORKER_HEARTBEAT_KEY = "worker-heartbeat"


@heartbeat_sent.connect
def record_heartbeat(sender, **kwargs) -> None:
    """Celery sends a worker's heartbeat every 2 s; a failure here is logged by its timer."""
    cache.set(WORKER_HEARTBEAT_KEY, time.time(), timeout=None)
