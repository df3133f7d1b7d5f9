"""Globus's file picker for "Report done": the Globus web app's browse helper page, which
posts the chosen collection, path and files back to us.

That post-back comes from the user's browser on Globus's page, so it carries no CSRF token
of ours (and, cross-site, usually no session cookie): it is accepted only with a signed,
expiring token in its URL, made for this program and user when the link was shown. It only
prefills the Report done form, which checks the user and the files again.
"""

from __future__ import annotations

import posixpath
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from globus_sdk.config import get_webapp_url

from inversions.transfers import get_backend

SALT = "inversions.globus-picker"
TOKEN_MAX_AGE_S = 3600


def picker_url(*, request: HttpRequest, program_id: str) -> str:
    """The Globus file picker for this program's result folder, or "" without the Globus
    backend (the result check could not read a Globus collection then)."""
    if get_backend().name != "globus":
        return ""
    token = signing.TimestampSigner(salt=SALT).sign_object({"program": program_id, "user": request.user.pk})
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


@csrf_exempt
@require_POST
def picker_callback(request: HttpRequest, program_id: str) -> HttpResponse:
    """Globus's post-back: on to the Report done form, prefilled with the chosen folder."""
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
    path = request.POST.get("path", "")
    if request.POST.get("folder[0]"):
        # A folder chosen inside the one shown: the result files are in it.
        path = posixpath.join(path, request.POST["folder[0]"])
    query = urlencode({"result_collection": request.POST.get("endpoint_id", ""), "result_path": path})
    response = HttpResponseRedirect(f"{report_done}?{query}")
    response.status_code = 303  # the form is read with GET
    return response


def _refused(reason: str, report_done: str) -> HttpResponse:
    return HttpResponseForbidden(
        format_html('<p>{} Please choose again from <a href="{}">Report done</a>.</p>', reason, report_done)
    )
