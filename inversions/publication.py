"""What decides whether and where an inversion is published: the rules the "Publish" action
and the worker's publication step both apply (below both, so neither imports the other)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from inversions.models import Inversion
from ops.history import TransitionError
from ops.models import Dataset


class PublishRefused(TransitionError):
    """The products may not be published yet (embargo) or cannot be (their datasets disagree)."""


def publication_bucket(*, inversion: Inversion) -> str:
    """The one bucket of the datasets used; PublishRefused when they disagree."""
    buckets = set(
        Dataset.objects.filter(pk__in=inversion.dataset_ids).values_list("bucket", flat=True).distinct()
    )
    # Older records name no bucket: DKIST's archive has one, "data".
    buckets = {bucket or "data" for bucket in buckets}
    if len(buckets) > 1:
        raise PublishRefused(
            f"The datasets used are in different buckets ({', '.join(sorted(buckets))}): "
            "Level 2 publishes one inversion to one bucket."
        )
    return buckets.pop() if buckets else "data"


def check_embargo(*, inversion: Inversion, now: datetime | None = None) -> None:
    """PublishRefused while any dataset used is under embargo, naming when it ends."""
    now = now or timezone.now()
    embargoed = (
        Dataset.objects.filter(pk__in=inversion.dataset_ids, is_embargoed=True)
        .exclude(embargo_end_date__lte=now)
        .order_by("-embargo_end_date")
    )
    latest = embargoed.first()
    if latest is not None:
        until = f"until {latest.embargo_end_date:%Y-%m-%d}" if latest.embargo_end_date else "with no end date"
        raise PublishRefused(
            f"Dataset {latest.id} is under embargo {until}: "
            "the products are published after the embargo ends."
        )
