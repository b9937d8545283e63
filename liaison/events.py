"""Real-time event payloads and group names, and publishing them once the transaction commits.

Group events carry only what every member of the group may see. Their ``type`` is always one of
the server-side constants below, never taken from a client.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# Group event types (handled by RoomConsumer methods of the same name with '.' -> '_').
ROOM_MESSAGE_NEW = "room.message.new"
ROOM_MESSAGE_UPDATED = "room.message.updated"
ROOM_TYPING = "room.typing"
ROOM_READ = "room.read"
ROOM_PRESENCE = "room.presence"
ROOM_CLOSED = "room.closed"
USER_REVOKED = "user.revoked"
USER_SESSION_ENDED = "user.session.ended"


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def publish(group: str, event: dict[str, Any]) -> None:
    """Send now. The layer is at-most-once: a lost event is healed by the client's ``sync``."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:  # the database already holds the truth; delivery is best effort
        logger.exception("channel layer publish to %s failed", group)


def publish_on_commit(group: str, event: dict[str, Any]) -> None:
    """Send after the current transaction commits, so nobody hears of a write that rolled back."""
    transaction.on_commit(lambda: publish(group, event))


# --- control events (to ``user.<id>`` and ``room.<id>`` groups) ---------------------------------
# Consumers close the affected sockets with the given WebSocket close code.


def user_revoked(*, exercise_id: int, room_ids: list[int]) -> dict[str, Any]:
    """The user lost access to these rooms (removed, or role changed to none): close with 4403."""
    return {"type": USER_REVOKED, "exercise_id": exercise_id, "room_ids": room_ids, "code": 4403}


def room_closed(*, room_id: int, status: str) -> dict[str, Any]:
    """The room's exercise left the active state: close sockets with 4409."""
    return {"type": ROOM_CLOSED, "room_id": room_id, "status": status, "code": 4409}


def session_ended(*, session_key: str | None) -> dict[str, Any]:
    """A session ended (logout, expiry, revocation); ``None`` means every session of the user."""
    return {"type": USER_SESSION_ENDED, "session_key": session_key, "code": 4401}
