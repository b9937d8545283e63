"""The Redis pub/sub channel layer, opening each published event once per worker, receiving
without polling, and keeping sockets' own channels out of Redis.

channels-redis hands the same received bytes to every local channel of a group and each
consumer then decrypts (Fernet) and unpacks its own copy: ten sockets of a room meant ten
decryptions of one message. Here the last events opened are remembered by identity of those
bytes, so a room's sockets in one worker share one opening. The event dict is shared, and
consumers only read it.

Channels gives every consumer a channel of its own, which channels-redis subscribes in Redis
when the socket opens and unsubscribes when it closes: two round trips under the shard's one
lock per socket, and a subscription per open socket. Liaison reaches a socket only through
its groups (its room, its person), so a socket's channel lives in this process alone. A
channel asked for under another prefix (the health check's) is subscribed as before, so a
``send`` from any worker reaches it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer as _RedisPubSubChannelLayer
from channels_redis.pubsub import RedisSingleShardConnection
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# The prefix Channels asks for when a consumer starts (``AsyncConsumer.__call__``).
SOCKET_PREFIX = "specific."

# Events arriving interleaved while the sockets of several rooms drain their queues.
OPENED_EVENTS = 256


class _ShardReceivingWhenTold(RedisSingleShardConnection):
    """A Redis connection whose receiver waits for the next message instead of asking for one
    ten times a second. channels-redis polls (``get_message(timeout=0.1)``, or a 0.1 s sleep
    while nothing is subscribed): with no traffic at all that polling was most of an empty
    worker's CPU, and nearly half of it with 2,000 idle sockets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._has_subscriptions = asyncio.Event()

    async def subscribe(self, channel: str) -> None:
        await super().subscribe(channel)
        self._has_subscriptions.set()

    async def _do_receiving(self) -> None:
        while True:
            try:
                if not (self._pubsub and self._pubsub.subscribed):
                    # Checked, cleared and awaited in one step: a subscribe cannot slip between.
                    self._has_subscriptions.clear()
                    await self._has_subscriptions.wait()
                    continue
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=None
                )
                self._receive_message(message)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except RedisTimeoutError:
                continue  # a socket_timeout in the Redis URL ends a quiet wait, nothing more
            except BaseException:
                logger.exception("channel layer: receiving from Redis failed")
                await asyncio.sleep(1)


class RedisPubSubChannelLayer(_RedisPubSubChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # id(bytes) -> (the bytes, kept so the id cannot be reused while cached; the event)
        self._opened: OrderedDict[int, tuple[bytes, dict[str, Any]]] = OrderedDict()

    def _get_layer(self) -> Any:
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = super()._get_layer()
            # Replaced before first use: a shard connects on its first command.
            layer._shards = [_ShardReceivingWhenTold(s.host, layer) for s in layer._shards]
        return layer

    async def new_channel(self, prefix: str = SOCKET_PREFIX) -> str:
        """A socket's channel: a queue in this process, fed by its groups' subscriptions."""
        layer = self._get_layer()
        if prefix != SOCKET_PREFIX:
            return await layer.new_channel(prefix)
        channel = f"{layer.prefix}{prefix}{uuid.uuid4().hex}"
        layer.channels[channel] = asyncio.Queue()
        return channel

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """A send to a socket's channel in this process goes straight to its queue (no other
        worker can reach it); any other goes through Redis."""
        layer = self._get_layer()
        queue = layer.channels.get(channel)
        if queue is not None and channel.startswith(f"{layer.prefix}{SOCKET_PREFIX}"):
            queue.put_nowait(self.serialize(message))
            return
        await layer.send(channel, message)

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
