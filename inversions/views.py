"""Pages of the work: an OP's page with its work panel, the actions, "Report done", the queue,
the programs table with the inversions' filters, and reprocessing campaigns."""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.module_loading import import_string
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import retarget

from inversions import actions, campaigns, roles, selectors, services
from inversions.chart_svg import pipeline_charts
from inversions.charts import charts_data
from inversions.forms import DoneReportForm, ProgramListForm
from inversions.globus_picker import CHOICE_PARAMETER, picker_url, take_choice
from inversions.models import Campaign, CampaignItem, Inversion
from inversions.paths import PathRefused, inside
from inversions.pipeline import datasets_to_preprocess
from level2.htmx import VARY, render_page
from ops import selectors as ops_selectors
from ops import views as ops_views
from ops.history import TransitionError
from ops.models import ObservingProgram
from ops.states import State

log = logging.getLogger(__name__)


def _program(program_id: str) -> ObservingProgram:
    try:
        return ops_selectors.programs_with_state().get(pk=program_id)
    except ObservingProgram.DoesNotExist:
        raise Http404("No such observing program.") from None


def _render_work(
    request,
    program: ObservingProgram,
    *,
    status: int = 200,
    form_errors=None,
    panel: selectors.WorkPanel = None,
):
    """The work panel; when it changed, with the page's state and history out of band."""
    panel = panel or selectors.work_panel(program=program, user=request.user)
    if form_errors:
        panel.forms.update(form_errors)
        return render(request, "inversions/program_detail.html#work-panel", {"work": panel}, status=status)
    detail = ops_selectors.program_detail(program_id=program.pk, now=timezone.now())
    html = render_to_string("inversions/program_detail.html#work-panel", {"work": panel}, request=request)
    html += render_to_string("ops/program_detail.html#page-updates", {"detail": detail, "oob": True}, request)
    html += render_to_string("inversions/program_detail.html#products", {"work": panel, "oob": True}, request)
    return HttpResponse(html, status=status)


@login_required
@require_GET
@vary_on_headers(*VARY)  # ?part=status answers htmx with the status alone: cache the two apart
def program_detail(request, program_id: str):
    """ops' program page with the work panel of this app."""
    if request.htmx and request.GET.get("part") == "status":
        # Polled while the worker moves the OP: the status alone, so that a half-filled form
        # stays; once the state changed, the whole panel, whose buttons changed with it.
        program = _program(program_id)
        panel = selectors.work_panel(program=program, user=request.user)
        if request.GET.get("seen") == panel.state:
            return render(request, "inversions/program_detail.html#work-status", {"work": panel})
        return retarget(_render_work(request, program, panel=panel), "#work-panel")
    try:
        detail = ops_selectors.program_detail(program_id=program_id, now=timezone.now())
    except ObservingProgram.DoesNotExist:
        raise Http404("No such observing program.") from None
    panel = selectors.work_panel(program=detail.program, user=request.user)
    return render(request, "inversions/program_detail.html", {"detail": detail, "work": panel})


def _run(action: actions.Action, *, program_id: str, user, data: dict):
    """The action's service, from the state the user saw (services with one source state check
    that one under the OP's lock; the others are given the state the user saw)."""
    expected_state = State(data["expected_state"])
    if expected_state not in action.sources:
        raise TransitionError(f"{action.label} is not possible on a program that is {expected_state}.")
    if action.slug in {"queue", "invert-again"}:
        return services.queue_program(
            program_id=program_id, user=user, note=data.get("note", ""), expected_state=expected_state
        )
    if action.slug == "start":
        return services.start_work(program_id=program_id, user=user)
    if action.slug == "put-back":
        return services.put_back(
            program_id=program_id,
            user=user,
            reason=data["reason"],
            expected_state=expected_state,
        )
    if action.slug == "move-to-top":
        return services.move_to_top(program_id=program_id, user=user, expected_state=expected_state)
    if action.slug == "retry":
        return services.retry(program_id=program_id, user=user)
    if action.slug == "publish":
        return services.publish(program_id=program_id, user=user)
    if action.slug == "regenerate":
        return services.regenerate(program_id=program_id, user=user)
    if action.slug == "archive":
        return services.archive(
            program_id=program_id, user=user, reason=data["reason"], expected_state=expected_state
        )
    if action.slug == "restore":
        return services.restore(program_id=program_id, user=user, reason=data.get("reason", ""))
    if action.slug == "note":
        return services.add_note(
            program_id=program_id, user=user, text=data["text"], expected_state=expected_state
        )
    raise Http404("No such action.")


