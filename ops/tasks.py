"""Celery tasks: thin wrappers around ops services."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)
