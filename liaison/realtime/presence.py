"""Who is online in an exercise, across server processes, at O(1) cost per socket.

A person is online in an exercise while any of their sockets is open in any of its rooms: the
people panel of every room of the exercise shows the same people online ("in this exercise").

Each open member socket has a ``Presence`` row tagged with its server process (``worker``).
A process refreshes all its rows with one statement every ``REFRESH_SECONDS``; rows of a process
that died stop being refreshed and are ignored, then removed. A join or a leave publishes a
delta (``joined``/``left``) to every room of the exercise only when it changes whether the person
is online in the exercise at all; the full list goes to the joining socket alone. Those
changes are told to the exercise's rooms by ``realtime/presence_deltas.py``, gathered over a
short window, as the state at the moment they are told (``announce``).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
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


@dataclass(frozen=True)
class Change:
    """A person came online in an exercise or went offline from it."""

    exercise_id: int
    user_id: int


@dataclass(frozen=True)
class Joined:
    online: list[int]  # who is online in the exercise now, for the joining socket
    change: Change | None  # set when this socket brought the person online


# Sockets join and leave by the thousand when a worker restarts: their statements are written
# once per process (identifiers from the models' metadata, values as parameters), not compiled
# by the ORM each time, which cost more CPU than PostgreSQL spent running them.
@functools.cache
def _sql(vendor: str) -> dict[str, str]:
    # ``vendor`` keys the cache: identifiers are quoted the database's way.
    quote = connection.ops.quote_name
    p, r, u = Presence._meta, Room._meta, User._meta

    def col(alias: str, meta: Any, name: str) -> str:
        return f"{alias}.{quote(meta.get_field(name).column)}"

    presence, room, user = quote(p.db_table), quote(r.db_table), quote(u.db_table)
    locks = connection.features.has_select_for_update
    columns = ["channel_name", "user", "room", "session_key", "worker", "connected_at"]
    columns.append("last_seen_at")
    fresh_in_exercise = (
        f"FROM {presence} p JOIN {room} r ON {col('r', r, 'id')} = {col('p', p, 'room')} "
        f"WHERE {col('r', r, 'exercise')} = %s AND {col('p', p, 'last_seen_at')} >= %s"
    )
    # Identifiers from the models' metadata only; the values are parameters.
    return {
        "lock_person": f"SELECT {col('u', u, 'id')} FROM {user} u "  # noqa: S608
        f"WHERE {col('u', u, 'id')} = %s{' FOR UPDATE' if locks else ''}",
        "sockets_of_person": f"SELECT COUNT(*) FROM {presence} p "  # noqa: S608
        f"WHERE {col('p', p, 'user')} = %s AND {col('p', p, 'last_seen_at')} >= %s",
        "insert": f"INSERT INTO {presence} "  # noqa: S608
        f"({', '.join(quote(p.get_field(name).column) for name in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})",
        "online_sockets": f"SELECT {col('p', p, 'user')}, COUNT(*) {fresh_in_exercise} "  # noqa: S608
        f"AND {col('p', p, 'user')} IN (SELECT {col('u', u, 'id')} FROM {user} u "
        f"WHERE {col('u', u, 'role')} <> %s) GROUP BY {col('p', p, 'user')}",
        "leaving": f"SELECT {col('p', p, 'user')}, {col('r', r, 'exercise')}, {col('u', u, 'role')} "  # noqa: S608
        f"FROM {presence} p JOIN {room} r ON {col('r', r, 'id')} = {col('p', p, 'room')} "
        f"JOIN {user} u ON {col('u', u, 'id')} = {col('p', p, 'user')} "
        f"WHERE {col('p', p, 'channel_name')} = %s",
        "delete": f"DELETE FROM {presence} WHERE {quote(p.get_field('channel_name').column)} = %s",  # noqa: S608
        "still_online": f"SELECT 1 {fresh_in_exercise} AND {col('p', p, 'user')} = %s",
    }


def _moment(value: dt.datetime) -> Any:
    """A time as the database takes it in a parameter (SQLite stores text)."""
    return Presence._meta.get_field("last_seen_at").get_db_prep_value(value, connection)


def online_sockets(exercise_id: int) -> dict[int, int]:
    """Members with an open socket in any room of the exercise, on any server process
    (auditors not shown), with how many sockets each: one read."""
    with connection.cursor() as cursor:
        cursor.execute(
            _sql(connection.vendor)["online_sockets"],
            [exercise_id, _moment(stale_before()), Role.AUDITOR.value],
        )
        return dict(cursor.fetchall())


def online_user_ids(exercise_id: int) -> list[int]:
    return sorted(online_sockets(exercise_id))


def join(
    *,
    user_id: int,
    room_id: int,
    exercise_id: int,
    channel_name: str,
    session_key: str | None,
    socket_cap: int = 0,
) -> Joined | None:
    """Mark the socket online, unless the person already holds ``socket_cap`` open sockets on
    every process together (``None``; 0: no cap). Who is online comes back for the joining
    socket only, with the change to tell the exercise if this socket brought the person online.
    """
    sql = _sql(connection.vendor)
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        if socket_cap > 0:
            # One connect of this person at a time decides, so two cannot both take the last
            # place; counted from the presence rows, which die with a stopped worker.
            cursor.execute(sql["lock_person"], [user_id])
            cursor.execute(sql["sockets_of_person"], [user_id, _moment(stale_before())])
            if cursor.fetchone()[0] >= socket_cap:
                return None
        # A consumer's channel name is new with every socket.
        moment = _moment(now)
        cursor.execute(
            sql["insert"],
            [channel_name, user_id, room_id, session_key or "", WORKER, moment, moment],
        )
        # Who is online and with how many sockets, in one read: the joining person's count
        # says whether this socket brought them online (read under the person's lock, so two
        # sockets opening at once cannot both see the other and neither tell).
        sockets = online_sockets(exercise_id)
    change = None
    if sockets.get(user_id) == 1:
        change = Change(exercise_id=exercise_id, user_id=user_id)
    return Joined(online=sorted(sockets), change=change)


def leave(*, channel_name: str) -> Change | None:
    """The socket closed: the person is offline unless another socket of theirs is open."""
    sql = _sql(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql["leaving"], [channel_name])
        row = cursor.fetchone()
        if row is None:
            return None
        user_id, exercise_id, role = row
        cursor.execute(sql["delete"], [channel_name])
        if role == Role.AUDITOR:
            return None
        cursor.execute(sql["still_online"], [exercise_id, _moment(stale_before()), user_id])
        if cursor.fetchone() is not None:
            return None
    return Change(exercise_id=exercise_id, user_id=user_id)


def announce(*, exercise_id: int, user_ids: list[int]) -> None:
    """Tell every room of the exercise (each at its own access epoch) which of these people are
    online now and which are not: the state when told, so a batch told late by one process never
    undoes a newer one told by another."""
    online = online_sockets(exercise_id)
    frame: dict[str, list[int]] = {}
    if joined := [user_id for user_id in user_ids if user_id in online]:
        frame["joined"] = joined
    if left := [user_id for user_id in user_ids if user_id not in online]:
        frame["left"] = left
    # About one person: that person's own sockets leave it out (they know they are online).
    sender = user_ids[0] if len(user_ids) == 1 else None
    rooms = Room.objects.filter(exercise_id=exercise_id).values_list("pk", "access_epoch")
    for room_id, epoch in rooms:
        events.publish(
            events.room_group(room_id),
            events.room_event(
                events.ROOM_PRESENCE, {"type": "presence", **frame}, epoch=epoch, sender_id=sender
            ),
        )


def refresh_worker() -> int:
    """Keep this process's rows fresh (one statement, whatever the number of sockets) and
    remove the rows of processes that died."""
    refreshed = Presence.objects.filter(worker=WORKER).update(last_seen_at=timezone.now())
    Presence.objects.filter(last_seen_at__lt=stale_before()).delete()
    return refreshed


def forget_worker() -> int:
    """A clean shutdown: this process's sockets are gone."""
    return Presence.objects.filter(worker=WORKER).delete()[0]
