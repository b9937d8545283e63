"""The room WebSocket (docs/api/websocket.md). Thin: parse and check a frame, call one named
sync service through ``database_sync_to_async``, send the result.

Each socket answers its frames in order from one worker task, so group events keep flowing
while a frame waits for the database. Incoming frames and group events skip Channels'
per-message database hop (``aclose_old_connections``): group events touch no database and the
worker's calls clean up their own connections, and otherwise every delivery to every socket
would first wait its turn on the (possibly busy) database thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from liaison import access, audit, events, selectors
from liaison.errors import AccessDenied, Invalid, LiaisonError, PermissionDenied
from liaison.realtime import admission as presence
from liaison.realtime import frames
from liaison.services import messaging

logger = logging.getLogger(__name__)

RATE_WINDOW_SECONDS = 10.0
# Live events held for one socket while it answers a frame, beyond which further ones are
# dropped rather than kept without bound; the client heals the gap with ``sync``. Control
# events are never held or dropped.
MAX_BACKLOG = 500
# How often a socket reports the person's activity on the session (the session policy itself
# records at most one write a minute).
TOUCH_SECONDS = 30.0

# Group-event handlers that touch no database: dispatched without Channels' thread hop. The
# live ones may be held or dropped when the socket falls behind; the control ones never are.
LIVE_HANDLERS = frozenset(
    {
        "room_message_new",
        "room_message_updated",
        "room_typing",
        "room_read",
        "room_presence",
    }
)
CONTROL_HANDLERS = frozenset({"room_closed", "user_revoked", "user_session_ended"})


class FrameRate:
    """Frames per user in a sliding window, shared by the user's sockets in this process."""

    def __init__(self) -> None:
        self._seen: dict[int, deque[float]] = {}

    def allow(self, user_id: int, limit: int, window: float = RATE_WINDOW_SECONDS) -> bool:
        now = time.monotonic()
        seen = self._seen.setdefault(user_id, deque())
        while seen and now - seen[0] >= window:
            seen.popleft()
        if len(seen) >= limit:
            return False
        seen.append(now)
        return True

    def forget_idle(self, user_id: int, window: float = RATE_WINDOW_SECONDS) -> None:
        seen = self._seen.get(user_id)
        if seen is not None and (not seen or time.monotonic() - seen[-1] >= window):
            self._seen.pop(user_id, None)

    def reset(self) -> None:
        self._seen.clear()


frame_rate = FrameRate()


