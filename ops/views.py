from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from ops import selectors, tasks
from ops.models import Scan
from ops.scan import ScanAlreadyRunning, request_scan
from ops.states import State

PROGRAMS_PER_PAGE = 50


@login_required
@require_GET
def program_list(request):
    state = request.GET.get("state", "")
    if state not in State.values:
        state = ""
    search = request.GET.get("q", "").strip()[:128]
    page = selectors.program_page(
        state=state, search=search, page_number=request.GET.get("page"), per_page=PROGRAMS_PER_PAGE
    )
    counts = selectors.state_counts()
    counts[""] = sum(counts.values())
    context = {
        "page": page,
        "state": state,
        "search": search,
        "now": timezone.now(),
        "states": State.choices,
        "state_tabs": [
            (value, label, counts.get(value, 0)) for value, label in [("", "all"), *State.choices]
        ],
    }
    template = "ops/program_list.html#program-table" if request.htmx else "ops/program_list.html"
    return render(request, template, context)


@login_required
@require_GET
def proposal_list(request):
    # Filled in by the proposals work (issue 8).
    return render(request, "ops/proposal_list.html", {})


@login_required
@require_GET
def proposal_detail(request, proposal_id: str):
    return render(request, "ops/proposal_detail.html", {"proposal_id": proposal_id})


SCANS_PER_PAGE = 50
SCAN_ERRORS_PER_PAGE = 100


@login_required
@require_GET
def scan_list(request):
    page = Paginator(selectors.scan_list(), SCANS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "any_running": any(scan.status == Scan.Status.RUNNING for scan in page.object_list),
    }
    template = "ops/scan_list.html#scan-table" if request.htmx else "ops/scan_list.html"
    return render(request, template, context)


@login_required
@require_POST
def scan_start(request):
    if not request.user.is_staff:
        raise PermissionDenied("Only staff may start a scan.")
    try:
        scan = request_scan(user=request.user)
    except ScanAlreadyRunning as error:
        messages.warning(request, str(error))
    else:
        transaction.on_commit(lambda: tasks.scan_metadata_store.delay(scan.pk))
        messages.success(request, f"Scan {scan.pk} started.")
    return redirect("ops:scan-list")


@login_required
@require_GET
def scan_detail(request, scan_id: int):
    try:
        scan = selectors.scan_detail(scan_id=scan_id)
    except Scan.DoesNotExist:
        raise Http404("No such scan.") from None
    if request.htmx:
        return render(request, "ops/scan_detail.html#scan-summary", {"scan": scan})
    errors = Paginator(selectors.scan_errors(scan=scan), SCAN_ERRORS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "ops/scan_detail.html", {"scan": scan, "page": errors})
