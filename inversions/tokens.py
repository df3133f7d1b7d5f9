"""Cluster API tokens: made once, kept as a SHA-256 digest, revocable, with a last-used time.

A token is shown to its owner once, when it is made; only its first characters (``prefix``,
to tell tokens apart) and its digest are stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from inversions.models import ApiToken

PREFIX_LENGTH = 8
# A token used again within this time keeps its last-used time: one write a minute at most.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def assign_secret(token: ApiToken) -> str:
    """Give an unsaved token a new secret (its prefix and digest) and return the secret,
    which is never stored: show it to the owner once."""
    raw = secrets.token_urlsafe(32)
    token.prefix = raw[:PREFIX_LENGTH]
    token.digest = _digest(raw)
    return raw


def create_api_token(*, user: AbstractBaseUser, name: str = "") -> tuple[ApiToken, str]:
    """A new token of ``user``, and its secret (shown once)."""
    token = ApiToken(user=user, name=name.strip())
    raw = assign_secret(token)
    token.save()
    return token, raw


def authenticate_token(raw: str) -> ApiToken | None:
    """The active token whose secret is ``raw``, of an active user; None otherwise.

    Tokens are looked up by their public prefix and told apart by comparing digests in
    constant time. The last-used time is brought up to date at most once a minute.
    """
    digest = _digest(raw)
    candidates = ApiToken.objects.select_related("user").filter(
        prefix=raw[:PREFIX_LENGTH], revoked_at__isnull=True, user__is_active=True
    )
    token = next((token for token in candidates if hmac.compare_digest(token.digest, digest)), None)
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        # Conditional, so that requests arriving together write once.
        ApiToken.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION), pk=token.pk
        ).update(last_used_at=now)
        token.last_used_at = now
    return token


def revoke_api_tokens(*, tokens: QuerySet[ApiToken]) -> int:
    """Revoke the tokens not yet revoked; returns how many were."""
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
