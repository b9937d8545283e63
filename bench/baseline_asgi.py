"""The yardstick for the load test (``loadtest --baseline``): a bare Channels broadcast server.

Same settings, channel layer and daphne as Liaison, none of its work: no session, no database,
no encryption, no audit. A ``message.send`` frame is acknowledged and group-sent to the room's
group, and every socket of the room forwards it as ``message.new``; ``ping`` answers ``pong``
(the load test's readiness probe). It is served only by the load test, never by the product's
routing::

    daphne -b 127.0.0.1 -p 8100 bench.baseline_asgi:application
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()  # /healthz, so the load test knows when it is up

from django.conf import settings  # noqa: E402

# Bare Channels: channels-redis's own layer class (Liaison's subclass opens each event once per
# worker; the yardstick keeps the upstream cost), with the same Redis, prefix and encryption.
_layer = settings.CHANNEL_LAYERS["default"]
if _layer["BACKEND"] == "liaison.realtime.layer.RedisPubSubChannelLayer":
    _layer["BACKEND"] = "channels_redis.pubsub.RedisPubSubChannelLayer"

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

# Sequence numbers unique across worker processes, so the load test's duplicate check (the same
# seq twice on one socket) means the same thing here as for Liaison.
_sequence = itertools.count(os.getpid() << 32)


class BroadcastConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.group = f"baseline.room.{int(self.scope['url_route']['kwargs']['room_id'])}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame = json.loads(text_data or "{}")
        kind = frame.get("type")
        if kind == "ping":
            await self.send(text_data='{"type": "pong"}')
        elif kind == "message.send":
            seq = next(_sequence)
            await self.send(
                text_data=json.dumps(
                    {"type": "message.ack", "client_id": frame["client_id"], "seq": seq}
                )
            )
            message = {"seq": seq, "client_id": frame["client_id"], "body": frame["body"]}
            await self.channel_layer.group_send(
                self.group, {"type": "room.message", "message": message}
            )

    async def room_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"type": "message.new", "message": event["message"]}))


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([path("ws/rooms/<int:room_id>/", BroadcastConsumer.as_asgi())]),
    }
)
