from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ops import selectors
from ops.states import State

PROGRAMS_PER_PAGE = 50


@login_required
@require_GET
def program_list(request):
    state = request.GET.get("state", "")
    if state not in State.values:
        state = ""
    search = request.GET.get("q", "").strip()[:128]
    page = Paginator(selectors.program_list(state=state, search=search), PROGRAMS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    counts = selectors.state_counts()
    counts[""] = sum(counts.values())
    context = {
        "page": page,
        "state": state,
        "search": search,
        "states": State.choices,
        "state_tabs": [
            (value, label, counts.get(value, 0)) for value, label in [("", "all"), *State.choices]
        ],
    }
    template = "ops/program_list.html#program-table" if request.htmx else "ops/program_list.html"
    return render(request, template, context)
