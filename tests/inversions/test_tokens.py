"""API tokens: made once, kept hashed, looked up in constant time, revocable, last use recorded."""

import datetime as dt
import hashlib

import pytest
import time_machine
from django.utils import timezone

from inversions.models import ApiToken
from inversions.tokens import authenticate_token, create_api_token, revoke_api_tokens
from tests.factories import ApiTokenFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_new_token_is_kept_as_its_digest_and_its_prefix_only():
    user = UserFactory()
    token, secret = create_api_token(user=user, name=" blanca jobs ")
    token.refresh_from_db()
    assert len(secret) >= 40
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert token.prefix == secret[:8] and token.name == "blanca jobs" and token.user == user
    stored = [str(value) for value in ApiToken.objects.values_list().get()]
    assert secret not in stored


def test_two_tokens_differ():
    user = UserFactory()
    assert create_api_token(user=user)[1] != create_api_token(user=user)[1]


def test_the_secret_authenticates_its_token():
    token = ApiTokenFactory()
    assert authenticate_token(token.secret) == token
    assert authenticate_token(token.secret[:-1]) is None
    assert authenticate_token("") is None


def test_a_token_sharing_the_prefix_is_told_apart_by_its_digest():
    token = ApiTokenFactory()
    ApiToken.objects.create(user=token.user, prefix=token.prefix, digest="0" * 64)
    assert authenticate_token(token.secret) == token
    assert authenticate_token(token.prefix + "x" * 35) is None


def test_a_revoked_token_or_an_inactive_user_is_refused():
    revoked, of_inactive = ApiTokenFactory(), ApiTokenFactory(user=UserFactory(is_active=False))
    assert revoke_api_tokens(tokens=ApiToken.objects.filter(pk=revoked.pk)) == 1
    assert authenticate_token(revoked.secret) is None
    assert authenticate_token(of_inactive.secret) is None


def test_revoking_keeps_the_first_revocation_time():
    token = ApiTokenFactory()
    revoke_api_tokens(tokens=ApiToken.objects.all())
    first = ApiToken.objects.get().revoked_at
    assert revoke_api_tokens(tokens=ApiToken.objects.all()) == 0
    assert ApiToken.objects.get(pk=token.pk).revoked_at == first


def test_the_last_use_is_recorded_at_most_once_a_minute():
    token = ApiTokenFactory()
    start = dt.datetime(2025, 7, 1, 12, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        authenticate_token(token.secret)
    token.refresh_from_db()
    assert token.last_used_at == start
    with time_machine.travel(start + dt.timedelta(seconds=59), tick=False):
        authenticate_token(token.secret)
    token.refresh_from_db()
    assert token.last_used_at == start
    with time_machine.travel(start + dt.timedelta(seconds=61), tick=False):
        assert authenticate_token(token.secret).last_used_at == timezone.now()
    token.refresh_from_db()
    assert token.last_used_at == start + dt.timedelta(seconds=61)
