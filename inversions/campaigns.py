"""Reprocessing campaigns: a publisher queues many published OPs to invert again at once.

``create_campaign`` records the OPs with the state the publisher saw each in (a draft, which
the confirmation page lists); ``confirm_campaign`` moves it to running, once: a second post of
the same confirmation finds it running or done and queues nothing. ``run_campaign`` then
queues each OP through ``services.queue_program`` from the state the publisher saw, one
transaction per OP, in the campaign's order (each attempt goes to the end of the Work queue);
an OP that moved meanwhile, or that may not be queued, is refused with the reason (who moved
it, and when). The campaign's counters are written in the same transaction as each OP's
outcome, so the page's progress and summary are what happened.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from inversions import roles, services
from inversions.models import Campaign, CampaignItem
from inversions.steps import start_after_commit
from ops.history import StaleStateError, TransitionError
from ops.models import ObservingProgram, ProgramEvent
from ops.states import State

# A campaign's size at most: its confirmation page lists them, and each is one transaction.
MAX_CAMPAIGN_PROGRAMS = 5_000
# Up to this many, a confirmation queues them in the request; more run in the worker, with a
# progress page.
RUN_IN_REQUEST_AT_MOST = 50
# A campaign queued in the request is handed to the worker as well, this much later: if the
# request dies half-way, the worker queues the rest (run_campaign passes over what is done).
RESUME_AFTER_S = 120


class CampaignRefused(ValueError):
    """A campaign that cannot be made as asked (none, too many, unknown or repeated OPs)."""


class CampaignTooLarge(CampaignRefused):
    pass


def _require_publisher(user: AbstractBaseUser) -> None:
    if not roles.is_publisher(user):
        raise PermissionDenied("Only publishers may run a reprocessing campaign.")


def create_campaign(
    *, user: AbstractBaseUser, items: Sequence[tuple[str, State]], description: str = ""
) -> Campaign:
    """A draft campaign of ``items``, (program id, the state the user saw it in), in the order
    they are to be queued. CampaignRefused when there are none, too many, or ids that name no
    OP or name one twice."""
    _require_publisher(user)
    if not items:
        raise CampaignRefused("No programs to queue: the filter keeps no published program.")
    if len(items) > MAX_CAMPAIGN_PROGRAMS:
        raise CampaignTooLarge(
            f"{len(items):,} programs are more than a campaign takes ({MAX_CAMPAIGN_PROGRAMS:,} at most): "
            "narrow the filter."
        )
    ids = [program_id for program_id, _ in items]
    repeated = sorted(program_id for program_id, count in Counter(ids).items() if count > 1)
    if repeated:
        raise CampaignRefused(f"Each program once: {', '.join(repeated[:5])} listed more than once.")
    known = set(ObservingProgram.objects.filter(pk__in=ids).values_list("pk", flat=True))
    unknown = [program_id for program_id in ids if program_id not in known]
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise CampaignRefused(f"There is no observing program {', '.join(unknown[:5])}{more}.")
    with transaction.atomic():
        campaign = Campaign.objects.create(
            created_by=user, description=description.strip()[:300], requested=len(items)
        )
        CampaignItem.objects.bulk_create(
            CampaignItem(campaign=campaign, position=position, program_id=program_id, expected_state=state)
            for position, (program_id, state) in enumerate(items)
        )
    return campaign


def confirm_campaign(*, campaign_id: int, user: AbstractBaseUser) -> bool:
    """Draft → running, by the publisher who made it. True for the one call that confirmed it;
    False when it was confirmed already (a second post, another tab): nothing is queued twice."""
    _require_publisher(user)
    campaign = Campaign.objects.filter(pk=campaign_id).values_list("created_by_id", flat=True).first()
    if campaign is None:
        raise Campaign.DoesNotExist(f"No campaign {campaign_id}.")
    if campaign != user.pk:
        raise PermissionDenied("A campaign is confirmed by the publisher who asked for it.")
    confirmed = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.DRAFT).update(
        status=Campaign.Status.RUNNING, confirmed_at=timezone.now()
    )
    return confirmed == 1


def start_campaign(*, campaign_id: int, user: AbstractBaseUser) -> Campaign | None:
    """Confirm a draft campaign and queue its OPs: in this call when they are few (the answer
    shows how it went), else in the worker (its page follows it). None when it was confirmed
    already: nothing is queued twice."""
    if not confirm_campaign(campaign_id=campaign_id, user=user):
        return None
    requested = Campaign.objects.values_list("requested", flat=True).get(pk=campaign_id)
    if requested > RUN_IN_REQUEST_AT_MOST:
        start_after_commit("run_campaign", campaign_id)
        return Campaign.objects.select_related("created_by").get(pk=campaign_id)
    start_after_commit("run_campaign", campaign_id, countdown=RESUME_AFTER_S)
    return run_campaign(campaign_id=campaign_id)


def _note(campaign: Campaign) -> str:
    return f"Campaign {campaign.pk}" + (f": {campaign.description}" if campaign.description else "")


def _refusal(item: CampaignItem) -> str | None:
    """Why an item is refused before asking the service: campaigns invert again, and only that."""
    if item.expected_state != State.PUBLISHED:
        return (
            f"{item.program_id} was {item.expected_state}, not published: "
            "a campaign inverts again published programs only."
        )
    return None


def _who_moved(item: CampaignItem, current: ProgramEvent | None) -> str:
    """Who took the OP out of the state it was seen in, and when: the worker may have moved it
    on since, and the refusal's own message names only the last to act."""
    left = (
        ProgramEvent.objects.filter(program_id=item.program_id, from_state=item.expected_state)
        .exclude(to_state=item.expected_state)
        .select_related("actor_user")
        .order_by("-id")
        .first()
    )
    if left is None or (current is not None and left.pk == current.pk):
        return ""
    return (
        f" It left {item.expected_state} on {left.created_at:%Y-%m-%d %H:%M} UTC:"
        f" {left.to_state} by {left.actor_label}."
    )


