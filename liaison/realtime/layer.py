"""The Redis pub/sub channel layer, opening each published event once per worker.

channels-redis hands the same received bytes to every local channel of a group and each
consumer then decrypts (Fernet) and unpacks its own copy: ten sockets of a room meant ten
decryptions of one message. Here the last events opened are remembered by identity of those
bytes, so a room's sockets in one worker share one opening. The event dict is shared, and
consumers only read it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer as _RedisPubSubChannelLayer

# Events arriving interleaved while the sockets of several rooms drain their queues.
OPENED_EVENTS = 256


class RedisPubSubChannelLayer(_RedisPubSubChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # id(bytes) -> (the bytes, kept so the id cannot be reused while cached; the event)
        self._opened: OrderedDict[int, tuple[bytes, dict[str, Any]]] = OrderedDict()

    async def forget_channel(self, channel: str) -> None:
        """Unsubscribe a channel its owner is done with. channels-redis lets a channel go only
        when a receive on it is cancelled (a consumer closing); one that received and finished,
        such as each health check's, stayed subscribed in Redis and queued in memory for the
        life of the worker."""
        layer = self._get_layer()
        if layer.channels.pop(channel, None) is not None:
            await layer._get_shard(channel).unsubscribe(channel)

    def deserialize(self, message: bytes) -> dict[str, Any]:
        opened = self._opened.get(id(message))
        if opened is not None and opened[0] is message:
            return opened[1]
        event = super().deserialize(message)
        self._opened[id(message)] = (message, event)
        if len(self._opened) > OPENED_EVENTS:
            self._opened.popitem(last=False)
        return event
