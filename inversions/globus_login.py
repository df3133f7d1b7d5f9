"""Logging in with Globus: OpenID Connect through Globus Auth, with globus-sdk's own client.

The first login makes a user with no roles (staff grant them in admin), keyed by the Globus
account's ``sub``. The tokens Globus gives are used only to read the ID token, and then
dropped: nothing here calls Globus on the user's behalf.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import globus_sdk
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET
from globus_sdk.scopes import AuthScopes, Scope

from inversions.globus_identity import GlobusIdentity

log = logging.getLogger(__name__)

SESSION_STATE = "globus_login_state"
SESSION_NEXT = "globus_login_next"


def login_enabled() -> bool:
    """Configured, and with an allow-list: without one any Globus account could log in."""
    return bool(
        getattr(settings, "GLOBUS_LOGIN_CLIENT_ID", "")
        and getattr(settings, "GLOBUS_LOGIN_CLIENT_SECRET", "")
        and (allowed_domains() or allowed_identities())
    )


def allowed_domains() -> set[str]:
    return {domain.lower() for domain in getattr(settings, "LEVEL2_GLOBUS_ALLOWED_DOMAINS", [])}


def allowed_identities() -> set[str]:
    """Identities allowed beside the domains: usernames (jane@orcid.org) or identity ids."""
    return {identity.lower() for identity in getattr(settings, "LEVEL2_GLOBUS_ALLOWED_IDENTITIES", [])}


def login_options(request: HttpRequest) -> dict[str, bool]:
    """Context processor: whether the login page offers "Log in with Globus"."""
    return {"globus_login_enabled": login_enabled()}


# --- the views --------------------------------------------------------------------------------


@login_not_required
@require_GET
def start(request: HttpRequest) -> HttpResponse:
    """Send the browser to Globus Auth, with a fresh ``state`` kept in the session."""
    if not login_enabled():
        raise Http404("Globus login is not configured.")
    state = secrets.token_urlsafe(32)
    request.session[SESSION_STATE] = state
    next_url = request.GET.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    request.session[SESSION_NEXT] = next_url if safe else ""
    client = _auth_client()
    client.oauth2_start_flow(_redirect_uri(request), _scopes(), state=state)
    # Globus then asks for an identity from one of the domains when the session has none (not
    # when single identities of other domains may log in too).
    domains = sorted(allowed_domains()) if not allowed_identities() else []
    return redirect(
        client.oauth2_get_authorize_url(session_required_single_domain=domains or globus_sdk.MISSING)
    )


@login_not_required
@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    """Globus Auth sends the browser back here with ``code`` and our ``state``."""
    if not login_enabled():
        raise Http404("Globus login is not configured.")
    expected_state = request.session.pop(SESSION_STATE, "")
    next_url = request.session.pop(SESSION_NEXT, "")
    if not expected_state or not constant_time_compare(expected_state, request.GET.get("state", "")):
        return _refused(
            request, "This Globus login could not be checked (stale or forged). Please log in again."
        )
    if "error" in request.GET or "code" not in request.GET:
        reason = request.GET.get("error_description") or request.GET.get("error") or "no code was returned"
        return _refused(request, f"Globus did not log you in: {reason}.")
    try:
        claims = _identity_claims(code=request.GET["code"], redirect_uri=_redirect_uri(request))
    except globus_sdk.GlobusError:
        log.exception("Globus login: exchanging the code or reading the ID token failed")
        return _refused(request, "Globus login failed; we logged it. Please try again.", status=502)
    if not _is_allowed(claims):
        accepted = [f"identities from {', '.join(sorted(allowed_domains()))}"] * bool(allowed_domains())
        accepted += ["the identities its admins named"] * bool(allowed_identities())
        return _refused(
            request,
            f"Your Globus identity {claims.get('preferred_username', '')} is not allowed: Level 2 accepts "
            f"{' and '.join(accepted)} only. Log in to Globus with one of them (or link one to your "
            "Globus account).",
        )
    user = user_for_globus_identity(
        sub=claims["sub"],
        username=claims.get("preferred_username") or claims["sub"],
        email=claims.get("email") or "",
    )
    if not user.is_active:
        return _refused(request, "Your Level 2 account is disabled.")
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect(next_url or settings.LOGIN_REDIRECT_URL)


# --- the user ---------------------------------------------------------------------------------


def user_for_globus_identity(*, sub: str, username: str, email: str) -> AbstractBaseUser:
    """The user of this Globus account; made (with no roles) on its first login."""
    identity = GlobusIdentity.objects.select_related("user").filter(sub=sub).first()
    if identity is not None:
        if identity.username != username:
            GlobusIdentity.objects.filter(pk=identity.pk).update(username=username)
        return identity.user
    User = get_user_model()
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=_free_username(username, sub=sub), email=email)
            GlobusIdentity.objects.create(sub=sub, user=user, username=username)
    except IntegrityError:
        # The same account's first login in another tab won the race.
        return GlobusIdentity.objects.select_related("user").get(sub=sub).user
    log.info("Globus login made user %s for identity %s", user.get_username(), sub)
    return user


def _free_username(username: str, *, sub: str) -> str:
    """Globus's username, unless a (local) user has it already: never take over an account."""
    User = get_user_model()
    candidate = username[:150]
    if User.objects.filter(username=candidate).exists():
        candidate = f"{username[:141]}-{sub[:8]}"
    return candidate


# --- Globus Auth ------------------------------------------------------------------------------


def _auth_client() -> globus_sdk.ConfidentialAppAuthClient:
    return globus_sdk.ConfidentialAppAuthClient(
        client_id=settings.GLOBUS_LOGIN_CLIENT_ID, client_secret=settings.GLOBUS_LOGIN_CLIENT_SECRET
    )


def _scopes() -> list[Scope]:
    # The linked identities too: an allowed one need not be the account's primary identity.
    return [AuthScopes.openid, AuthScopes.profile, AuthScopes.email, AuthScopes.view_identity_set]


def _redirect_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("globus:login-callback"))


def _identity_claims(*, code: str, redirect_uri: str) -> dict[str, Any]:
    """The verified claims of the ID token (signature, audience, expiry) for this code."""
    client = _auth_client()
    client.oauth2_start_flow(redirect_uri, _scopes())
    tokens = client.oauth2_exchange_code_for_tokens(code)
    # The decoder rather than tokens.decode_id_token(): that one logs the raw token at DEBUG.
    return globus_sdk.IDTokenDecoder(client).decode(tokens["id_token"])


def _is_allowed(claims: dict[str, Any]) -> bool:
    """Whether one of the account's identities (primary or linked) is from an allowed domain
    or is an allowed identity (by username or id)."""
    domains, identities = allowed_domains(), allowed_identities()
    linked = claims.get("identity_set", [])
    usernames = {claims.get("preferred_username", "")} | {entry.get("username", "") for entry in linked}
    ids = {claims.get("sub", "")} | {entry.get("sub", "") for entry in linked}
    names = {name.lower() for name in usernames | ids if name}
    return bool(names & identities) or any(name.rpartition("@")[2] in domains for name in names)


def _refused(request: HttpRequest, message: str, *, status: int = 403) -> HttpResponse:
    """The login page again, saying why the Globus login was refused."""
    context = {"form": AuthenticationForm(request), "globus_error": message, "globus_login_enabled": True}
    return render(request, "registration/login.html", context, status=status)