@login_required
@require_POST
def program_action(request, program_id: str, action: str):
    """One button of the work panel or the board. Role and state are checked again by the service."""
    chosen = actions.ACTIONS_BY_SLUG.get(action)
    if chosen is None or chosen.page:
        raise Http404("No such action.")
    program = _program(program_id)
    if not chosen.may(request.user):
        raise PermissionDenied(f"{chosen.label} needs {chosen.needs}.")
    form = chosen.form(request.POST, prefix=chosen.slug)
    if not form.is_valid():
        if request.htmx and not _from_board(request):
            return _render_work(request, program, status=400, form_errors={chosen.slug: form})
        messages.error(request, "; ".join(f"{', '.join(errors)}" for errors in form.errors.values()))
        return _after_action(request, program_id)
    try:
        _run(chosen, program_id=program_id, user=request.user, data=form.cleaned_data)
    except TransitionError as error:
        # StaleStateError among them: who moved the OP first, and when.
        messages.error(request, str(error))
    else:
        messages.success(request, f"{chosen.label}: done.")
    return _after_action(request, program_id)


def _from_board(request) -> bool:
    return request.POST.get("return_to") == "board"


def _after_action(request, program_id: str):
    """An action's answer where its button was: the board (its sections and messages), else the
    OP's work panel; without JavaScript, a redirect to that page."""
    if _from_board(request):
        if request.htmx:
            return render(request, "inversions/board.html#board-sections", _board_context(request))
        return redirect("board")
    if request.htmx:
        return _render_work(request, _program(program_id))
    return redirect("program-detail", program_id)


def _default_dataset_ids(program_id: str) -> list[str]:
    return [dataset.id for dataset in datasets_to_preprocess(program_id=program_id)]


@login_required
@require_http_methods(["GET", "POST"])
def report_done(request, program_id: str):
    """The science team's "Report done" form: working → inverted."""
    program = _program(program_id)
    if not roles.is_inverter(request.user):
        raise PermissionDenied(f"Report done needs {actions.INVERTERS}.")
    dataset_ids = list(
        program.datasets.filter(vanished_at__isnull=True).order_by("id").values_list("id", flat=True)
    )
    if request.method == "POST":
        form = DoneReportForm(request.POST, dataset_ids=dataset_ids)
        if form.is_valid():
            try:
                services.report_done(program_id=program_id, user=request.user, report=form.report())
            except services.ReportRefused as error:
                form.add_error(error.field, str(error))
            except TransitionError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, "Reported done: the products are generated next.")
                return redirect("program-detail", program_id)
        status = 400
    else:
        attempt = services.open_inversion(program_id=program_id)
        initial = {
            "dataset_ids": _default_dataset_ids(program_id),
            "result_collection": "",
            "result_path": "",
            "inversion": attempt.id if attempt else "",
        }
        if request.GET.get(CHOICE_PARAMETER):
            choice = take_choice(request=request, program_id=program_id)
            if choice is None:
                messages.error(
                    request, "This choice from Globus is not yours, or was used already: choose again."
                )
            else:
                initial.update(choice)
        if settings.LEVEL2_REPORT_PREFILL and not initial["result_path"]:
            initial.update(import_string(settings.LEVEL2_REPORT_PREFILL)(program_id))
        form = DoneReportForm(initial=initial, dataset_ids=dataset_ids)
        status = 200
    context = {
        "program": program,
        "form": form,
        "working": program.state == State.WORKING,
        "result_files": settings.LEVEL2_RESULT_FILES,
        "picker_url": picker_url(request=request, program_id=program_id),
    }
    return render(request, "inversions/report_done.html", context, status=status)


