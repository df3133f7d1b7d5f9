"""Admin: API tokens (made with the secret shown once, revoked), the work's records view-only."""

import re
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from inversions import campaigns, services
from inversions.models import ApiToken, Inversion, Transfer
from inversions.tokens import authenticate_token
from ops.states import State
from tests.factories import ApiTokenFactory, UserFactory, published_program
from tests.inversions.conftest import invertible_program

pytestmark = pytest.mark.django_db


def test_making_a_token_shows_its_secret_once(staff_client):
    owner = UserFactory(username="blanca")
    response = staff_client.post(
        reverse("admin:inversions_apitoken_add"), {"user": owner.pk, "name": "job script"}, follow=True
    )
    assert response.status_code == 200
    token = ApiToken.objects.get()
    secret = re.search(r"The new token is (\S+) ", response.content.decode())[1]
    assert authenticate_token(secret) == token
    assert (token.user, token.name) == (owner, "job script")
    change_page = staff_client.get(reverse("admin:inversions_apitoken_change", args=[token.pk]))
    assert secret not in change_page.content.decode()
    assert token.prefix in change_page.content.decode()


def test_only_a_superuser_makes_a_token_for_a_superuser(client):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    desk = UserFactory(username="desk", is_staff=True)
    desk.user_permissions.add(Permission.objects.get(codename="add_apitoken"))
    client.force_login(desk)
    add = reverse("admin:inversions_apitoken_add")
    response = client.post(add, {"user": root.pk, "name": "mine now"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not ApiToken.objects.exists()
    assert client.post(add, {"user": desk.pk, "name": "my script"}).status_code == 302
    client.force_login(root)
    assert client.post(add, {"user": root.pk, "name": "root's"}).status_code == 302
    assert set(ApiToken.objects.values_list("user__username", flat=True)) == {"desk", "root"}


def test_the_token_list_and_the_revoke_action(staff_client):
    active, other = ApiTokenFactory(name="cron"), ApiTokenFactory(name="laptop")
    page = staff_client.get(reverse("admin:inversions_apitoken_changelist"))
    html = page.content.decode()
    assert page.status_code == 200
    assert active.prefix in html and "cron" in html and active.user.username in html
    assert active.secret not in html
    response = staff_client.post(
        reverse("admin:inversions_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [active.pk]},
        follow=True,
    )
    assert "1 token(s) revoked." in response.content.decode()
    active.refresh_from_db()
    other.refresh_from_db()
    assert active.revoked_at is not None and other.revoked_at is None
    assert authenticate_token(active.secret) is None


def test_inversions_and_transfers_are_listed_and_never_deleted(staff_client):
    inverter = UserFactory(username="lead", groups=["inverters"])
    program = invertible_program()
    inversion = services.queue_program(program_id=program.pk, user=inverter)
    transfer = Transfer.objects.create(
        inversion=inversion,
        step=Transfer.Step.PREPROCESS,
        submission_id=uuid.uuid4(),
        backend="local",
        label="L1 to scratch",
        source_collection="level1",
        destination_collection="scratch",
        items=[],
    )
    for model, obj in ((Inversion, inversion), (Transfer, transfer)):
        name = model._meta.model_name
        listing = staff_client.get(reverse(f"admin:inversions_{name}_changelist"))
        assert listing.status_code == 200 and str(obj.pk) in listing.content.decode()
        assert staff_client.get(reverse(f"admin:inversions_{name}_change", args=[obj.pk])).status_code == 200
        assert staff_client.get(reverse(f"admin:inversions_{name}_add")).status_code == 403
        assert staff_client.post(reverse(f"admin:inversions_{name}_delete", args=[obj.pk])).status_code == 403
    assert Inversion.objects.filter(pk=inversion.pk).exists() and Transfer.objects.exists()


def test_campaigns_are_listed_with_their_outcome_and_link_to_their_page(staff_client):
    publisher = UserFactory(username="publisher", groups=["publishers"])
    program = published_program(commit="1a2b3c4")
    campaign = campaigns.create_campaign(
        user=publisher, items=[(program.pk, State.PUBLISHED)], description="commit 1a2b3c4"
    )
    listing = staff_client.get(reverse("admin:inversions_campaign_changelist")).content.decode()
    assert "commit 1a2b3c4" in listing and "publisher" in listing
    change = staff_client.get(reverse("admin:inversions_campaign_change", args=[campaign.pk]))
    assert "View on site" in change.content.decode()  # its page, campaign.get_absolute_url()
    delete = staff_client.post(reverse("admin:inversions_campaign_delete", args=[campaign.pk]))
    assert delete.status_code == 403
