"""Officers' search of their own rooms: ``GET /api/v1/search`` for scripts and ``/search/`` for
people (docs/api/search.md). Thin: parse the query string, call ``services.search``."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from liaison import selectors
from liaison.errors import Invalid
from liaison.models import User
from liaison.services import search
from liaison.views.base import api_endpoint, client_ip, page
from liaison.views.limits import limit_requests


def _optional_id(request: HttpRequest, name: str) -> int | None:
    raw = request.GET.get(name, "")
    if raw == "":
        return None
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise Invalid(_("'%(name)s' must be an integer.") % {"name": name}, field=name)
    return int(raw)


def filters_from(request: HttpRequest) -> search.SearchFilters:
    return search.SearchFilters(
        query=request.GET.get("q", ""),
        room_id=_optional_id(request, "room"),
        sender_id=_optional_id(request, "sender"),
        since=search.parse_date(request.GET.get("from"), "from"),
        until=search.parse_date(request.GET.get("to"), "to"),
        has_attachment=request.GET.get("has_attachment") in {"1", "true", "on"},
        before=search.parse_cursor(request.GET.get("before")),
    )


@api_endpoint("GET")
@limit_requests("message.search")
def api_search(request: HttpRequest) -> HttpResponse:
    """``GET /api/v1/search?q=TEXT[&room=ID][&before=CURSOR]`` → ``{"results", "next"}``."""
    result = search.search_messages(
        user=request.user, filters=filters_from(request), via="api", ip=client_ip(request)
    )
    return JsonResponse({"results": result.results, "next": result.next})


@login_required
@page
@limit_requests("message.search", html=True)
def search_page(request: HttpRequest) -> HttpResponse:
    """The search form and one page of results, each opening the room at that message."""
    rooms = list(
        selectors.readable_rooms(request.user)
        .select_related("exercise")
        .order_by("exercise__code", "name")
    )
    people = (
        User.objects.filter(
            memberships__exercise__rooms__in=rooms, memberships__removed_at__isnull=True
        )
        .select_related("agency")
        .distinct()
        .order_by("display_name", "pk")
    )
    context: dict = {
        "rooms": rooms,
        "people": people,
        "result": None,
        "error": "",
        "query": request.GET,
    }
    if request.GET.get("q"):
        try:
            context["result"] = search.search_messages(
                user=request.user, filters=filters_from(request), via="web", ip=client_ip(request)
            )
        except Invalid as error:
            context["error"] = error.detail
        more = request.GET.copy()
        if context["result"] is not None and context["result"].next:
            more["before"] = context["result"].next
            context["more"] = more.urlencode()
    return render(request, "liaison/search.html", context)
