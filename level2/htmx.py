"""Pages that htmx refreshes on their own URL: the whole page, or one of its named partials."""

from django.contrib import messages
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers

# The request headers that choose between the page and its part: the browser's cache must keep
# the two apart, or Back after a refresh shows the bare part.
VARY = ("HX-Request", "HX-History-Restore-Request")


def render_page(request, template: str, context: dict, *, part: str, status: int = 200):
    """``template``, or only its partial ``part`` when htmx asks (a refresh or a filter). htmx
    restoring a page after Back that its own history cache lacks asks for the whole page."""
    if request.htmx and not request.htmx.history_restore_request:
        template = f"{template}#{part}"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, VARY)
    return response


class HtmxMessagesMiddleware:
    """htmx answers carry the request's messages out of band into the page's message list
    (templates/messages.html), which lies outside every region that refreshes itself: the next
    poll cannot wipe them, they stay until dismissed or the page is left."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not getattr(request, "htmx", False) or request.htmx.history_restore_request:
            return response
        if response.streaming or not response.get("Content-Type", "").startswith("text/html"):
            return response
        if 300 <= response.status_code < 400:
            return response  # the page it leads to shows them
        storage = messages.get_messages(request)
        if storage.used:
            return response  # the answer shows them already
        pending = list(storage)
        if pending:
            response.write(render_to_string("messages.html", {"messages": pending, "oob": True}))
        return response
