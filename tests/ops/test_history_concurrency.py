"""Fifty people clicking "work on this next" at once: exactly one wins."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from django.db import connection

from ops.history import Actor, StaleStateError, record_event
from ops.models import ProgramEvent
from ops.states import ActorKind, State
from tests.factories import UserFactory, program_in_state

CLIENTS = 50


@pytest.mark.slow
def test_fifty_concurrent_requests_for_the_same_transition_give_one_success(committed_db):
    program = program_in_state(State.INVERTIBLE)
    users = [UserFactory(username=f"lead{n}") for n in range(CLIENTS)]
    start = Barrier(CLIENTS)

    def take(user):
        start.wait()
        try:
            record_event(
                program_id=program.pk,
                to_state=State.QUEUED,
                actor=Actor(ActorKind.INVERTER, user),
                expected_state=State.INVERTIBLE,
            )
            return "won"
        except StaleStateError as refused:
            return str(refused)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        outcomes = list(pool.map(take, users))

    winners = [outcome for outcome in outcomes if outcome == "won"]
    assert len(winners) == 1
    queued = ProgramEvent.objects.get(program=program, to_state=State.QUEUED)
    for refusal in (outcome for outcome in outcomes if outcome != "won"):
        assert f"it is queued since {queued.created_at:%Y-%m-%d %H:%M} UTC by {queued.actor_label}" in refusal
