"""The API fuzzed from its own OpenAPI schema (schemathesis, in-process through the WSGI app):
no answer is a 5xx, and every answer matches the schema."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from inversions.api import api
from ops.states import State
from tests.factories import ApiTokenFactory, UserFactory, program_in_state
from tests.inversions.conftest import invertible_program, published_and_stale

# The schema /api/openapi.json serves (to users with a role), from the API itself: no request
# and no database while tests are collected. Calls go in-process through the WSGI app.
schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api"))
schema.app = get_wsgi_application()
# The API refuses some schema-valid requests for reasons a schema cannot say (a NUL byte, the
# state rules, the report's checks), with its documented 400 or 409: that is not a failure.
schema.config.checks.update(excluded_check_names=["positive_data_acceptance"])


# OPs the fuzzer acts on beside the ids it makes up: each in another state, so that its events
# reach the services.
PROGRAM_IDS = {
    State.INVERTIBLE: "eid_2_1_opFuzz_R001.1.1",
    State.WORKING: "eid_2_1_opFuzz_R001.2.1",
    State.ERROR: "eid_2_1_opFuzz_R001.3.1",
    State.PUBLISHED: "eid_2_1_opFuzz_R001.4.1",
}


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    if not path_parameters or "program_id" not in path_parameters:
        return st.just(path_parameters)
    known = st.sampled_from(list(PROGRAM_IDS.values()))
    return st.one_of(known, st.just(path_parameters["program_id"])).map(
        lambda program_id: {**path_parameters, "program_id": program_id}
    )


@pytest.fixture
def token(db):
    """The OPs to act on, and a superuser's token: every action is allowed, so the fuzzer
    reaches past the role checks."""
    invertible_program(datasets=2, id=PROGRAM_IDS[State.INVERTIBLE])
    program_in_state(State.WORKING, id=PROGRAM_IDS[State.WORKING])
    program_in_state(State.ERROR, id=PROGRAM_IDS[State.ERROR])
    published_and_stale(id=PROGRAM_IDS[State.PUBLISHED])  # its inversions; "invert again"
    # As Django's test client does: a request must not close the test's connection, whose
    # transaction holds these rows.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield ApiTokenFactory(user=UserFactory(username="fuzzer", is_staff=True, is_superuser=True))
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=60,
    derandomize=True,  # the same examples in every run
    database=None,  # nothing written beside the code
    deadline=None,
    # The database fixture is set up once per operation, not per example: on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_keeps_to_its_schema(case, token):
    case.call_and_validate(headers={"Authorization": f"Token {token.secret}"})
