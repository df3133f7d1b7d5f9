"""Pages of the work: an OP's page with its work panel, the actions, "Report done", the queue."""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import retarget

from inversions import actions, roles, selectors, services
from inversions.chart_svg import pipeline_charts
from inversions.charts import charts_data
from inversions.forms import DoneReportForm
from inversions.globus_picker import CHOICE_PARAMETER, picker_url, take_choice
from inversions.paths import PathRefused, inside
from inversions.pipeline import datasets_to_preprocess
from level2.htmx import VARY, render_page
from ops import selectors as ops_selectors
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
    if action.slug == "queue":
        return services.queue_program(program_id=program_id, user=user, note=data.get("note", ""))
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
        initial = {
            "dataset_ids": _default_dataset_ids(program_id),
            "result_collection": "",
            "result_path": "",
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
        "rows": selectors.work_queue(),
        "can_reorder": roles.is_inverter(request.user),
        "move": actions.ACTIONS_BY_SLUG["move-to-top"],
    }
    return render_page(request, "inversions/queue.html", context, part="queue-table")


@login_required
@require_GET
def quicklook(request, program_id: str, name: str):
    """A quicklook PNG of the OP's latest products, from scratch."""
    program = _program(program_id)
    inversion = program.inversions.order_by("ended_at", "-created_at").first()
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
