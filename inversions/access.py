"""Who may read: every page needs a role (viewers, inverters, publishers, or staff), decided
here for every view at once, so that a page added later cannot forget it.

Views marked ``login_not_required`` (logging in and out, Globus login and its file picker's
post-back, which carries a signed token) are open. The API's routes check their token or
session users themselves (inversions.api): a token request has no session for this middleware
to see; its schema and docs page are decorated with ``role_required``.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from inversions import roles

API_NAMESPACE = "api"


def refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the user may read; else the login page (anonymous) or the page saying whom
    to ask (logged in with no role), and nothing else."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not roles.has_any_role(request.user):
        return render(request, "no_access.html", {"admins": access_admins()}, status=403)
    return None


class RoleRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not getattr(view_func, "login_required", True):
            return None
        if request.resolver_match and API_NAMESPACE in request.resolver_match.namespaces:
            return None
        return refusal(request)


def role_required(view):
    """The middleware's check for a view it leaves alone (the API's schema and docs page)."""

    @wraps(view)
    def checked(request, *args, **kwargs):
        return refusal(request) or view(request, *args, **kwargs)

    return checked


def access_admins() -> list:
    """Whom to ask for a role: the active staff accounts."""
    return list(get_user_model().objects.filter(is_active=True, is_staff=True).order_by("username")[:10])


def roles_context(request: HttpRequest) -> dict[str, object]:
    """Context processor: whether the layout shows the navigation (users with a role only)."""
    return {"may_read": roles.has_any_role(request.user)}


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The 403 page in the layout: why (the refusal's own message) and whom to ask."""
    context = {"reason": str(exception) or "", "admins": access_admins()}
    return render(request, "403.html", context, status=403)
