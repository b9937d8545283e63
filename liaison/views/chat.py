"""The officers' room page: the HTML shell that static/liaison/chat.js brings to life.

Everything live (messages, presence, typing, read markers) travels over the room's WebSocket;
this page only says who the reader is, where the room is and whether they may post.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from liaison import access, selectors
from liaison.errors import LiaisonError
from liaison.models import Exercise, Membership, Role, Room, User
from liaison.views.base import page

HISTORY_PAGE_SIZE = 50


@dataclass(frozen=True)
class RoomGroup:
    """The rooms of one exercise, as the sidebar lists them."""

    exercise: Exercise
    rooms: list[Room]


def sidebar_rooms(user: User, current: Room) -> list[RoomGroup]:
    """The rooms the reader can open: every room of their current exercises (an auditor, who
    reads every exercise, sees the rooms of the one in hand)."""
    if user.role == Role.AUDITOR:
        rooms = Room.objects.filter(exercise_id=current.exercise_id)
    else:
        rooms = selectors.readable_rooms(user)
    groups: dict[int, RoomGroup] = {}
    for room in rooms.select_related("exercise").order_by("exercise__code", "name", "pk"):
        groups.setdefault(room.exercise_id, RoomGroup(exercise=room.exercise, rooms=[]))
        groups[room.exercise_id].rooms.append(room)
    return list(groups.values())


def exercise_people(exercise: Exercise) -> list[Membership]:
    """Current members of the exercise, for the people list that presence lights up."""
    return list(
        Membership.objects.filter(exercise=exercise, removed_at__isnull=True)
        .select_related("user", "user__agency")
        .order_by("user__display_name", "user_id")
    )


def posting_block(room_access: access.RoomAccess) -> str:
    """Why the reader may not post here, or '' when they may."""
    try:
        access.require_can_post(room_access)
    except LiaisonError as error:
        return error.detail
    return ""


@login_required
@page
def room_page(request: HttpRequest, room_id: int) -> HttpResponse:
    room_access = access.access_room(request.user, room_id)
    room = room_access.room
    reason = posting_block(room_access)
    context: dict[str, Any] = {
        "room": room,
        "exercise": room.exercise,
        "membership": room_access.membership,
        "room_groups": sidebar_rooms(request.user, room),
        "people": exercise_people(room.exercise),
        "can_post": not reason,
        "post_block_reason": reason,
        "time_zone": request.user.time_zone or "UTC",
        "history_page_size": HISTORY_PAGE_SIZE,
        "max_chars": settings.LIAISON_MESSAGE_MAX_CHARS,
        "max_upload_bytes": settings.LIAISON_ATTACHMENT_MAX_BYTES,
    }
    return render(request, "liaison/room.html", context)
