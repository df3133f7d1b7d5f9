"""The life of an Observing Program as data: its states and the allowed transitions.

This is DESIGN.md's transition table. ``ops.history.record_event`` is the only code that
consults it to append events.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


class State(models.TextChoices):
    DISCOVERED = "discovered", "discovered"
    INVERTIBLE = "invertible", "invertible"
    NOT_INVERTIBLE = "not_invertible", "not invertible"
    QUEUED = "queued", "queued"
    PREPROCESSING = "preprocessing", "preprocessing"
    PREPROCESSED = "preprocessed", "preprocessed"
    WORKING = "working", "working"
    INVERTED = "inverted", "inverted"
    GENERATING = "generating", "generating"
    GENERATED = "generated", "generated"
    PUBLISHING = "publishing", "publishing"
    PUBLISHED = "published", "published"
    ERROR = "error", "error"
    ARCHIVED = "archived", "archived"


class ActorKind(models.TextChoices):
    """Who or what causes an event; the "by" column of the transition table."""

    SCANNER = "scanner", "scanner"
    QUALIFIER = "qualifier", "qualifier"
    WORKER = "worker", "worker"
    INVERTER = "inverter", "inverter"
    PUBLISHER = "publisher", "publisher"
    API = "api", "cluster API"
    STAFF = "staff", "staff"


@dataclass(frozen=True)
class Transition:
    source: State | None
    target: State
    by: frozenset[ActorKind]


def _rules(sources, targets, *by: ActorKind) -> list[Transition]:
    return [Transition(s, t, frozenset(by)) for s in sources for t in targets]


S, A = State, ActorKind
TRANSITIONS: list[Transition] = [
    *_rules([None], [S.DISCOVERED], A.SCANNER),
    *_rules([S.DISCOVERED], [S.INVERTIBLE, S.NOT_INVERTIBLE], A.QUALIFIER),
    *_rules([S.INVERTIBLE], [S.NOT_INVERTIBLE], A.QUALIFIER),
    *_rules([S.NOT_INVERTIBLE], [S.INVERTIBLE], A.QUALIFIER),
    *_rules([S.INVERTIBLE], [S.QUEUED], A.INVERTER),
    *_rules([S.QUEUED], [S.PREPROCESSING], A.WORKER),
    *_rules([S.PREPROCESSING], [S.PREPROCESSED, S.ERROR], A.WORKER),
    *_rules([S.PREPROCESSED], [S.WORKING], A.INVERTER),
    *_rules([S.QUEUED, S.PREPROCESSED, S.WORKING], [S.INVERTIBLE], A.INVERTER),
    *_rules([S.WORKING], [S.INVERTED], A.INVERTER, A.API),
    *_rules([S.INVERTED], [S.GENERATING], A.WORKER),
    *_rules([S.GENERATING], [S.GENERATED, S.ERROR], A.WORKER),
    *_rules([S.GENERATED], [S.INVERTED], A.INVERTER, A.PUBLISHER),
    *_rules([S.GENERATED], [S.PUBLISHING], A.PUBLISHER),
    *_rules([S.PUBLISHING], [S.PUBLISHED, S.ERROR], A.WORKER),
    *_rules([S.ERROR], [S.QUEUED, S.INVERTED, S.GENERATED], A.INVERTER, A.PUBLISHER),
    # "Invert again", a new attempt. DESIGN.md's table names the inverter; issue 21 also lets
    # publishers queue published OPs again, through a reprocessing campaign.
    *_rules([S.PUBLISHED], [S.QUEUED], A.INVERTER, A.PUBLISHER),
    *_rules([s for s in S if s != S.ARCHIVED], [S.ARCHIVED], A.STAFF),
    # archived -> the state before: checked against the archiving event in ops.history.
    *_rules([S.ARCHIVED], [s for s in S if s != S.ARCHIVED], A.STAFF),
]
del S, A

TRANSITION_TABLE: dict[tuple[State | None, State], Transition] = {
    (t.source, t.target): t for t in TRANSITIONS
}

# An error is retried from the state before the step that failed.
RETRY_STATE_AFTER_FAILED_STEP = {
    State.PREPROCESSING: State.QUEUED,
    State.GENERATING: State.INVERTED,
    State.PUBLISHING: State.GENERATED,
}

# States in which the inversion work has started: dataset changes only add information.
WORK_STARTED_STATES = frozenset(
    {
        State.QUEUED,
        State.PREPROCESSING,
        State.PREPROCESSED,
        State.WORKING,
        State.INVERTED,
        State.GENERATING,
        State.GENERATED,
        State.PUBLISHING,
        State.PUBLISHED,
        State.ERROR,
    }
)
