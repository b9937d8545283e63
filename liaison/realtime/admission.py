"""Room sockets: admitting them, keeping them honest, and who is online across processes.

A socket is admitted once (session, then room access) and re-checked by its watchdog. Each
open member socket has a ``Presence`` row, so every server process agrees on who is online;
rows of a process that died go stale and are ignored, then removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone

from liaison import access, audit, events, payloads, selectors
from liaison.errors import AccessDenied, LiaisonError
from liaison.models import Presence, Room, User
from liaison.services.sessions import socket_session_problem, touch_session

T = TypeVar("T")

CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NO_ROOM = 4404
CLOSE_ROOM_CLOSED = 4409
CLOSE_RATE_LIMITED = 4429


@dataclass(frozen=True)
class SocketGrant:
    """The outcome of admitting a socket: a close code, or what the socket may do."""

    close_code: int | None = None
    reason: str = ""
    room_id: int = 0
    is_auditor: bool = False
    can_post: bool = False
    me: dict[str, Any] = field(default_factory=dict)


class SocketSessionEnded(LiaisonError):
    """Your session has ended; sign in again."""

    code = "not_authenticated"
    http_status = 401


def socket_call(
    *,
    user_id: int,
    session_key: str | None,
    action: Callable[..., T],
    arguments: dict[str, Any],
    activity: bool = True,
) -> T:
    """Run one frame's service call, ``action(**arguments)``, if the socket's session is
    still good.

    A frame the person caused counts as activity on the session (keep-alive pings do not), so
    chatting keeps the session from idling out.
    """
    problem = socket_session_problem(user_id=user_id, session_key=session_key)
    if problem is not None:
        raise SocketSessionEnded(problem)
    if activity:
        touch_session(session_key)
    return action(**arguments)


def _broadcast_presence(room_id: int) -> None:
    events.publish_on_commit(
        events.room_group(room_id),
        {"type": events.ROOM_PRESENCE, "online": selectors.online_user_ids(room_id)},
    )


def admit_socket(
    *,
    user: User,
    room_id: int,
    session_key: str | None,
    channel_name: str,
    ip: str | None = None,
) -> SocketGrant:
    """Decide whether a socket may stay open in the room; if so, mark the member online.

    Refusals of an authenticated user are audited: 4404 when the room does not exist, 4403
    when it exists but the user may not enter it.
    """
    if user is None or not user.is_authenticated:
        return SocketGrant(close_code=CLOSE_NOT_AUTHENTICATED, reason="not authenticated")
    problem = socket_session_problem(user_id=user.pk, session_key=session_key)
    if problem is not None:
        return SocketGrant(close_code=CLOSE_NOT_AUTHENTICATED, reason=problem)
    try:
        room_access = access.access_room(user, room_id)
    except AccessDenied as error:
        audit.record_denied(actor=user, error=error, ip=ip, via="ws", path=f"/ws/rooms/{room_id}/")
        exists = Room.objects.filter(pk=room_id).exists()
        return SocketGrant(
            close_code=CLOSE_FORBIDDEN if exists else CLOSE_NO_ROOM,
            reason="not a member" if exists else "no such room",
        )
    try:
        access.require_can_post(room_access)
        can_post = True
    except LiaisonError:
        can_post = False
    if not room_access.is_auditor:
        with transaction.atomic():
            Presence.objects.filter(
                room_id=room_id, last_seen_at__lt=selectors.presence_stale_before()
            ).delete()
            now = timezone.now()
            Presence.objects.update_or_create(
                channel_name=channel_name,
                defaults={
                    "user": user,
                    "room_id": room_id,
                    "session_key": session_key or "",
                    "connected_at": now,
                    "last_seen_at": now,
                },
            )
            _broadcast_presence(room_id)
    return SocketGrant(
        room_id=room_id,
        is_auditor=room_access.is_auditor,
        can_post=can_post,
        me=payloads.person_payload(user),
    )


def release_socket(*, channel_name: str) -> None:
    """The socket closed: the member is offline here (maybe still online elsewhere)."""
    with transaction.atomic():
        row = Presence.objects.filter(channel_name=channel_name).first()
        if row is None:
            return
        row.delete()
        _broadcast_presence(row.room_id)


def recheck_socket(
    *, user: User, room_id: int, session_key: str | None, channel_name: str
) -> int | None:
    """The watchdog's check: ``None`` while the socket may stay, else the close code.
    Also refreshes the socket's presence row so other processes keep counting it."""
    if socket_session_problem(user_id=user.pk, session_key=session_key) is not None:
        return CLOSE_NOT_AUTHENTICATED
    try:
        access.access_room(user, room_id)
    except AccessDenied:
        return CLOSE_FORBIDDEN
    Presence.objects.filter(channel_name=channel_name).update(last_seen_at=timezone.now())
    return None
