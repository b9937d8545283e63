"""Who is online in an exercise, across server processes, at O(1) cost per socket.

A person is online in an exercise while any of their sockets is open in any of its rooms: the
people panel of every room of the exercise shows the same people online ("in this exercise").

Each open member socket has a ``Presence`` row tagged with its server process (``worker``).
A process refreshes all its rows with one statement every ``REFRESH_SECONDS``; rows of a process
that died stop being refreshed and are ignored, then removed. A join or a leave publishes a
delta (``joined``/``left``) to every room of the exercise only when it changes whether the person
is online in the exercise at all; the full list goes to the joining socket alone.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Subquery
from django.utils import timezone

from liaison import events
from liaison.models import Presence, Role, Room, User


def _worker_name() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


# One name per server process (its rows are refreshed together); a forked child takes its own.
WORKER = _worker_name()


def _rename_after_fork() -> None:
    global WORKER
    WORKER = _worker_name()


os.register_at_fork(after_in_child=_rename_after_fork)


def refresh_seconds() -> float:
    return float(settings.LIAISON_WS_PRESENCE_REFRESH_SECONDS)


def stale_before() -> dt.datetime:
    """Rows not refreshed since this moment belong to a process that died."""
    return timezone.now() - dt.timedelta(seconds=3 * refresh_seconds() + 5)


def _fresh_in_exercise(room_id: int):
    """Fresh rows of every room of ``room_id``'s exercise."""
    exercise = Room.objects.filter(pk=room_id).values("exercise_id")[:1]
    return Presence.objects.filter(
        room__exercise_id=Subquery(exercise), last_seen_at__gte=stale_before()
    )


def online_sockets(room_id: int) -> dict[int, int]:
    """Members with an open socket in any room of the room's exercise, on any server process
    (auditors not shown), with how many sockets each: one read."""
    online = _fresh_in_exercise(room_id).exclude(user__role=Role.AUDITOR)
    return dict(online.order_by().values_list("user_id").annotate(sockets=Count("id")))


def online_user_ids(room_id: int) -> list[int]:
    return sorted(online_sockets(room_id))


def _delta(room_id: int, epoch: int, user_id: int, **change: list[int]) -> None:
    """The change, to this room (at ``epoch``) and every other room of its exercise (each at its
    own access epoch)."""
    exercise = Room.objects.filter(pk=room_id).values("exercise_id")[:1]
    rooms = Room.objects.filter(exercise_id=Subquery(exercise)).values_list("pk", "access_epoch")
    for other, other_epoch in rooms:
        events.publish_on_commit(
            events.room_group(other),
            events.room_event(
                events.ROOM_PRESENCE,
                {"type": "presence", **change},
                epoch=epoch if other == room_id else other_epoch,
                sender_id=user_id,
            ),
        )


def join(
    *, user: User, room_id: int, epoch: int, channel_name: str, session_key: str | None
) -> list[int]:
    """Mark the socket online; returns who is online now (for the joining socket only)."""
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        # A consumer's channel name is new with every socket.
        Presence.objects.create(
            channel_name=channel_name,
            user=user,
            room_id=room_id,
            session_key=session_key or "",
            worker=WORKER,
            connected_at=now,
            last_seen_at=now,
        )
        # Who is online and with how many sockets, in one read: the joining person's count
        # says whether this socket brought them online.
        sockets = online_sockets(room_id)
        if sockets.get(user.pk) == 1:
            _delta(room_id, epoch, user.pk, joined=[user.pk])
    return sorted(sockets)


def leave(*, channel_name: str) -> None:
    """The socket closed: the person is offline unless another socket of theirs is open."""
    with transaction.atomic():
        row = (
            Presence.objects.filter(channel_name=channel_name)
            .select_related("user", "room")
            .first()
        )
        if row is None:
            return
        row.delete()
        if (
            row.user.role != Role.AUDITOR
            and not _fresh_in_exercise(row.room_id).filter(user_id=row.user_id).exists()
        ):
            _delta(row.room_id, row.room.access_epoch, row.user_id, left=[row.user_id])


def refresh_worker() -> int:
    """Keep this process's rows fresh (one statement, whatever the number of sockets) and
    remove the rows of processes that died."""
    refreshed = Presence.objects.filter(worker=WORKER).update(last_seen_at=timezone.now())
    Presence.objects.filter(last_seen_at__lt=stale_before()).delete()
    return refreshed


def forget_worker() -> int:
    """A clean shutdown: this process's sockets are gone."""
    return Presence.objects.filter(worker=WORKER).delete()[0]
