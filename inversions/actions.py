"""The buttons of an OP's page, as data: label, the states they act from, who may use them.

Views show a button only where ``allowed`` says so and dispatch POSTs through the same table;
the services check role and state again, so a forged POST changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms

from inversions import forms as action_forms
from inversions import roles, services
from ops.states import State

S = State


@dataclass(frozen=True)
class Action:
    slug: str
    label: str
    sources: frozenset[State]
    may: Callable[..., bool]
    # Who ``may`` lets in, for the refusal: "Publish needs the publishers role."
    needs: str
    form: type[forms.Form] = action_forms.ActionForm
    # Shown as a link to a page of its own instead of a button with a form.
    page: bool = False


def _inverter_or_publisher(user) -> bool:
    return roles.is_inverter(user) or roles.is_publisher(user)


def _inverter_or_staff(user) -> bool:
    return roles.is_inverter(user) or roles.is_staff(user)


INVERTERS = "the inverters role"
INVERTERS_OR_PUBLISHERS = "the inverters or the publishers role"
STAFF = "a staff account"

ACTIONS = [
    Action(
        "queue",
        "Work on this next",
        frozenset({S.INVERTIBLE}),
        roles.is_inverter,
        INVERTERS,
        action_forms.QueueForm,
    ),
    # A new attempt on a published OP (its Level 1 data changed, or the inversion code did);
    # publishers too, as their campaigns queue many at once (issue 21).
    Action(
        "invert-again",
        "Invert again",
        frozenset({S.PUBLISHED}),
        _inverter_or_publisher,
        INVERTERS_OR_PUBLISHERS,
        action_forms.QueueForm,
    ),
    Action("start", "Start", frozenset({S.PREPROCESSED}), roles.is_inverter, INVERTERS),
    Action("report-done", "Report done", frozenset({S.WORKING}), roles.is_inverter, INVERTERS, page=True),
    Action(
        "put-back",
        "Put back",
        frozenset({S.QUEUED, S.PREPROCESSED, S.WORKING}),
        roles.is_inverter,
        INVERTERS,
        action_forms.ReasonForm,
    ),
    Action(
        "move-to-top",
        "Move to top",
        services.QUEUE_STATES,
        roles.is_inverter,
        INVERTERS,
    ),
    # Who retries depends on the failed step; the service decides, the button shows for both.
    Action("retry", "Retry", frozenset({S.ERROR}), _inverter_or_publisher, INVERTERS_OR_PUBLISHERS),
    Action("publish", "Publish", frozenset({S.GENERATED}), roles.is_publisher, "the publishers role"),
    Action(
        "regenerate", "Regenerate", frozenset({S.GENERATED}), _inverter_or_publisher, INVERTERS_OR_PUBLISHERS
    ),
    Action("archive", "Archive", frozenset(S) - {S.ARCHIVED}, roles.is_staff, STAFF, action_forms.ReasonForm),
    Action(
        "restore", "Restore", frozenset({S.ARCHIVED}), roles.is_staff, STAFF, action_forms.OptionalReasonForm
    ),
    Action(
        "note",
        "Add note",
        frozenset(S),
        _inverter_or_staff,
        "the inverters role or a staff account",
        action_forms.NoteForm,
    ),
]
ACTIONS_BY_SLUG = {action.slug: action for action in ACTIONS}


def allowed_actions(*, state: str, user) -> list[Action]:
    return [action for action in ACTIONS if state in action.sources and action.may(user)]


def may_act(user) -> bool:
    """Whether any button is ever the user's (else the pages say why there are none)."""
    return any(action.may(user) for action in ACTIONS)
