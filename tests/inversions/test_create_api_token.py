"""``manage.py create_api_token USERNAME [--name NAME]``."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from inversions.models import ApiToken
from inversions.tokens import authenticate_token
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_prints_a_token_that_authenticates_once():
    user = UserFactory(username="blanca")
    out, err = StringIO(), StringIO()
    call_command("create_api_token", "blanca", "--name", "job script", stdout=out, stderr=err)
    secret = out.getvalue().strip()
    token = ApiToken.objects.get()
    assert authenticate_token(secret) == token
    assert (token.user, token.name) == (user, "job script")
    assert "shown only now" in err.getvalue() and secret not in err.getvalue()


def test_an_unknown_user_is_a_clear_error():
    with pytest.raises(CommandError, match=r"There is no user named 'nobody': create the user first\."):
        call_command("create_api_token", "nobody", stdout=StringIO(), stderr=StringIO())
    assert not ApiToken.objects.exists()


def test_a_token_for_a_superuser_is_not_made_here():
    UserFactory(username="root", is_superuser=True, is_staff=True)
    with pytest.raises(CommandError, match=r"root is a superuser: only a superuser may make a token for one"):
        call_command("create_api_token", "root", stdout=StringIO(), stderr=StringIO())
    assert not ApiToken.objects.exists()
