"""Acknowledgements over HTTP: an addressee acknowledges (as the socket's ``ack`` frame does),
and auditors download every acknowledgement of an exercise with its time; and the lighter
reactions (seen, agreed, important)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse

from liaison import schemas
from liaison.services import acknowledgements, reactions
from liaison.views.base import api_endpoint, client_ip, page, parse_json
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


@api_endpoint("POST")
def react(request: HttpRequest, room_id: int, seq: int) -> HttpResponse:
    """``POST /api/v1/rooms/<id>/messages/<seq>/reactions {"emoji", "on"}`` → the message's
    reactions (``{emoji: [user ids]}``)."""
    wanted = schemas.parse(schemas.ReactionChange, parse_json(request))
    given = reactions.react(
        user=request.user, room_id=room_id, seq=seq, emoji=wanted.emoji, on=wanted.on
    )
    return JsonResponse({"room": room_id, "seq": seq, "reactions": given})
