"""The demo team's results reach the "Report done" form through LEVEL2_REPORT_PREFILL."""

import pytest
from django.urls import reverse

from ops.states import State
from tests.factories import UserFactory, program_in_state

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("prefill", "expected"),
    [("demo.team.report_prefill", ("team", "/demo/{id}/")), ("", ("", ""))],
)
def test_the_report_done_form_is_filled_with_the_demo_teams_results(client, settings, prefill, expected):
    settings.LEVEL2_REPORT_PREFILL = prefill
    program = program_in_state(State.WORKING)
    client.force_login(UserFactory(username="lead", groups=["inverters"]))
    response = client.get(reverse("inversions:report-done", args=[program.pk]))
    form = response.context["form"]
    collection, path = expected
    assert (form["result_collection"].value(), form["result_path"].value()) == (
        collection,
        path.format(id=program.pk),
    )
