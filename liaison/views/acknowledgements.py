"""Acknowledgements over HTTP: an addressee acknowledges (as the socket's ``ack`` frame does),
and auditors download every acknowledgement of an exercise with its time."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse

from liaison.services import acknowledgements
from liaison.views.base import api_endpoint, client_ip, page
from liaison.views.limits import limit_requests


@api_endpoint("POST")
def acknowledge(request: HttpRequest, room_id: int, seq: int) -> HttpResponse:
    """``POST /api/v1/rooms/<id>/messages/<seq>/ack`` → ``{"room", "seq", "ack"}``."""
    ack = acknowledgements.acknowledge(
        user=request.user, room_id=room_id, seq=seq, ip=client_ip(request)
    )
    return JsonResponse({"room": room_id, "seq": seq, "ack": ack})


@login_required
@page
@limit_requests("audit.export", html=True)
def export(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """The exercise's acknowledgements as CSV, for auditors (a 404 for anyone else)."""
    name, text = acknowledgements.export_acknowledgements(
        auditor=request.user, exercise_id=exercise_id, ip=client_ip(request)
    )
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
