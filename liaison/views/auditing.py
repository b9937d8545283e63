"""The auditors' workspace under /audit/. Thin: parse, call ``audit.workspace``, render.

Everyone but an auditor gets a 404 (and the attempt is audited by the ``page`` decorator).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from liaison import access
from liaison.audit import workspace
from liaison.errors import Conflict, Invalid
from liaison.services import exports, retention
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
    """Ask for a signed export: a job prepares it; the exports page offers it when ready."""
    access.require_auditor(request.user)
    if request.method != "POST":
        return _method_not_allowed("POST")
    try:
        made = exports.request_export(
            auditor=request.user, exercise_id=exercise_id, ip=client_ip(request)
        )
    except Conflict as error:
        messages.error(request, error.detail)
        return redirect(reverse("audit-exports"))
    messages.success(
        request,
        _("The signed export of %(code)s is being prepared; it appears here when ready.")
        % {"code": made.exercise.code},
    )
    return redirect(reverse("audit-exports") + f"#export-{made.pk}")


@login_required
@page
def export_list(request: HttpRequest) -> HttpResponse:
    """The auditor's own exports, with their state and download links."""
    access.require_auditor(request.user)
    rows = exports.exports_of(request.user)
    workspace.record_page_view(auditor=request.user, page="exports", ip=client_ip(request))
    return render(
        request,
        "liaison/audit/exports.html",
        {"exports": rows, "pending": any(row.pending for row in rows)},
    )


@login_required
@page
def export_download(request: HttpRequest, export_id: int) -> HttpResponse:
    """The export's zip, decrypted as it streams (audited)."""
    download = exports.open_download(
        auditor=request.user, export_id=export_id, ip=client_ip(request)
    )
    response = StreamingHttpResponse(download.pieces, content_type="application/zip")
    response["Content-Length"] = str(download.export.size)
    response["Content-Disposition"] = f'attachment; filename="{download.export.file_name}"'
    response["Cache-Control"] = "no-store"
    return response