def _run_item(*, campaign: Campaign, item_id: int, user: AbstractBaseUser, note: str) -> None:
    """Queue one OP or record why not, with the campaign's counters, in one transaction. An item
    another runner holds or finished is left alone (a worker that restarts resumes the rest)."""
    with transaction.atomic():
        item = (
            CampaignItem.objects.select_for_update(skip_locked=True)
            .filter(pk=item_id, outcome=CampaignItem.Outcome.PENDING)
            .first()
        )
        if item is None:
            return
        reason = _refusal(item)
        if reason is None:
            try:
                # A savepoint: a refusal undoes the attempt's writes and keeps the item's.
                with transaction.atomic():
                    item.inversion = services.queue_program(
                        program_id=item.program_id,
                        user=user,
                        note=note,
                        expected_state=State(item.expected_state),
                    )
            except StaleStateError as error:
                reason = f"{error}{_who_moved(item, error.current)}"
            except (TransitionError, PermissionDenied) as error:
                reason = str(error) or "Not allowed."
        item.outcome = CampaignItem.Outcome.REFUSED if reason else CampaignItem.Outcome.QUEUED
        item.reason = reason or ""
        item.done_at = timezone.now()
        item.save(update_fields=["outcome", "reason", "inversion", "done_at"])
        counter = "refused" if reason else "queued"
        Campaign.objects.filter(pk=campaign.pk).update(**{counter: F(counter) + 1})


def run_campaign(*, campaign_id: int) -> Campaign:
    """Queue or refuse each pending OP of a confirmed campaign, in order, as its publisher; the
    campaign is done once none is pending. A campaign not running is left as it is."""
    campaign = Campaign.objects.select_related("created_by").get(pk=campaign_id)
    if campaign.status == Campaign.Status.RUNNING:
        note = _note(campaign)
        pending = campaign.items.filter(outcome=CampaignItem.Outcome.PENDING).order_by("position")
        for item_id in list(pending.values_list("pk", flat=True)):
            _run_item(campaign=campaign, item_id=item_id, user=campaign.created_by, note=note)
        still_pending = CampaignItem.objects.filter(
            campaign_id=OuterRef("pk"), outcome=CampaignItem.Outcome.PENDING
        )
        Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.RUNNING).exclude(
            Exists(still_pending)
        ).update(status=Campaign.Status.DONE, finished_at=timezone.now())
        campaign.refresh_from_db()
    return campaign
