from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from level2.htmx import render_page
from ops import selectors, tasks
from ops.forms import ProgramFilterForm
from ops.models import Proposal, Scan
from ops.scan import ScanAlreadyRunning, request_scan

PROGRAMS_PER_PAGE = 50


# The programs table's sortable columns: the order a header link asks for first, then the other
# direction, each with its aria-sort (longest in its state = earliest "since" = ascending).
SORTABLE_COLUMNS = {
    "since": (("state_age", "ascending"), ("-state_age", "descending")),
    "datasets": (("datasets", "descending"), ("-datasets", "ascending")),
    "score": (("score", "descending"),),
}


def column_headers(request, sort: str) -> dict[str, dict[str, str]]:
    """Per sortable column, the link that sorts by it (a second click reverses the order) with
    the other parameters kept, and its aria-sort when the table is sorted by it."""
    headers = {}
    for column, orders in SORTABLE_COLUMNS.items():
        keys = [key for key, _ in orders]
        query = request.GET.copy()
        query["sort"] = keys[(keys.index(sort) + 1) % len(keys)] if sort in keys else keys[0]
        query.pop("page", None)
        headers[column] = {"href": f"?{query.urlencode()}", "aria_sort": dict(orders).get(sort, "")}
    return headers


PROPOSALS_PER_PAGE = 50


@login_required
@require_GET
def proposal_list(request):
    page = selectors.proposal_page(page_number=request.GET.get("page"), per_page=PROPOSALS_PER_PAGE)
    return render_page(request, "ops/proposal_list.html", {"page": page}, part="proposal-table")


@login_required
@require_GET
def proposal_detail(request, proposal_id: str):
    try:
        summary = selectors.proposal_summary(proposal_id=proposal_id)
    except Proposal.DoesNotExist:
        raise Http404("No such proposal.") from None
    # The programs table's own reading of ?sort= (an unknown order is the default one).
    sort = ProgramFilterForm(request.GET, instruments=()).filters()["sort"]
    page = selectors.program_page(
        proposal=proposal_id,
        sort=sort,
        page_number=request.GET.get("page"),
        per_page=PROGRAMS_PER_PAGE,
        count=summary.program_count,
    )
    context = {
        "summary": summary,
        "page": page,
        "headers": column_headers(request, sort),
        "now": timezone.now(),
    }
    return render_page(request, "ops/proposal_detail.html", context, part="refresh")


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
    return render_page(request, "ops/scan_list.html", context, part="scan-table")


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
    errors = Paginator(selectors.scan_errors(scan=scan), SCAN_ERRORS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render_page(request, "ops/scan_detail.html", {"scan": scan, "page": errors}, part="scan-summary")
