"""The officers' room page: the HTML shell that static/liaison/chat/main.js brings to life.

Everything live (messages, presence, typing, read markers) travels over the room's WebSocket;
this page only says who the reader is, where the room is, whether they may post, how far they
had read, and what time it is for each agency of the exercise.

An administrator is no member of any room: instead of the 404 everyone else gets for a room
they may not read, they are told why and sent to the exercise's provisioning page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from liaison import access, clocks, selectors
from liaison.errors import AccessDenied, LiaisonError
from liaison.models import Exercise, Membership, Role, Room, User, UserSession
from liaison.views.base import page, record_if_denied
from liaison.views.home import take_welcome

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
    """Current members of the exercise, for the people list that presence lights up, each with
    ``last_seen``: the last activity of any of their sessions (for "last seen" when offline)."""
    last_seen = (
        UserSession.objects.filter(user_id=OuterRef("user_id"))
        .order_by("-last_seen_at")
        .values("last_seen_at")[:1]
    )
    return list(
        Membership.objects.filter(exercise=exercise, removed_at__isnull=True)
        .select_related("user", "user__agency")
        .annotate(last_seen=Subquery(last_seen))
        .order_by("user__display_name", "user_id")
    )


def posting_block(room_access: access.RoomAccess) -> str:
    """Why the reader may not post here, or '' when they may."""
    try:
        access.require_can_post(room_access)
    except LiaisonError as error:
        return error.detail
    return ""


def returning_reader_mark(user: User, room_access: access.RoomAccess) -> int:
    """Where the "New messages" line goes: after the reader's read marker. A first visit, and
    an auditor (who keeps no marker), have no line: everything is as read."""
    room = room_access.room
    if room_access.membership is None:
        return room.last_seq
    marker = selectors.last_read_seq(user=user, room=room)
    return room.last_seq if marker is None else marker


def not_a_member_page(request: HttpRequest, room: Room, error: AccessDenied) -> HttpResponse:
    """An administrator opened a room: why they cannot read it, and where they can act."""
    record_if_denied(request, error, via="web")
    return render(
        request,
        "liaison/room_not_member.html",
        {"room": room, "exercise": room.exercise},
        status=403,
    )


@login_required
@page
def room_page(request: HttpRequest, room_id: int) -> HttpResponse:
    try:
        room_access = access.access_room(request.user, room_id)
    except AccessDenied as error:
        refused = access.room_refused_to_admin(request.user, room_id)
        if refused is None:
            raise
        return not_a_member_page(request, refused, error)
    room = room_access.room
    reason = posting_block(room_access)
    membership = room_access.membership
    context: dict[str, Any] = {
        "room": room,
        "exercise": room.exercise,
        "membership": membership,
        "room_groups": sidebar_rooms(request.user, room),
        "people": exercise_people(room.exercise),
        "can_post": not reason,
        "post_block_reason": reason,
        "time_zone": request.user.time_zone or "UTC",
        "clocks": clocks.agency_clocks(room.exercise.agencies.all()),
        "office_hours": {"opens": clocks.OFFICE_OPENS, "closes": clocks.OFFICE_CLOSES},
        "last_read_seq": returning_reader_mark(request.user, room_access),
        "welcome": membership is not None and take_welcome(request, room),
        "history_page_size": HISTORY_PAGE_SIZE,
        "max_chars": settings.LIAISON_MESSAGE_MAX_CHARS,
        "max_upload_bytes": settings.LIAISON_ATTACHMENT_MAX_BYTES,
    }
    return render(request, "liaison/room.html", context)
