import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from ops.states import State
from tests.factories import program_in_state

pytestmark = pytest.mark.django_db

ADMIN_MODELS = ["proposal", "experiment", "observingprogram", "instrumentprogram", "dataset", "scan"]


@pytest.mark.parametrize("model", [*ADMIN_MODELS, "programevent"])
def test_every_model_has_an_admin_list(staff_client, model):
    program_in_state(State.INVERTIBLE)
    assert staff_client.get(reverse(f"admin:ops_{model}_changelist")).status_code == 200


def test_events_are_read_only_in_admin(staff_client):
    event = program_in_state(State.INVERTIBLE).current_event
    assert staff_client.get(reverse("admin:ops_programevent_add")).status_code == 403
    detail = staff_client.get(reverse("admin:ops_programevent_change", args=[event.pk]))
    assert detail.status_code == 200
    assert b'name="to_state"' not in detail.content
    assert staff_client.get(reverse("admin:ops_programevent_delete", args=[event.pk])).status_code == 403
    posted = staff_client.post(reverse("admin:ops_programevent_change", args=[event.pk]), {"to_state": "x"})
    assert posted.status_code == 403
    event.refresh_from_db()
    assert event.to_state == State.INVERTIBLE


def test_programs_filter_by_current_state_and_search_by_id(staff_client):
    invertible = program_in_state(State.INVERTIBLE, id="eid_1_1_opINV_R001.1.1")
    program_in_state(State.NOT_INVERTIBLE, id="eid_1_2_opNOT_R001.1.1")
    url = reverse("admin:ops_observingprogram_changelist")
    by_state = staff_client.get(url, {"state": "invertible"})
    assert list(by_state.context["cl"].result_list) == [invertible]
    by_id = staff_client.get(url, {"q": "opNOT"})
    assert [p.id for p in by_id.context["cl"].result_list] == ["eid_1_2_opNOT_R001.1.1"]


def test_role_groups_exist_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= {"inverters", "publishers"}
