"""gunicorn's settings, for `make run` (Procfile) and the containers (Dockerfile) alike.

Threads: a request mostly waits on PostgreSQL, so a few processes with several threads each
answer a burst of calls at once; the listen backlog holds the rest until a thread is free.
The address comes from the command line (``--bind``).
"""

import os

worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
backlog = 2048
# Products and quicklooks are written by the worker, never in a request: a minute is plenty.
timeout = 60
accesslog = "-"
# Its control socket sits at one path per user ($HOME/.gunicorn): a second server on the same
# machine (another checkout, the tests) would take it over. Nothing here uses it.
control_socket_disable = True