class RoomConsumer(AsyncWebsocketConsumer):
    """One socket in one room, for one signed-in user.

    Client frames are answered one at a time, in order, by a worker task, so the event loop
    keeps delivering group events meanwhile. Only what ordering needs is held back until a
    reply is out: the user's own new messages while a ``message.send`` is answered (the sender
    sees ``message.ack`` first), and every live event during a ``sync`` (``sync.done`` comes
    before live frames resume).
    """

    async def dispatch(self, message: dict[str, Any]) -> None:
        name = str(message.get("type", "")).replace(".", "_")
        if name in CONTROL_HANDLERS:
            await getattr(self, name)(message)
        elif name in LIVE_HANDLERS:
            if not self.live():
                return
            if self.holds(name, message):
                if len(self.held) < MAX_BACKLOG:
                    self.held.append(message)
                return
            await getattr(self, name)(message)
        elif name == "websocket_receive":
            # Only queues the frame for the worker (whose database calls clean up their own
            # connections): no hop to the database thread, which may be busy, for every frame.
            await self.websocket_receive(message)
        elif name.startswith("websocket_"):
            await super().dispatch(message)
        else:
            logger.warning("room socket ignored an unknown event type %r", name[:60])

    def holds(self, name: str, message: dict[str, Any]) -> bool:
        if self.holding == "all":
            return True
        if self.holding == "own" and name == "room_message_new":
            sender = (message.get("message") or {}).get("sender") or {}
            return sender.get("id") == self.user.pk
        return False

    # --- lifecycle ------------------------------------------------------------------------------

    async def connect(self) -> None:
        self.room_id: int = int(self.scope["url_route"]["kwargs"]["room_id"])
        self.user = self.scope.get("user")
        session = self.scope.get("session")
        self.session_key: str | None = getattr(session, "session_key", None) if session else None
        self.grant: presence.SocketGrant | None = None
        self.closing = False
        self.joined: list[str] = []
        self.watchdog: asyncio.Task[None] | None = None
        self.worker: asyncio.Task[None] | None = None
        self.frames: asyncio.Queue[tuple[str | None, bytes | None]] = asyncio.Queue()
        self.holding: str | None = None  # "own" during a send, "all" during a sync
        self.held: list[dict[str, Any]] = []
        self.touched_at = -TOUCH_SECONDS
        client = self.scope.get("client") or [None]
        self.ip: str | None = client[0]
        # Accept first so the browser sees our close code; a refused handshake would only
        # show it 1006.
        await self.accept()
        if self.user is None or not self.user.is_authenticated:
            await self.shut(presence.CLOSE_NOT_AUTHENTICATED)
            return
        for group in (events.room_group(self.room_id), events.user_group(self.user.pk)):
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        grant = await database_sync_to_async(presence.admit_socket)(
            user=self.user,
            room_id=self.room_id,
            session_key=self.session_key,
            channel_name=self.channel_name,
            ip=self.ip,
        )
        if grant.close_code is not None:
            await self.shut(grant.close_code)
            return
        self.grant = grant
        self.watchdog = asyncio.create_task(self.watch())
        self.worker = asyncio.create_task(self.work())

    async def disconnect(self, code: int) -> None:
        self.closing = True
        for task in (self.watchdog, self.worker):
            if task is not None:
                task.cancel()
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        if self.grant is not None:
            await database_sync_to_async(presence.release_socket)(channel_name=self.channel_name)
            frame_rate.forget_idle(self.user.pk)

    async def shut(self, code: int) -> None:
        """Close with ``code`` and refuse anything that still arrives."""
        if self.closing:
            return
        self.closing = True
        if self.watchdog is not None and self.watchdog is not asyncio.current_task():
            self.watchdog.cancel()
        await self.close(code=code)

    async def watch(self) -> None:
        """Re-check the session and the membership now and then; the control events do it at
        once, this catches what an at-most-once layer may have lost."""
        while not self.closing:
            await asyncio.sleep(settings.LIAISON_WS_SESSION_CHECK_SECONDS)
            try:
                code = await database_sync_to_async(presence.recheck_socket)(
                    user=self.user,
                    room_id=self.room_id,
                    session_key=self.session_key,
                    channel_name=self.channel_name,
                )
            except Exception:
                logger.exception("socket re-check failed for room %s", self.room_id)
                continue
            if code is not None:
                await self.shut(code)
                return

    # --- client frames --------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing or self.grant is None:
            return
        if not frame_rate.allow(self.user.pk, settings.LIAISON_WS_RATE_PER_10S):
            await self.send_error("rate_limited", "Too many frames; slow down.")
            await self.shut(presence.CLOSE_RATE_LIMITED)
            return
        # The rate limit bounds this queue: at most LIAISON_WS_RATE_PER_10S frames wait.
        self.frames.put_nowait((text_data, bytes_data))

    async def work(self) -> None:
        """Answer queued frames in order; after each, send the live events held meanwhile."""
        while not self.closing:
            text_data, bytes_data = await self.frames.get()
            try:
                await self.answer(text_data, bytes_data)
            except Exception:
                logger.exception("room socket frame worker failed in room %s", self.room_id)
            finally:
                self.holding = None
            held, self.held = self.held, []
            for message in held:
                try:
                    await getattr(self, message["type"].replace(".", "_"))(message)
                except Exception:
                    logger.exception("room socket could not forward a held event")

    async def answer(self, text_data: str | None, bytes_data: bytes | None) -> None:
        if self.closing:
            return
        if text_data is None:
            await self.send_error("invalid", "Frames must be JSON text, not binary.")
            return
        if len(text_data.encode("utf-8", "surrogatepass")) > settings.LIAISON_WS_MAX_FRAME_BYTES:
            await self.send_error(
                "too_large",
                f"A frame may not exceed {settings.LIAISON_WS_MAX_FRAME_BYTES} bytes.",
            )
            return
        client_id = None
        try:
            data = frames.decode_frame(text_data)
            client_id = frames.frame_client_id(data)
            frame = frames.check_frame(data)
        except Invalid as error:
            await self.send_error(error.code, error.detail, client_id)
            return
        handler = getattr(self, "on_" + frame.type.replace(".", "_"))
        self.holding = {"message.send": "own", "sync": "all"}.get(frame.type)
        try:
            await handler(frame.fields)
        except presence.SocketSessionEnded:
            await self.shut(presence.CLOSE_NOT_AUTHENTICATED)
        except AccessDenied as error:
            await self.record_denied(error)
            await self.shut(presence.CLOSE_FORBIDDEN)
        except PermissionDenied as error:
            await self.record_denied(error)
            await self.send_error(error.code, error.detail, client_id)
        except LiaisonError as error:
            await self.send_error(error.code, error.detail, client_id)
        except Exception:
            logger.exception("frame %s failed in room %s", frame.type, self.room_id)
            await self.send_error(
                "unavailable", "The server could not handle this frame; try again.", client_id
            )

    async def on_message_send(self, fields: dict[str, Any]) -> None:
        result = await self.call(
            messaging.send_message,
            sender=self.user,
            room_id=self.room_id,
            client_id=fields["client_id"],
            body=fields["body"],
            kind=fields.get("kind", "text"),
            reply_to=fields.get("reply_to"),
            attachment_ids=fields.get("attachments") or (),
            ip=self.ip,
        )
        await self.send_frame(
            {"type": "message.ack", "client_id": result.message.client_id, "seq": result.seq}
        )

    async def on_message_edit(self, fields: dict[str, Any]) -> None:
        await self.call(
            messaging.edit_message,
            user=self.user,
            room_id=self.room_id,
            seq=fields["seq"],
            body=fields["body"],
            ip=self.ip,
        )

    async def on_message_delete(self, fields: dict[str, Any]) -> None:
        await self.call(
            messaging.delete_message,
            user=self.user,
            room_id=self.room_id,
            seq=fields["seq"],
            ip=self.ip,
        )

    async def on_sync(self, fields: dict[str, Any]) -> None:
        after_seq = cursor = fields["after_seq"]
        delivered: int | None = None
        while not self.closing:
            page = await self.call(
                selectors.messages_after, user=self.user, room_id=self.room_id, after_seq=cursor
            )
            await self.send_frame({"type": "sync.batch", "messages": page.messages})
            if page.messages:
                cursor = delivered = page.messages[-1]["seq"]
            if not page.has_more:
                last_seq = delivered if delivered is not None else min(after_seq, page.last_seq)
                await self.send_frame({"type": "sync.done", "last_seq": last_seq})
                return

    async def on_history(self, fields: dict[str, Any]) -> None:
        page = await self.call(
            selectors.messages_before,
            user=self.user,
            room_id=self.room_id,
            before_seq=fields.get("before_seq"),
            limit=fields.get("limit"),
        )
        await self.send_frame({"type": "history.batch", "messages": page.messages})

    async def on_typing(self, fields: dict[str, Any]) -> None:
        await self.call(
            messaging.announce_typing,
            user=self.user,
            room_id=self.room_id,
            channel_name=self.channel_name,
        )

    async def on_read(self, fields: dict[str, Any]) -> None:
        await self.call(
            messaging.mark_read, user=self.user, room_id=self.room_id, seq=fields["seq"]
        )

    async def on_ping(self, fields: dict[str, Any]) -> None:
        await self.call(access.access_room, activity=False, user=self.user, room_id=self.room_id)
        await self.send_frame({"type": "pong"})

    async def call(self, action: Any, *, activity: bool = True, **kwargs: Any) -> Any:
        """One frame's service call, behind the session check. Activity is reported at most
        every ``TOUCH_SECONDS``."""
        now = time.monotonic()
        touch = activity and now - self.touched_at >= TOUCH_SECONDS
        if touch:
            self.touched_at = now
        return await database_sync_to_async(presence.socket_call)(
            user_id=self.user.pk,
            session_key=self.session_key,
            action=action,
            arguments=kwargs,
            activity=touch,
        )

    # --- group events (no database here) ---------------------------------------------------------

    def live(self) -> bool:
        return self.grant is not None and not self.closing

    async def room_message_new(self, event: dict[str, Any]) -> None:
        if self.live():
            await self.send_frame({"type": "message.new", "message": event["message"]})

    async def room_message_updated(self, event: dict[str, Any]) -> None:
        if self.live():
            await self.send_frame({"type": "message.updated", "message": event["message"]})

    async def room_typing(self, event: dict[str, Any]) -> None:
        if self.live() and event.get("channel") != self.channel_name:
            await self.send_frame({"type": "typing", "user": event["user"]})

    async def room_read(self, event: dict[str, Any]) -> None:
        if self.live():
            await self.send_frame({"type": "read", "user": event["user"], "seq": event["seq"]})

    async def room_presence(self, event: dict[str, Any]) -> None:
        if self.live():
            await self.send_frame({"type": "presence", "online": event["online"]})

    async def room_closed(self, event: dict[str, Any]) -> None:
        if event.get("room_id") in (None, self.room_id):
            await self.shut(presence.CLOSE_ROOM_CLOSED)

    async def user_revoked(self, event: dict[str, Any]) -> None:
        if self.room_id in (event.get("room_ids") or ()):
            await self.shut(presence.CLOSE_FORBIDDEN)

    async def user_session_ended(self, event: dict[str, Any]) -> None:
        session_key = event.get("session_key")
        if session_key is None or session_key == self.session_key:
            await self.shut(presence.CLOSE_NOT_AUTHENTICATED)

    # --- sending ---------------------------------------------------------------------------------

    async def send_frame(self, frame: dict[str, Any]) -> None:
        if not self.closing:
            await self.send(text_data=json.dumps(frame, ensure_ascii=False))

    async def send_error(self, code: str, detail: str, client_id: str | None = None) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
        if client_id is not None:
            frame["client_id"] = client_id
        await self.send_frame(frame)

    async def record_denied(self, error: LiaisonError) -> None:
        await database_sync_to_async(audit.record_denied)(
            actor=self.user, error=error, ip=self.ip, via="ws", path=f"/ws/rooms/{self.room_id}/"
        )
