"""Reading a room's messages: history pages and what a reconnecting client missed.

Every entry point (the room WebSocket's ``history`` and ``sync``, ``GET
/api/v1/rooms/<id>/messages``) reads through here, so an auditor's read always leaves its
``audit.viewed`` row: auditors read everything, and every one of their reads is on the record.
Members' reads are not audited (their access is the membership itself, which is).
"""

from __future__ import annotations

from liaison import access, audit, selectors
from liaison.models import User
from liaison.selectors import MessagePage


def _record_auditor_read(
    *, user: User, room_id: int, page: MessagePage, kind: str, via: str, ip: str | None, **cursor
) -> None:
    """Called after the read: the room was already found readable, so this cannot deny."""
    if not access.is_auditor(user):
        return
    room = access.access_room(user, room_id).room
    audit.record(
        actor=user,
        action="audit.viewed",
        target=room,
        exercise=room.exercise,
        ip=ip,
        page=kind,
        via=via,
        messages=len(page.messages),
        first_seq=page.messages[0]["seq"] if page.messages else None,
        last_seq=page.messages[-1]["seq"] if page.messages else None,
        **cursor,
    )


def read_history(
    *,
    user: User,
    room_id: int,
    before_seq: int | None = None,
    limit: int | None = None,
    via: str,
    ip: str | None = None,
) -> MessagePage:
    """The newest ``limit`` messages below ``before_seq``; an auditor's read is audited."""
    page = selectors.messages_before(user=user, room_id=room_id, before_seq=before_seq, limit=limit)
    _record_auditor_read(
        user=user, room_id=room_id, page=page, kind="history", via=via, ip=ip, before=before_seq
    )
    return page


def read_since(
    *,
    user: User,
    room_id: int,
    after_seq: int,
    limit: int | None = None,
    via: str,
    ip: str | None = None,
) -> MessagePage:
    """Messages after ``after_seq`` (a sync page); an auditor's read is audited."""
    page = selectors.messages_after(user=user, room_id=room_id, after_seq=after_seq, limit=limit)
    _record_auditor_read(
        user=user, room_id=room_id, page=page, kind="sync", via=via, ip=ip, after=after_seq
    )
    return page
