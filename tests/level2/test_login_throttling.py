"""Failed logins are throttled (django-axes, level2/settings.py): per username and address."""

import pytest
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "the-right-long-password"


def log_in(client, password: str, address: str = "198.51.100.7"):
    data = {"username": "lead", "password": password}
    return client.post(reverse("login"), data, REMOTE_ADDR=address)


def test_after_five_failures_even_the_right_password_is_refused_for_a_while(client, settings):
    UserFactory(username="lead", password=PASSWORD, groups=["viewers"])
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "guess").status_code == 200  # the form again, with its error
    locked = log_in(client, "guess")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.text and 'class="site-header"' in locked.text
    refused = log_in(client, PASSWORD)
    assert refused.status_code == 429 and "_auth_user_id" not in client.session


def test_another_address_is_not_locked_out_by_an_attacker(client, settings):
    UserFactory(username="lead", password=PASSWORD, groups=["viewers"])
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "guess", address="203.0.113.66")
    response = log_in(client, PASSWORD, address="198.51.100.7")
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_a_success_forgets_the_failures_before_it(client, settings):
    UserFactory(username="lead", password=PASSWORD, groups=["viewers"])
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "guess")
    assert log_in(client, PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "guess").status_code == 200
