"""The answer to a WebSocket path with no room behind it (``/ws/rooms/-1/``, a room id too large
for the database, a path that is not a room at all).

Without it, the router raised "No route found" and the server answered the handshake with HTTP
500 and a traceback. Now it is the same answer as a room the person may not open: accepted,
then closed with 4403 (4401 first when nobody is signed in), and, for a signed-in person, a
denied access in the audit log naming the path as sent (truncated).
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from liaison import audit
from liaison.errors import AccessDenied
from liaison.realtime import admission, db

# How much of a refused path the audit row keeps.
PATH_CHARS = 200


def requested_path(scope: dict[str, Any]) -> str:
    """The path as the client sent it (percent-escapes kept), truncated."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else str(scope.get("path") or "")
    return path[:PATH_CHARS]


class RefusedSocket(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        # Accept first so the client sees the close code, as the room socket does.
        await self.accept()
        user = await db.call(admission.socket_person, session_key=self.scope.get("session_key"))
        if isinstance(user, int):
            await self.close(code=user)
            return
        client = self.scope.get("client") or [None]
        await db.call(
            audit.record_denied,
            actor=user,
            error=AccessDenied(),
            ip=client[0],
            via="ws",
            path=requested_path(self.scope),
        )
        await self.close(code=admission.CLOSE_FORBIDDEN)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return None  # closed on connect; nothing is answered
