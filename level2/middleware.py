"""Bad requests refused before any view or query sees them: NUL bytes and oversize bodies.

PostgreSQL cannot store or compare text with a NUL in it; a NUL that reached a query (an id in
the path, a filter, a note in a JSON body, a session cookie) would be a 500. One check here
covers every route, pages and API alike, instead of one in each view.
"""

from __future__ import annotations

import re
from functools import cache
from urllib.parse import unquote_plus

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

# A \u0000 escape in a JSON text: an odd run of backslashes before "u0000" (an even run is
# escaped backslashes followed by the plain text "u0000").
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


@cache
def _api_prefix() -> str:
    return reverse("api:api-root")


def _where_nul(request: HttpRequest) -> str | None:
    """The part of the request that holds a NUL byte, or None."""
    if "\x00" in request.path_info:
        return "path"
    if "\x00" in unquote_plus(request.META.get("QUERY_STRING", ""), encoding="latin-1"):
        return "query"
    if any("\x00" in value for key, value in request.META.items() if key.startswith("HTTP_")):
        return "header"
    # A quoted cookie value carries a NUL as the escape \000, which parsing turns back into one.
    if any("\x00" in name + value for name, value in request.COOKIES.items()):
        return "cookie"
    content_type = request.content_type or ""
    if content_type == "multipart/form-data":
        return None  # parsed by Django's forms, whose text fields refuse NUL themselves
    if content_type == "application/x-www-form-urlencoded":
        return "body" if "\x00" in unquote_plus(request.body.decode("latin-1"), encoding="latin-1") else None
    # Any other body may be JSON: the API parses it as JSON whatever its content type says.
    return "body" if b"\x00" in request.body or _JSON_NUL.search(request.body) else None


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # as Django itself reads it: no body


class RequestGuardMiddleware:
    """413 for a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (no route takes file uploads), 400
    for a NUL byte anywhere in the path, query, headers or a form or JSON body. The API gets
    its JSON error shapes, pages get the layout's error page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and _content_length(request) > limit:
            reason = f"The request body is larger than {limit // 1024} KiB."
            return self._refuse(request, 413, "body", reason)
        where = _where_nul(request)
        if where is not None:
            return self._refuse(request, 400, where, f"The request's {where} contains a NUL byte.")
        return self.get_response(request)

    @staticmethod
    def _refuse(request: HttpRequest, status: int, where: str, reason: str) -> HttpResponse:
        if request.path_info.startswith(_api_prefix()):
            body = {"errors": {where: [reason]}} if status == 400 else {"detail": reason}
            return JsonResponse(body, status=status)
        # Refused before the session is read: the layout shows no account.
        request.user = AnonymousUser()
        return render(request, f"{status}.html", {"reason": reason}, status=status)
