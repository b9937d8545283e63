"""Admitting a room socket and keeping its grant true.

A socket learns once, at connect, who it belongs to and what it may do in its room (its
``SocketGrant``) and keeps that in memory: no frame re-reads the session or the membership.
Every change that ends or narrows a right is pushed to it instead (``liaison/events.py``), and
every room event carries the room's access epoch; a grant older than an event is re-checked
here, against the database, before the event is delivered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from liaison import access, audit, payloads
from liaison.errors import AccessDenied, LiaisonError
from liaison.models import Presence, User
from liaison.realtime import presence
from liaison.services import sessions

if TYPE_CHECKING:
    from django.contrib.sessions.backends.base import SessionBase

CLOSE_NOT_AUTHENTICATED = 4401
# Not a member, removed, or no such room: one answer, so a close code never tells whether a
# room exists.
CLOSE_FORBIDDEN = 4403
CLOSE_ROOM_CLOSED = 4409
CLOSE_RATE_LIMITED = 4429
CLOSE_SERVICE_RESTART = 1012

AUDITOR = "auditor"


@dataclass
class SocketGrant:
    """What one socket may do, as of the room's access ``epoch``."""

    user_id: int
    session_key: str | None
    room_id: int
    exercise_id: int
    role: str  # the membership's group role, or "auditor"
    can_post: bool
    epoch: int
    idle_deadline: dt.datetime  # the session lapses then unless there is activity
    absolute_deadline: dt.datetime  # the session lapses then whatever happens
    me: dict[str, Any] = field(default_factory=dict)
    # The oldest message this reader may see (history visibility; None: all of it), as a POSIX
    # time, compared with a room event's ``written``.
    visible_from: float | None = None

    @property
    def is_auditor(self) -> bool:
        return self.role == AUDITOR

    @property
    def session_deadline(self) -> dt.datetime:
        return min(self.idle_deadline, self.absolute_deadline)


@dataclass(frozen=True)
class Admission:
    close_code: int | None = None
    reason: str = ""
    grant: SocketGrant | None = None
    user: User | None = None
    online: list[int] = field(default_factory=list)
    # Set when the refusal is temporary (4429): seconds after which to try again.
    retry_after: int | None = None


def socket_cap_retry_seconds() -> int:
    """A socket of a stopped worker is forgotten this long after its last refresh."""
    return int(3 * presence.refresh_seconds() + 5)


def _at_socket_cap(user: User) -> bool:
    """Whether the person already holds the most open room sockets allowed, on every worker
    together (counted from the presence rows, which die with a stopped worker)."""
    cap = settings.LIAISON_WS_MAX_SOCKETS_PER_USER
    if cap <= 0:
        return False
    # One connect of this person at a time decides, so two cannot both take the last place.
    list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
    fresh = Presence.objects.filter(user=user, last_seen_at__gte=presence.stale_before())
    return fresh.count() >= cap


def _grant(
    user_id: int, room_id: int, session_key: str | None, loaded: SessionBase | None = None
) -> Admission:
    """The socket's grant as the database says now, or the code to close it with. The person
    is read with the session (fresh, with their agency)."""
    problem, row = sessions.socket_session(user_id=user_id, session_key=session_key, loaded=loaded)
    if problem is not None or row is None:
        return Admission(close_code=CLOSE_NOT_AUTHENTICATED, reason=problem or "")
    user = row.user
    room_access = access.access_room(user, room_id)
    try:
        access.require_can_post(room_access)
        can_post = True
    except LiaisonError:
        can_post = False
    room = room_access.room
    grant = SocketGrant(
        user_id=user.pk,
        session_key=session_key,
        room_id=room.pk,
        exercise_id=room.exercise_id,
        role=AUDITOR if room_access.is_auditor else room_access.membership.role,
        can_post=can_post,
        epoch=room.access_epoch,
        idle_deadline=row.last_seen_at + sessions.idle_limit(),
        absolute_deadline=row.created_at + sessions.absolute_limit(),
        me=payloads.person_payload(user),
        visible_from=boundary.timestamp()
        if (boundary := access.visible_from(room_access))
        else None,
    )
    return Admission(grant=grant, user=user)


def admit_socket(
    *,
    user: User,
    room_id: int,
    session_key: str | None,
    channel_name: str,
    ip: str | None,
    session: SessionBase | None = None,
) -> Admission:
    """Decide whether a socket may stay open in the room; if so, mark the person online.
    A refusal of a signed-in person is audited. ``session``: the one the handshake read."""
    if user is None or not user.is_authenticated:
        return Admission(close_code=CLOSE_NOT_AUTHENTICATED, reason="not authenticated")
    try:
        admission = _grant(user.pk, room_id, session_key, loaded=session)
    except AccessDenied as error:
        audit.record_denied(actor=user, error=error, ip=ip, via="ws", path=f"/ws/rooms/{room_id}/")
        return Admission(close_code=CLOSE_FORBIDDEN, reason="not a member or no such room")
    if admission.grant is None or admission.user is None:
        return admission
    grant, user = admission.grant, admission.user
    with transaction.atomic():
        if _at_socket_cap(user):
            return Admission(
                close_code=CLOSE_RATE_LIMITED,
                reason="too many open sockets",
                user=user,
                retry_after=socket_cap_retry_seconds(),
            )
        online = presence.join(
            user=user,
            room_id=grant.room_id,
            epoch=grant.epoch,
            channel_name=channel_name,
            session_key=session_key,
        )
    return Admission(grant=grant, user=user, online=online)


def recheck_socket(*, user: User, grant: SocketGrant) -> SocketGrant | int:
    """The grant again, from the database, after the room's epoch moved or a grant-change
    event: the refreshed grant, or the code to close the socket with."""
    try:
        admission = _grant(user.pk, grant.room_id, grant.session_key)
    except AccessDenied:
        return CLOSE_FORBIDDEN
    if admission.grant is None:
        return admission.close_code or CLOSE_NOT_AUTHENTICATED
    return admission.grant


def session_deadline(*, user_id: int, session_key: str | None) -> dt.datetime | int:
    """At a socket's in-memory deadline: the session's real deadline (activity elsewhere may
    have moved it), or the close code once it has lapsed."""
    problem, row = sessions.socket_session(user_id=user_id, session_key=session_key)
    if problem is not None or row is None:
        return CLOSE_NOT_AUTHENTICATED
    deadline = sessions.session_deadline(row)
    if deadline <= timezone.now():
        return CLOSE_NOT_AUTHENTICATED
    return deadline


def release_socket(*, channel_name: str) -> None:
    """The socket closed: the person is offline here (maybe still online elsewhere)."""
    presence.leave(channel_name=channel_name)
