"""Real-time event payloads and group names, and publishing them once the transaction commits.

Group events carry only what every member of the group may see. Their ``type`` is always one of
the server-side constants below, never taken from a client.

Room events carry the client frame already serialised (``frame``, JSON text), so a message is
encoded once and every socket forwards the same text, and the room's ``epoch`` at the time of
the write: a socket whose grant is older re-checks its right before passing the event on, so a
person removed from a room never receives what was written there after the removal committed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from liaison import metrics

logger = logging.getLogger(__name__)

# Group event types (handled by RoomConsumer methods of the same name with '.' -> '_').
ROOM_MESSAGE_NEW = "room.message.new"
ROOM_MESSAGE_UPDATED = "room.message.updated"
ROOM_TYPING = "room.typing"
ROOM_READ = "room.read"
ROOM_PRESENCE = "room.presence"
ROOM_CLOSED = "room.closed"
USER_REVOKED = "user.revoked"
USER_GRANT_CHANGED = "user.grant.changed"
USER_SESSION_ENDED = "user.session.ended"
# Room events a room socket passes on (the ones above that close or narrow it are not among them).
ROOM_ACK_UPDATED = "room.ack.updated"
ROOM_REACTION_UPDATED = "room.reaction.updated"
LIVE_ROOM_EVENTS = (
    ROOM_MESSAGE_NEW,
    ROOM_MESSAGE_UPDATED,
    ROOM_TYPING,
    ROOM_READ,
    ROOM_PRESENCE,
    ROOM_ACK_UPDATED,
    ROOM_REACTION_UPDATED,
)
# What asks for an officer's attention, for the attention socket (``/ws/attention/``): activity
# in an exercise's rooms (to ``exercise.<id>``), and to one person (``user.<id>``) a notice
# (mentioned, asked to acknowledge, replied to) or their exact counts for some rooms. A room
# socket, which also hears ``user.<id>``, leaves these alone.
ATTENTION_ACTIVITY = "attention.activity"
ATTENTION_NOTICE = "attention.notice"
ATTENTION_COUNTS = "attention.counts"
ATTENTION_EVENTS = (ATTENTION_ACTIVITY, ATTENTION_NOTICE, ATTENTION_COUNTS)
# Their handler names, which a room socket hearing them on ``user.<id>`` passes over.
ATTENTION_HANDLERS = frozenset(name.replace(".", "_") for name in ATTENTION_EVENTS)

Pending = list[tuple[str, dict[str, Any]]]

_deferred = threading.local()


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def exercise_group(exercise_id: int) -> str:
    """Attention sockets of the exercise's current members: activity in its rooms."""
    return f"exercise.{exercise_id}"


def attention_event(event_type: str, frame: dict[str, Any], *, epoch: int = 0) -> dict[str, Any]:
    """An attention event: its frame encoded once; ``epoch`` is the room's access epoch for
    activity, so an attention socket re-checks a membership that may have ended."""
    return {"type": event_type, "frame": encode(frame), "epoch": epoch}


def encode(frame: dict[str, Any]) -> str:
    """The one JSON encoding of an outgoing frame."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def room_event(
    event_type: str,
    frame: dict[str, Any],
    *,
    epoch: int,
    sender_id: int | None = None,
    written: dt.datetime | None = None,
) -> dict[str, Any]:
    """A room event: the client ``frame`` encoded once, stamped with the room's access epoch.

    ``written``: when the message the event shows was first written (an edit or deletion of an
    older message), so a socket whose history starts later (``SocketGrant.visible_from``)
    leaves it out."""
    event = {
        "type": event_type,
        "frame": encode(frame),
        "epoch": epoch,
        "sender": sender_id,
        "at": time.time(),  # when it was written, for the fan-out latency metric
    }
    if written is not None:
        event["written"] = written.timestamp()
    return event


def typing_event(
    *, person: dict[str, Any], epoch: int, user_id: int, channel: str
) -> dict[str, Any]:
    """Someone is typing; ``channel`` is their socket, which does not hear its own typing."""
    event = room_event(
        ROOM_TYPING, {"type": "typing", "user": person}, epoch=epoch, sender_id=user_id
    )
    return event | {"channel": channel}


def frame_of(event: dict[str, Any]) -> dict[str, Any]:
    """The client frame a room event carries (tests and tools read it back)."""
    return json.loads(event["frame"])


@contextmanager
def deferred_publishing() -> Iterator[Pending]:
    """Collect this thread's publishes instead of sending them.

    The real-time database seam runs services on worker threads: a publish there must not
    block the thread on the event loop (which may be busy, or stopping at shutdown). The
    async caller sends what was collected on its own loop, after it has answered its client.
    """
    previous = getattr(_deferred, "sink", None)
    sink: Pending = []
    _deferred.sink = sink
    try:
        yield sink
    finally:
        _deferred.sink = previous


def publish(group: str, event: dict[str, Any]) -> None:
    """Send now. The layer is at-most-once: a lost event is healed by the client's ``sync``."""
    sink = getattr(_deferred, "sink", None)
    if sink is not None:
        sink.append((group, event))
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:  # the database already holds the truth; delivery is best effort
        metrics.count_channel_layer_error("publish")
        logger.exception("channel layer publish to %s failed", group)


async def send_pending(pending: Pending) -> None:
    """Send collected events in order, from the event loop."""
    if not pending:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    for group, event in pending:
        try:
            await layer.group_send(group, event)
        except Exception:
            metrics.count_channel_layer_error("publish")
            logger.exception("channel layer publish to %s failed", group)


def publish_on_commit(group: str, event: dict[str, Any]) -> None:
    """Send after the current transaction commits, so nobody hears of a write that rolled back."""
    transaction.on_commit(lambda: publish(group, event))


# --- control events (to ``user.<id>`` and ``room.<id>`` groups) ---------------------------------
# Consumers close or narrow the affected sockets.


def user_revoked(*, exercise_id: int, room_ids: list[int]) -> dict[str, Any]:
    """The user lost access to these rooms (removed, or role changed to none): close with 4403."""
    return {"type": USER_REVOKED, "exercise_id": exercise_id, "room_ids": room_ids, "code": 4403}


def grant_changed(*, exercise_id: int | None, room_ids: list[int] | None) -> dict[str, Any]:
    """The user's right in these rooms (``None``: everywhere) changed, e.g. now an observer or
    the account changed: sockets read their grant again."""
    return {"type": USER_GRANT_CHANGED, "exercise_id": exercise_id, "room_ids": room_ids}


def room_closed(*, room_id: int, status: str) -> dict[str, Any]:
    """The room's exercise left the active state: close sockets with 4409."""
    return {"type": ROOM_CLOSED, "room_id": room_id, "status": status, "code": 4409}


def session_ended(*, session_key: str | None) -> dict[str, Any]:
    """A session ended (logout, expiry, revocation, account change); ``None`` means every session
    of the user."""
    return {"type": USER_SESSION_ENDED, "session_key": session_key, "code": 4401}
