"""The auditors' workspace under /audit/. Thin: parse, call ``audit.workspace``, render.

Everyone but an auditor gets a 404 (and the attempt is audited by the ``page`` decorator).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from liaison import access
from liaison.audit import workspace
from liaison.errors import Invalid
from liaison.services import retention
from liaison.views.base import client_ip, page
from liaison.views.limits import limit_requests


def _method_not_allowed(allowed: str) -> HttpResponse:
    response = HttpResponse(f"Use {allowed}.", status=405, content_type="text/plain")
    response["Allow"] = allowed
    return response


@login_required
@page
def index(request: HttpRequest) -> HttpResponse:
    rows = workspace.list_exercises(auditor=request.user, ip=client_ip(request))
    return render(request, "liaison/audit/index.html", {"rows": rows})


@login_required
@page
def trail(request: HttpRequest) -> HttpResponse:
    access.require_auditor(request.user)
    error = ""
    try:
        filters = workspace.parse_trail_filters(request.GET)
        result = workspace.audit_trail(
            auditor=request.user,
            filters=filters,
            before=request.GET.get("before"),
            after=request.GET.get("after"),
            ip=client_ip(request),
        )
    except Invalid as exc:
        error, result = exc.detail, None
    query = request.GET.copy()
    query.pop("before", None)
    query.pop("after", None)
    return render(
        request,
        "liaison/audit/trail.html",
        {"result": result, "error": error, "params": request.GET, "base_query": query.urlencode()},
        status=400 if error else 200,
    )


@login_required
@page
def exercise(request: HttpRequest, exercise_id: int) -> HttpResponse:
    overview = workspace.exercise_overview(
        auditor=request.user, exercise_id=exercise_id, ip=client_ip(request)
    )
    return render(
        request,
        "liaison/audit/exercise.html",
        {"overview": overview, "life": retention.life_of(overview.exercise)},
    )


@login_required
@page
def transcript(request: HttpRequest, room_id: int) -> HttpResponse:
    result = workspace.room_transcript(
        auditor=request.user,
        room_id=room_id,
        after=request.GET.get("after"),
        ip=client_ip(request),
    )
    return render(request, "liaison/audit/transcript.html", {"page": result})


@login_required
@page
@limit_requests("audit.search", html=True)
def search(request: HttpRequest, exercise_id: int) -> HttpResponse:
    access.require_auditor(request.user)
    query = request.GET.get("q", "")
    result, error = None, ""
    if query:
        try:
            result = workspace.search_messages(
                auditor=request.user,
                exercise_id=exercise_id,
                query=query,
                ip=client_ip(request),
            )
        except Invalid as exc:
            error = exc.detail
    exercise = (
        result.exercise
        if result
        else workspace.open_search(
            auditor=request.user, exercise_id=exercise_id, ip=client_ip(request)
        )
    )
    return render(
        request,
        "liaison/audit/search.html",
        {"exercise": exercise, "result": result, "query": query, "error": error},
        status=400 if error else 200,
    )


@login_required
@page
def verify(request: HttpRequest) -> HttpResponse:
    access.require_auditor(request.user)
    exercise_id = request.POST.get("exercise") or request.GET.get("exercise") or None
    report = None
    if request.method == "POST":
        report = workspace.verify_integrity(
            auditor=request.user, exercise_id=exercise_id, ip=client_ip(request)
        )
    elif request.method != "GET":
        return _method_not_allowed("GET, POST")
    else:
        workspace.record_page_view(auditor=request.user, page="verify", ip=client_ip(request))
    return render(
        request, "liaison/audit/verify.html", {"report": report, "exercise_id": exercise_id or ""}
    )


@login_required
@page
@limit_requests("audit.export", methods=["POST"], html=True)
def export(request: HttpRequest, exercise_id: int) -> HttpResponse:
    access.require_auditor(request.user)
    if request.method != "POST":
        return _method_not_allowed("POST")
    name, data = workspace.export_exercise_zip(
        auditor=request.user, exercise_id=exercise_id, ip=client_ip(request)
    )
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response
