"""Seizure reports over HTTP: posting one into a room (the API, and a form page for the chat)
and the exercise-wide CSV export (docs/api/exchange.md)."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from liaison import access, payloads, schemas
from liaison.errors import Invalid, PermissionDenied, RoomClosed
from liaison.exchange import reports as seizure
from liaison.services import reports
from liaison.views.base import api_endpoint, client_ip, page, parse_json
from liaison.views.exchange import file_response
from liaison.views.limits import limit_requests


@api_endpoint("POST")
@limit_requests("message.post")
def room_reports(request: HttpRequest, room_id: int) -> HttpResponse:
    """Post a seizure report → 201 with the message (200 for a resent ``client_id``)."""
    draft = schemas.parse(schemas.SeizureReportDraft, parse_json(request))
    fields = draft.model_dump(exclude={"client_id"})
    result = reports.post_report(
        sender=request.user,
        room_id=room_id,
        client_id=draft.client_id,
        fields=fields,
    )
    payload = payloads.message_payload(result.message)
    return JsonResponse({"message": payload}, status=201 if result.created else 200)


@api_endpoint("GET")
def exercise_reports(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """Every seizure report of the exercise as CSV."""
    return file_response(
        reports.export_reports(user=request.user, exercise_id=exercise_id, ip=client_ip(request))
    )


@login_required
@require_http_methods(["GET", "POST"])
@page
def report_form(request: HttpRequest, room_id: int) -> HttpResponse:
    """The seizure report form of a room; a posted report appears in the room as a card."""
    room_access = access.access_room(request.user, room_id)
    access.require_can_post(room_access)
    context: dict[str, Any] = {
        "room": room_access.room,
        "units": seizure.UNITS,
        "values": {},
        "client_id": secrets.token_urlsafe(16),
    }
    if request.method == "POST":
        values = {name: request.POST.get(name, "") for name in seizure.EXPORT_COLUMNS}
        try:
            reports.post_report(
                sender=request.user,
                room_id=room_access.room.pk,
                client_id=request.POST.get("client_id", "")[:64] or secrets.token_urlsafe(16),
                fields={**values, "agencies": request.POST.get("agencies", "")},
            )
        except (Invalid, PermissionDenied, RoomClosed) as error:
            context.update(values=values, error=error.detail, field=error.field)
            return render(request, "liaison/exchange/report_form.html", context, status=400)
        return redirect("room", room_access.room.pk)
    return render(request, "liaison/exchange/report_form.html", context)


@login_required
@require_GET
@page
def exercise_reports_download(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """The same CSV for the data exchange page's link (a page, so refusals are pages too)."""
    return file_response(
        reports.export_reports(user=request.user, exercise_id=exercise_id, ip=client_ip(request))
    )
