"""The room WebSocket (docs/api/websocket.md). Thin: parse and check a frame, call one named
sync service through the database seam (``realtime/db.py``), send the result.

A socket is told, not polling. It learns its grant once at connect (``admission``) and keeps it
in memory; changes that end or narrow it arrive as control events on ``user.<id>`` or
``room.<id>``, and every room event carries the room's access epoch: an event newer than the
grant is parked until the grant is re-checked, so nothing written after a removal reaches the
removed person. No frame reads the session or the membership; the watchdog only wakes at the
session's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import deque
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from liaison import audit, events, metrics
from liaison.errors import AccessDenied, GrantOutdated, Invalid, LiaisonError, PermissionDenied
from liaison.languages import socket_language
from liaison.realtime import admission, db, frames, owners, presence_deltas, sockets
from liaison.realtime.admission import SocketGrant
from liaison.realtime.limits import frame_rate, retry_after_seconds
from liaison.services import acknowledgements, messaging, reading, sessions

logger = logging.getLogger(__name__)

# Live events parked or held for one socket beyond which further ones are dropped rather than
# kept without bound; the client heals the gap with ``sync``. Control events are never dropped.
MAX_BACKLOG = 500
# How often a socket reports the person's activity on the session.
TOUCH_SECONDS = sessions.TOUCH_INTERVAL.total_seconds()

LIVE_HANDLERS = frozenset(name.replace(".", "_") for name in events.LIVE_ROOM_EVENTS)
CONTROL_HANDLERS = frozenset(
    {"room_closed", "user_revoked", "user_grant_changed", "user_session_ended"}
)


class RoomConsumer(AsyncWebsocketConsumer):
    """One socket in one room, for one signed-in user.

    Client frames are answered one at a time, in order, by a worker task, so the event loop
    keeps delivering group events meanwhile. While a ``sync`` is answered, live events are held
    until ``sync.done`` is out.
    """

    grant: SocketGrant | None = None
    closing = False

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Every message skips Channels' database hop (a thread switch to close stale
        # connections, on connect and disconnect too): nothing here touches the database except
        # through ``db``, whose threads look after their own connections.
        name = str(message.get("type", "")).replace(".", "_")
        if name in CONTROL_HANDLERS:
            await getattr(self, name)(message)
        elif name in LIVE_HANDLERS:
            await self.deliver(message)
        elif name in sockets.WEBSOCKET_HANDLERS:
            await getattr(self, name)(message)
        elif name not in events.ATTENTION_HANDLERS:
            logger.warning("room socket ignored an unknown event type %r", name[:60])

    # --- lifecycle ------------------------------------------------------------------------------

    async def connect(self) -> None:
        self.room_id: int = int(self.scope["url_route"]["kwargs"]["room_id"])
        self.user = None
        self.session_key: str | None = self.scope.get("session_key")
        self.joined: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []
        # (when it arrived, text, bytes): a send that waited too long is refused, not stored late.
        self.frames: asyncio.Queue[tuple[float, str | None, bytes | None]] = asyncio.Queue()
        self.frame_arrived = 0.0
        self.syncing = False
        self.held: list[dict[str, Any]] = []
        self.parked: deque[dict[str, Any]] = deque()
        self.rechecking = False
        self.touched_at = -TOUCH_SECONDS
        client = self.scope.get("client") or [None]
        self.ip: str | None = client[0]
        # Accept first so the browser sees our close code; a refused handshake shows only 1006.
        await self.accept()
        owner = await owners.owner_of(self.session_key)
        if owner is None:
            await self.shut(admission.CLOSE_NOT_AUTHENTICATED)
            return
        # Join the groups before reading the grant, so no event committed after it is missed.
        for group in (events.room_group(self.room_id), events.user_group(owner)):
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        async with sockets.admission_turn(owner):
            admitted = await db.call(
                admission.admit_socket,
                session_key=self.session_key,
                user_id=owner,
                room_id=self.room_id,
                channel_name=self.channel_name,
                ip=self.ip,
            )
        if admitted.grant is None:
            if admitted.retry_after is not None:  # too many open sockets: say when to retry
                translation.activate(socket_language(admitted.user, self.scope))
                detail = _("Too many open connections; close another tab or window.")
                await self.send_error("rate_limited", detail, retry_after=admitted.retry_after)
            await self.shut(admitted.close_code or admission.CLOSE_FORBIDDEN)
            return
        self.user = admitted.user
        self.grant = admitted.grant
        # Error frames in the reader's language, here and on the tasks started below.
        translation.activate(socket_language(self.user, self.scope))
        sockets.opened(self)
        presence_deltas.note(admitted.came_online)
        await self.send_frame({"type": "presence", "online": admitted.online})
        watch = sockets.watch_session(
            self,
            deadline=lambda: self.grant.session_deadline if self.grant else None,
            moved=self.deadline_moved,
        )
        self.tasks = [asyncio.create_task(self.work()), asyncio.create_task(watch)]
        await self.drain_parked()

    async def disconnect(self, code: int) -> None:
        self.closing = True
        sockets.closed(self)
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for group in self.joined if not sockets.STOPPING else ():
            await self.channel_layer.group_discard(group, self.channel_name)
        if self.grant is not None:
            self.grant = None
            if not sockets.STOPPING:
                with contextlib.suppress(Exception):
                    presence_deltas.note(
                        await db.call(admission.release_socket, channel_name=self.channel_name)
                    )
            frame_rate.forget_idle(self.user.pk)

    async def shut(self, code: int) -> None:
        """Close with ``code`` and refuse anything that still arrives."""
        if self.closing:
            return
        self.closing = True
        self.parked.clear()
        self.held.clear()
        await self.close(code=code)

    def deadline_moved(self, deadline: dt.datetime) -> None:
        if self.grant is not None:
            self.grant.idle_deadline = min(deadline, self.grant.absolute_deadline)

    # --- client frames --------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing or self.grant is None:
            return
        if not frame_rate.allow(self.user.pk, settings.LIAISON_WS_RATE_PER_10S):
            wait = frame_rate.retry_after(self.user.pk, settings.LIAISON_WS_RATE_PER_10S)
            await self.send_error(
                "rate_limited", _("Too many frames; slow down."), retry_after=wait
            )
            await self.shut(admission.CLOSE_RATE_LIMITED)
            return
        # The rate limit bounds this queue: at most LIAISON_WS_RATE_PER_10S frames wait.
        self.frames.put_nowait((time.monotonic(), text_data, bytes_data))

    async def work(self) -> None:
        """Answer queued frames in order; after a sync, send the live events held meanwhile."""
        while not self.closing:
            self.frame_arrived, text_data, bytes_data = await self.frames.get()
            try:
                await self.answer(text_data, bytes_data)
            except Exception:
                logger.exception("room socket frame worker failed in room %s", self.room_id)
            finally:
                self.syncing = False
            held, self.held = self.held, []
            for event in held:
                await self.forward(event)

    async def answer(self, text_data: str | None, bytes_data: bytes | None) -> None:
        if self.closing:
            return
        if text_data is None:
            await self.send_error("invalid", _("Frames must be JSON text, not binary."))
            return
        if len(text_data.encode("utf-8", "surrogatepass")) > settings.LIAISON_WS_MAX_FRAME_BYTES:
            await self.send_error(
                "too_large",
                _("A frame may not exceed %(liaison_ws_max_frame_bytes)s bytes.")
                % {"liaison_ws_max_frame_bytes": settings.LIAISON_WS_MAX_FRAME_BYTES},
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
        self.syncing = frame.type == "sync"
        try:
            await handler(frame.fields)
        except AccessDenied as error:
            await self.record_denied(error)
            await self.shut(admission.CLOSE_FORBIDDEN)
        except PermissionDenied as error:
            await self.record_denied(error)
            await self.send_error(error.code, error.detail, client_id)
        except LiaisonError as error:
            await self.send_error(error.code, error.detail, client_id)
        except Exception:
            logger.exception("frame %s failed in room %s", frame.type, self.room_id)
            await self.send_error(
                "unavailable", _("The server could not handle this frame; try again."), client_id
            )

    async def call(self, action: Any, /, *, activity: bool = True, **kwargs: Any) -> Any:
        """One frame's service call through the seam; activity is recorded on the session at
        most every ``TOUCH_SECONDS`` (keep-alive pings are not activity)."""
        if activity:
            await self.note_activity()
        return await db.call(action, **kwargs)

    async def note_activity(self) -> None:
        if self.grant is None:
            return
        now = time.monotonic()
        self.grant.idle_deadline = min(
            timezone.now() + sessions.idle_limit(), self.grant.absolute_deadline
        )
        if now - self.touched_at >= TOUCH_SECONDS:
            self.touched_at = now
            await db.call(sessions.touch_session, session_key=self.session_key)

    async def on_message_send(self, fields: dict[str, Any]) -> None:
        waited = time.monotonic() - self.frame_arrived
        if db.waiting() >= settings.LIAISON_WS_MAX_PENDING or (
            waited > settings.LIAISON_WS_MAX_SEND_WAIT_SECONDS
        ):
            await self.send_error(
                "unavailable",
                _("The server is busy; the message was not stored. Resend it."),
                fields["client_id"],
                retry_after=retry_after_seconds(),
            )
            return
        await self.note_activity()
        for _attempt in range(3):
            grant = self.grant
            if grant is None:
                return
            result, pending, error = await db.call_quietly(
                messaging.send_message,
                sender=self.user,
                room_id=self.room_id,
                client_id=fields["client_id"],
                body=fields["body"],
                posting_epoch=grant.epoch if grant.can_post else None,
                **messaging.draft_options(fields),
            )
            if not isinstance(error, GrantOutdated):
                break
            if not await self.refresh_grant():
                return
        if error is None:
            # Persist, then acknowledge, then broadcast.
            await self.send_frame(
                {"type": "message.ack", "client_id": result.message.client_id, "seq": result.seq}
            )
            metrics.observe_send_latency(time.monotonic() - self.frame_arrived)
        await events.send_pending(pending)
        if error is not None:
            raise error

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
                reading.read_since,
                user=self.user,
                room_id=self.room_id,
                after_seq=cursor,
                via="ws",
                ip=self.ip,
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
            reading.read_history,
            user=self.user,
            room_id=self.room_id,
            before_seq=fields.get("before_seq"),
            limit=fields.get("limit"),
            via="ws",
            ip=self.ip,
        )
        await self.send_frame({"type": "history.batch", "messages": page.messages})

    async def on_typing(self, fields: dict[str, Any]) -> None:
        """Nothing is stored: the grant says whether this person may post, so no database."""
        await self.note_activity()
        grant = self.grant
        if grant is None or not grant.can_post:
            raise PermissionDenied(_("Only members who may post can announce typing."))
        event = events.typing_event(
            person=grant.me, epoch=grant.epoch, user_id=grant.user_id, channel=self.channel_name
        )
        await events.send_pending([(events.room_group(self.room_id), event)])

    async def on_read(self, fields: dict[str, Any]) -> None:
        await self.call(
            messaging.mark_read, user=self.user, room_id=self.room_id, seq=fields["seq"]
        )

    async def on_ping(self, fields: dict[str, Any]) -> None:
        await self.send_frame({"type": "pong"})

    async def on_ack(self, fields: dict[str, Any]) -> None:
        kwargs = {"user": self.user, "room_id": self.room_id, "seq": fields["seq"], "ip": self.ip}
        await self.call(acknowledgements.acknowledge, **kwargs)

    # --- group events (no database here) ---------------------------------------------------------

    def live(self) -> bool:
        return self.grant is not None and not self.closing

    async def deliver(self, event: dict[str, Any]) -> None:
        """A live room event, in order: parked while the grant is being re-checked."""
        if self.closing:
            return
        if self.grant is None or self.rechecking or self.parked:
            self.park(event)
            return
        if not await self.forward(event):
            self.park(event)

    def park(self, event: dict[str, Any]) -> None:
        if len(self.parked) < MAX_BACKLOG:
            self.parked.append(event)

    async def forward(self, event: dict[str, Any]) -> bool:
        """Send a live event if the grant covers it; ``False`` when it is newer than the grant
        (a re-check has been started and the caller parks it)."""
        grant = self.grant
        if grant is None or self.closing:
            return True
        if int(event.get("epoch") or 0) > grant.epoch:
            self.start_recheck()
            return False
        if self.syncing:
            if len(self.held) < MAX_BACKLOG:
                self.held.append(event)
            return True
        if event["type"] == events.ROOM_TYPING and event.get("channel") == self.channel_name:
            return True
        if event["type"] == events.ROOM_PRESENCE and event.get("sender") == grant.user_id:
            return True  # a socket knows its own person is online
        if grant.visible_from is not None and event.get("written", grant.visible_from) < (
            grant.visible_from
        ):
            return True  # about a message from before this reader's history starts
        if not self.closing:
            # Straight to the server: Channels' two ``send`` layers build the same message.
            await self.base_send({"type": "websocket.send", "text": event["frame"]})
            if event["type"] == events.ROOM_MESSAGE_NEW and "at" in event:
                metrics.observe_fanout_latency(time.time() - event["at"])
        return True

    async def drain_parked(self) -> None:
        while self.parked and not self.rechecking and self.live():
            if not await self.forward(self.parked[0]):
                return
            self.parked.popleft()

    def start_recheck(self) -> None:
        if not self.rechecking and not self.closing:
            self.rechecking = True
            self.tasks.append(asyncio.create_task(self.recheck()))

    async def recheck(self) -> None:
        """Read the grant again; close if it is gone, else deliver what was parked."""
        await self.refresh_grant()
        self.rechecking = False
        await self.drain_parked()

    async def refresh_grant(self) -> bool:
        """The grant from the database; ``False`` (and the socket closed) if it is gone."""
        if self.grant is None or self.closing:
            return False
        try:
            outcome = await db.call(admission.recheck_socket, user=self.user, grant=self.grant)
        except Exception:
            logger.exception("grant re-check failed in room %s", self.room_id)
            outcome = admission.CLOSE_SERVICE_RESTART
        if isinstance(outcome, int):
            await self.shut(outcome)
            return False
        if self.closing:
            return False
        self.grant = outcome
        return True

    async def room_closed(self, event: dict[str, Any]) -> None:
        if event.get("room_id") in (None, self.room_id):
            await self.shut(admission.CLOSE_ROOM_CLOSED)

    async def user_revoked(self, event: dict[str, Any]) -> None:
        if self.room_id in (event.get("room_ids") or ()):
            await self.shut(admission.CLOSE_FORBIDDEN)

    async def user_grant_changed(self, event: dict[str, Any]) -> None:
        room_ids = event.get("room_ids")
        if room_ids is None or self.room_id in room_ids:
            self.start_recheck()

    async def user_session_ended(self, event: dict[str, Any]) -> None:
        session_key = event.get("session_key")
        if session_key is None or session_key == self.session_key:
            await self.shut(admission.CLOSE_NOT_AUTHENTICATED)

    # --- sending ---------------------------------------------------------------------------------

    async def send_frame(self, frame: dict[str, Any]) -> None:
        if not self.closing:
            await self.send(text_data=events.encode(frame))

    async def send_error(
        self,
        code: str,
        detail: str,
        client_id: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
        if client_id is not None:
            frame["client_id"] = client_id
        if retry_after is not None:
            frame["retry_after"] = retry_after
        await self.send_frame(frame)

    async def record_denied(self, error: LiaisonError) -> None:
        await db.call(
            audit.record_denied,
            actor=self.user,
            error=error,
            ip=self.ip,
            via="ws",
            path=f"/ws/rooms/{self.room_id}/",
        )
