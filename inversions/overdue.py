"""OPs that stay in a state longer than expected (LEVEL2_EXPECTED_DAYS_<STATE>), and who is told."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q
from django.utils import timezone

from inversions.models import Inversion
from ops.models import ObservingProgram


@dataclass(frozen=True)
class OverdueProgram:
    program_id: str
    state: str
    since: datetime
    expected_days: float
    owner: str
    owner_email: str

    @property
    def days(self) -> float:
        return (timezone.now() - self.since).total_seconds() / 86400


def expected_days(state: str) -> float | None:
    return settings.LEVEL2_EXPECTED_DAYS.get(state)


def is_overdue(*, state: str, since: datetime, now: datetime) -> bool:
    days = expected_days(state)
    return days is not None and now - since > timedelta(days=days)


def overdue_filter(*, now: datetime) -> Q:
    """OPs (ObservingProgram querysets) in a state with an expectation, for longer than it."""
    return reduce(
        or_,
        (
            Q(state=state, state_since__lt=now - timedelta(days=days))
            for state, days in settings.LEVEL2_EXPECTED_DAYS.items()
        ),
    )


def overdue_programs(*, now: datetime | None = None) -> list[OverdueProgram]:
    """Every overdue OP, longest overdue first, with its owner (who chose it)."""
    now = now or timezone.now()
    programs = list(
        ObservingProgram.objects.filter(overdue_filter(now=now))
        .select_related("current_event")
        .order_by("state_since")
    )
    owners = {
        inversion.program_id: inversion.owner
        for inversion in Inversion.objects.filter(
            program_id__in=[program.pk for program in programs], ended_at__isnull=True
        ).select_related("owner")
    }
    return [
        OverdueProgram(
            program_id=program.pk,
            state=program.state,
            since=program.state_since,
            expected_days=expected_days(program.state),
            owner=owners[program.pk].get_username() if program.pk in owners else "",
            owner_email=owners[program.pk].email if program.pk in owners else "",
        )
        for program in programs
    ]


def describe(overdue: OverdueProgram) -> str:
    owner = f", owner {overdue.owner}" if overdue.owner else ""
    return (
        f"{overdue.program_id}: {overdue.state} for {overdue.days:.1f} days "
        f"(expected at most {overdue.expected_days:g}){owner}"
    )


def email_overdue(*, now: datetime | None = None) -> int:
    """Email each owner their overdue OPs and the lead (LEVEL2_LEAD_EMAILS) all of them."""
    overdue = overdue_programs(now=now)
    if not overdue:
        return 0
    by_owner: dict[str, list[OverdueProgram]] = defaultdict(list)
    for item in overdue:
        if item.owner_email:
            by_owner[item.owner_email].append(item)
    sent = 0
    for email, items in sorted(by_owner.items()):
        body = "\n".join(describe(item) for item in items)
        sent += send_mail(
            f"Level 2: {len(items)} of your programs overdue", body, None, [email], fail_silently=False
        )
    if settings.LEVEL2_LEAD_EMAILS:
        body = "\n".join(describe(item) for item in overdue)
        sent += send_mail(
            f"Level 2: {len(overdue)} programs overdue", body, None, settings.LEVEL2_LEAD_EMAILS
        )
    return sent
