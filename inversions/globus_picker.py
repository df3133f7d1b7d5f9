"""Globus's file picker for "Report done": the Globus web app's browse helper page, which
posts the chosen collection, path and files back to us.

That post-back comes from the user's browser on Globus's page, so it carries no CSRF token
of ours (and, cross-site, usually no session cookie): it is accepted only with a signed,
expiring token in its URL, made for this program and user when the link was shown, and only
once. The choice is then kept on the server and shown only to that user, on the Report done
form (which checks the user and the files again): a forged or replayed post-back cannot put a
folder into anybody's form.
"""

from __future__ import annotations

import posixpath
import secrets
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from globus_sdk.config import get_webapp_url

from inversions.transfers import get_backend

SALT = "inversions.globus-picker"
TOKEN_MAX_AGE_S = 3600
# Cache keys: a link's nonce until its post-back comes; then the choice, until the form reads it.
LINK_KEY = "globus-picker-link:{nonce}"
CHOICE_KEY = "globus-picker-choice:{nonce}"
CHOICE_PARAMETER = "picked"


def picker_url(*, request: HttpRequest, program_id: str) -> str:
    """The Globus file picker for this program's result folder, or "" without the Globus
    backend (the result check could not read a Globus collection then)."""
    if get_backend().name != "globus":
        return ""
    nonce = secrets.token_urlsafe(16)
    cache.set(LINK_KEY.format(nonce=nonce), request.user.pk, TOKEN_MAX_AGE_S)
    token = signing.TimestampSigner(salt=SALT).sign_object(
        {"program": program_id, "user": request.user.pk, "nonce": nonce}
    )
    callback = reverse("globus:picker-callback", args=[program_id])
    report_done = reverse("inversions:report-done", args=[program_id])
    query = {
        "action": request.build_absolute_uri(f"{callback}?{urlencode({'token': token})}"),
        "method": "POST",
        "folderlimit": 1,
        "filelimit": len(settings.LEVEL2_RESULT_FILES),
        "label": f"Level 2: the folder of the result files of {program_id}",
        "cancelurl": request.build_absolute_uri(report_done),
    }
    return f"{get_webapp_url().rstrip('/')}/file-manager?{urlencode(query)}"


@login_not_required
@csrf_exempt
@require_POST
def picker_callback(request: HttpRequest, program_id: str) -> HttpResponse:
    """Globus's post-back: on to the Report done form, which shows the chosen folder to the
    user the link was made for."""
    report_done = reverse("inversions:report-done", args=[program_id])
    try:
        signed = signing.TimestampSigner(salt=SALT).unsign_object(
            request.GET.get("token", ""), max_age=TOKEN_MAX_AGE_S
        )
    except signing.SignatureExpired:
        return _refused("This choice from Globus came back after more than an hour.", report_done)
    except signing.BadSignature:
        return _refused("This choice from Globus does not come from a Level 2 page.", report_done)
    other_user = request.user.is_authenticated and request.user.pk != signed["user"]
    if signed["program"] != program_id or other_user:
        return _refused("This choice from Globus was started for another program or user.", report_done)
    nonce = signed.get("nonce", "")
    if not (nonce and cache.delete(LINK_KEY.format(nonce=nonce))):
        return _refused("This choice from Globus was used already.", report_done)
    path = request.POST.get("path", "")
    if request.POST.get("folder[0]"):
        # A folder chosen inside the one shown: the result files are in it.
        path = posixpath.join(path, request.POST["folder[0]"])
    choice = {
        "user": signed["user"],
        "program": program_id,
        "result_collection": request.POST.get("endpoint_id", ""),
        "result_path": path,
    }
    cache.set(CHOICE_KEY.format(nonce=nonce), choice, TOKEN_MAX_AGE_S)
    response = HttpResponseRedirect(f"{report_done}?{urlencode({CHOICE_PARAMETER: nonce})}")
    response.status_code = 303  # the form is read with GET
    return response


def take_choice(*, request: HttpRequest, program_id: str) -> dict[str, str] | None:
    """The collection and path that this user chose in Globus for this program (once), or None."""
    nonce = request.GET.get(CHOICE_PARAMETER, "")
    if not nonce:
        return None
    key = CHOICE_KEY.format(nonce=nonce)
    choice = cache.get(key)
    if not choice or choice["user"] != request.user.pk or choice["program"] != program_id:
        return None
    cache.delete(key)
    return {"result_collection": choice["result_collection"], "result_path": choice["result_path"]}


def _refused(reason: str, report_done: str) -> HttpResponse:
    return HttpResponseForbidden(
        format_html('<p>{} Please choose again from <a href="{}">Report done</a>.</p>', reason, report_done)
    )
