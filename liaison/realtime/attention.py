"""The attention socket (``/ws/attention/``, docs/api/websocket.md "Attention socket"): live
unread, mention and acknowledgement counts for every room of the reader, and the notices that
drive desktop notifications, for the home page and the room page's sidebar and tab title.

It carries no message text. It hears ``exercise.<id>`` for each exercise the reader belongs
to (activity: room, seq, sender, kind) and ``user.<id>`` (notices, exact counts, and the
control events that end or narrow a grant). Activity stamped with a room access epoch newer
than the one read at connect makes it read its state again before passing anything on, so a
removed member stops hearing an exercise even if the removal notice itself was lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from liaison import events
from liaison.realtime import admission, db, sockets
from liaison.services import attention

logger = logging.getLogger(__name__)

FORWARDED = frozenset({"attention_notice", "attention_counts"})
# Open attention sockets per person in this process: refused above the open-socket cap (one
# per page is all a person needs; room sockets are counted across processes by presence).
_open: dict[int, int] = {}
RECHECKS = frozenset({"user_revoked", "user_grant_changed"})


class AttentionConsumer(AsyncWebsocketConsumer):
    closing = False
    counted = False
    state: attention.AttentionState | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        name = str(message.get("type", "")).replace(".", "_")
        if name in sockets.WEBSOCKET_HANDLERS:  # no Channels database hop, as a room socket
            await getattr(self, name)(message)
        elif self.state is None or self.closing:
            return
        elif name == "attention_activity":
            await self.activity(message)
        elif name in FORWARDED:
            await self.send(text_data=message["frame"])
        elif name in RECHECKS:
            await self.refresh()
        elif name == "user_session_ended" and message.get("session_key") in (
            None,
            self.session_key,
        ):
            await self.shut(admission.CLOSE_NOT_AUTHENTICATED)
        # Room events and anything else heard on user.<id> are not this socket's business.

    async def connect(self) -> None:
        self.session_key: str | None = self.scope.get("session_key")
        self.joined: set[str] = set()
        self.watchdog: asyncio.Task[None] | None = None
        await self.accept()
        person = await db.call(admission.socket_person, session_key=self.session_key)
        if isinstance(person, int):
            await self.shut(person)
            return
        self.user = person
        cap = settings.LIAISON_WS_MAX_SOCKETS_PER_USER
        if cap > 0 and _open.get(self.user.pk, 0) >= cap:
            await self.shut(admission.CLOSE_RATE_LIMITED)
            return
        _open[self.user.pk] = _open.get(self.user.pk, 0) + 1
        self.counted = True
        await self.join(events.user_group(self.user.pk))
        if not await self.refresh():
            return
        self.watchdog = asyncio.create_task(
            sockets.watch_session(
                self,
                deadline=lambda: self.state.deadline if self.state else None,
                moved=self.deadline_moved,
            )
        )

    async def disconnect(self, code: int) -> None:
        self.closing = True
        if self.counted:
            self.counted = False
            left = _open.get(self.user.pk, 1) - 1
            if left > 0:
                _open[self.user.pk] = left
            else:
                _open.pop(self.user.pk, None)
        if self.watchdog is not None and self.watchdog is not asyncio.current_task():
            self.watchdog.cancel()
        for group in list(self.joined):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined.clear()

    async def join(self, group: str) -> None:
        if group not in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.add(group)

    async def shut(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            await self.close(code=code)

    async def refresh(self) -> bool:
        """Read the state again: join the exercises now the reader's, leave the others, and
        send every room's counts. ``False`` (and closed) when the session is over."""
        try:
            state = await db.call(
                attention.attention_state, user=self.user, session_key=self.session_key
            )
        except Exception:
            logger.exception("attention state could not be read")
            await self.shut(admission.CLOSE_SERVICE_RESTART)
            return False
        if state.problem is not None:
            await self.shut(admission.CLOSE_NOT_AUTHENTICATED)
            return False
        wanted = {events.exercise_group(ident) for ident in state.exercise_ids}
        for group in [g for g in self.joined if g.startswith("exercise.") and g not in wanted]:
            await self.channel_layer.group_discard(group, self.channel_name)
            self.joined.discard(group)
        for group in sorted(wanted):
            await self.join(group)
        self.state = state
        await self.send_json(attention.counts_frame(state.counts, full=True))
        return True

    async def activity(self, event: dict[str, Any]) -> None:
        """New activity in a room: passed on if the reader still reads that room."""
        frame = json.loads(event["frame"])
        room_id = frame.get("room")
        known = self.state.epochs.get(room_id) if self.state else None
        stale = known is None or int(event.get("epoch") or 0) > known
        if stale and (not await self.refresh() or room_id not in self.state.epochs):
            return
        await self.send(text_data=event["frame"])

    def deadline_moved(self, deadline: dt.datetime) -> None:
        if self.state is not None:
            self.state = dataclasses.replace(self.state, deadline=deadline)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Only ``ping`` is spoken here (``pong``); everything arrives from the server."""
        if self.closing or self.state is None:
            return
        try:
            frame = json.loads(text_data or "")
        except ValueError:
            frame = None
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_json(
                {"type": "error", "code": "invalid", "detail": "Only ping is accepted here."}
            )

    async def send_json(self, frame: dict[str, Any]) -> None:
        if not self.closing:
            await self.send(text_data=events.encode(frame))