@login_required
@require_GET
def work_queue(request):
    context = {
        "page": selectors.work_queue(page_number=request.GET.get("page")),
        "can_reorder": roles.is_inverter(request.user),
        "move": actions.ACTIONS_BY_SLUG["move-to-top"],
    }
    return render_page(request, "inversions/queue.html", context, part="queue-table")


@login_required
@require_GET
def quicklook(request, program_id: str, name: str):
    """A quicklook PNG of the OP's latest products, from scratch."""
    program = _program(program_id)
    inversion = selectors.latest_attempt(program_id=program.pk).first()
    if inversion is None:
        raise Http404("No products.")
    paths = {Path(path).name: path for path in inversion.products.get("quicklooks", [])}
    if name not in paths:
        raise Http404("No such quicklook.")
    try:
        path = inside(settings.LEVEL2_SCRATCH_DIR, paths[name])
    except PathRefused:
        raise Http404("The quicklook links outside scratch.") from None
    if not path.is_file():
        raise Http404("The quicklook is no longer on scratch.")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if not content_type.startswith("image/"):
        return HttpResponseBadRequest("Not an image.")
    return FileResponse(path.open("rb"), content_type=content_type)


@login_required
@require_GET
def board(request):
    """The lead's work board; its sections poll this view for themselves alone."""
    return render_page(request, "inversions/board.html", _board_context(request), part="board-sections")


def _board_context(request) -> dict:
    return {"board": selectors.board(now=timezone.now(), user=request.user)}


@login_required
@require_GET
def charts(request):
    """How the pipeline flows over time (issue 8); the charts poll this view for themselves alone."""
    data = charts_data(now=timezone.now())
    context = {"data": data, "charts": pipeline_charts(data.history) if data.history else None}
    return render_page(request, "inversions/charts.html", context, part="charts")


# --- the programs table, and reprocessing campaigns from it ------------------------------------


def _filtered_programs(form: ProgramListForm) -> dict:
    """The selectors' filter arguments from the form (its commit through this app's inversions)."""
    filters = form.filters()
    if form.commit_error():
        within = Inversion.objects.none()  # a commit that is none: nothing matches it
    elif filters["commit"]:
        within = selectors.programs_by_latest_commit(filters["commit"])
    else:
        within = None
    return {
        "instrument": filters["instrument"],
        "proposal": filters["proposal"],
        "search": filters["q"],
        "stale": form.stale_filter(),
        "within": within,
    }


@login_required
@require_GET
def program_list(request):
    """ops' programs table, with the filter by software commit and, for publishers, the campaign
    of the published programs it keeps."""
    form = ProgramListForm(request.GET, instruments=ops_selectors.instrument_names())
    filters = form.filters()
    chosen = _filtered_programs(form)
    counts = ops_selectors.state_counts(**chosen)
    counts[""] = sum(counts.values())  # the "all" tab, OPs without an event yet included
    page = ops_selectors.program_page(
        state=filters["state"],
        sort=filters["sort"],
        page_number=request.GET.get("page"),
        per_page=ops_views.PROGRAMS_PER_PAGE,
        count=counts.get(filters["state"], 0),
        **chosen,
    )
    filtered = bool(form.commit_error()) or any(
        filters[name] for name in ("state", "instrument", "proposal", "q", "commit", "stale")
    )
    published = counts.get(State.PUBLISHED, 0) if filters["state"] in ("", State.PUBLISHED) else 0
    context = {
        "form": form,
        "commit_error": form.commit_error(),
        "page": page,
        "state": filters["state"],
        "filtered": filtered,
        "headers": ops_views.column_headers(request, filters["sort"]),
        "now": timezone.now(),
        "state_tabs": [
            (value, label, counts.get(value, 0)) for value, label in [("", "all"), *State.choices]
        ],
        # A campaign is offered on a filtered table only: the whole archive is one click too far.
        "campaign": {
            "count": published,
            "filters": form.campaign_filters(),
            "too_many": published > campaigns.MAX_CAMPAIGN_PROGRAMS,
            "max": campaigns.MAX_CAMPAIGN_PROGRAMS,
        }
        if filtered and published and roles.is_publisher(request.user) and not form.commit_error()
        else None,
    }
    # A commit that is not one is the request's error; the table's part says it (messages.js
    # swaps a 400 fragment like any answer).
    status = 400 if context["commit_error"] else 200
    return render_page(request, "inversions/program_list.html", context, part="program-table", status=status)


