"""What needs the reader's attention, over HTTP: their counts per room (the attention socket
pushes the same), and their settings for one room (mute, notify on every message)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from liaison import schemas, selectors
from liaison.services import attention
from liaison.views.base import api_endpoint, parse_json


@api_endpoint("GET")
def counts(request: HttpRequest) -> HttpResponse:
    """``GET /api/v1/attention`` → the ``counts`` frame of the attention socket."""
    rooms = selectors.attention_counts(user=request.user)
    return JsonResponse(attention.counts_frame(rooms, full=True))


@api_endpoint("POST")
def room_preferences(request: HttpRequest, room_id: int) -> HttpResponse:
    """``POST /api/v1/rooms/<id>/preferences {"muted"?, "notify_all"?}`` → both values."""
    wanted = schemas.parse(schemas.RoomPreferences, parse_json(request))
    stored = attention.set_room_preferences(
        user=request.user, room_id=room_id, muted=wanted.muted, notify_all=wanted.notify_all
    )
    return JsonResponse({"room": room_id, **stored})