@login_required
@require_POST
def campaign_new(request):
    """ "Queue all N to invert again": a draft campaign of the published programs that the
    posted filters keep, in the table's order; its page asks for the confirmation."""
    if not roles.is_publisher(request.user):
        raise PermissionDenied("Only publishers may run a reprocessing campaign.")
    form = ProgramListForm(request.POST, instruments=ops_selectors.instrument_names())
    if form.commit_error():
        messages.error(request, form.commit_error())
        return redirect("program-list")
    filters = form.filters()
    ids = ops_selectors.program_ids(state=State.PUBLISHED, sort=filters["sort"], **_filtered_programs(form))
    # One more than a campaign takes: enough to say that there are too many.
    ids = list(ids[: campaigns.MAX_CAMPAIGN_PROGRAMS + 1])
    try:
        campaign = campaigns.create_campaign(
            user=request.user,
            items=[(program_id, State.PUBLISHED) for program_id in ids],
            description=form.description(),
        )
    except campaigns.CampaignRefused as error:
        messages.error(request, str(error))
        return redirect(f"{reverse('program-list')}?{urlencode(form.campaign_filters())}")
    seen = request.POST.get("seen_count", "")
    if seen.isdigit() and int(seen) != campaign.requested:
        messages.warning(
            request, f"The table showed {seen} published programs; {campaign.requested} match the filter now."
        )
    return redirect("inversions:campaign", campaign.pk)


CAMPAIGNS_PER_PAGE = 50


@login_required
@require_GET
def campaign_list(request):
    """Every campaign, newest first, with its outcome: where a closed tab's campaign is found again."""
    campaigns_page = Paginator(
        Campaign.objects.select_related("created_by").order_by("-id"), CAMPAIGNS_PER_PAGE
    ).get_page(request.GET.get("page"))
    return render(request, "inversions/campaign_list.html", {"page": campaigns_page})


@login_required
@require_GET
def campaign_detail(request, campaign_id: int):
    """A campaign: its confirmation (a draft), its progress (running: the part polls), or its
    summary. Every tab and reload shows the same run."""
    outcome = request.GET.get("outcome", "")
    if outcome not in CampaignItem.Outcome.values:
        outcome = ""
    try:
        view = selectors.campaign_view(
            campaign_id=campaign_id, outcome=outcome, page_number=request.GET.get("page")
        )
    except Campaign.DoesNotExist:
        raise Http404("No such campaign.") from None
    context = {
        "view": view,
        "campaign": view.campaign,
        "may_confirm": view.campaign.status == Campaign.Status.DRAFT
        and view.campaign.created_by_id == request.user.pk
        and roles.is_publisher(request.user),
    }
    return render_page(request, "inversions/campaign.html", context, part="campaign-status")


@login_required
@require_POST
def campaign_confirm(request, campaign_id: int):
    """The confirmation: queue the campaign's OPs, here when they are few, else in the worker.
    Posted again (Back, a second tab), it queues nothing and shows the same run."""
    try:
        campaign = campaigns.start_campaign(campaign_id=campaign_id, user=request.user)
    except Campaign.DoesNotExist:
        raise Http404("No such campaign.") from None
    if campaign is None:
        messages.info(request, "This campaign was confirmed already: here is how it went.")
    elif campaign.status == Campaign.Status.DONE:
        messages.success(request, f"Queued {campaign.queued}, refused {campaign.refused}.")
    else:
        messages.success(request, f"Queueing {campaign.requested} programs: this page follows it.")
    return redirect("inversions:campaign", campaign_id)
