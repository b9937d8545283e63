"""The Redis pub/sub layer opens each published event once per worker, on a real Redis."""

from __future__ import annotations

import os
import secrets
from typing import Any

import pytest
from cryptography.fernet import InvalidToken

from liaison.realtime import layer as layer_module
from liaison.realtime.layer import RedisPubSubChannelLayer

REDIS_URL = os.environ.get("REDIS_URL", "")

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="needs Redis (REDIS_URL)")


@pytest.fixture
async def redis_layer() -> Any:
    layer = RedisPubSubChannelLayer(
        hosts=[REDIS_URL],
        prefix=f"layer-test-{secrets.token_hex(4)}",
        symmetric_encryption_keys=["a test key that is long enough"],
    )
    yield layer
    await layer.flush()


def _count_openings(layer: RedisPubSubChannelLayer) -> list[bytes]:
    """Every decryption the upstream serializer performs, recorded."""
    opened: list[bytes] = []
    serializer = layer._serializer
    upstream = serializer.deserialize

    def counting(message: bytes) -> Any:
        opened.append(message)
        return upstream(message)

    serializer.deserialize = counting
    return opened


async def test_the_sockets_of_a_room_share_one_opening_of_each_event(redis_layer: Any) -> None:
    channels = [await redis_layer.new_channel() for _ in range(10)]
    for channel in channels:
        await redis_layer.group_add("room.1", channel)
    opened = _count_openings(redis_layer)

    await redis_layer.group_send("room.1", {"type": "room.message.new", "frame": '{"seq": 1}'})
    received = [await redis_layer.receive(channel) for channel in channels]

    assert received == [{"type": "room.message.new", "frame": '{"seq": 1}'}] * 10
    assert len(opened) == 1


async def test_different_events_are_never_confused(redis_layer: Any) -> None:
    first, second = await redis_layer.new_channel(), await redis_layer.new_channel()
    await redis_layer.group_add("room.1", first)
    await redis_layer.group_add("room.1", second)
    await redis_layer.group_add("room.2", second)

    for seq in range(1, 6):
        await redis_layer.group_send("room.1", {"type": "room.message.new", "seq": seq})
        await redis_layer.group_send("room.2", {"type": "room.typing", "seq": seq})

    got_first = [await redis_layer.receive(first) for _ in range(5)]
    got_second = [await redis_layer.receive(second) for _ in range(10)]
    assert [event["seq"] for event in got_first] == [1, 2, 3, 4, 5]
    assert sorted((event["type"], event["seq"]) for event in got_second) == sorted(
        [("room.message.new", seq) for seq in range(1, 6)]
        + [("room.typing", seq) for seq in range(1, 6)]
    )


async def test_what_is_remembered_stays_bounded(
    redis_layer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layer_module, "OPENED_EVENTS", 4)
    channel = await redis_layer.new_channel()
    for seq in range(10):
        await redis_layer.send(channel, {"type": "room.message.new", "seq": seq})
    assert [(await redis_layer.receive(channel))["seq"] for _ in range(10)] == list(range(10))
    assert len(redis_layer._opened) == 4


async def test_a_tampered_event_is_refused_not_remembered(redis_layer: Any) -> None:
    sealed = redis_layer.serialize({"type": "room.message.new", "seq": 1})
    middle = len(sealed) // 2  # inside the Fernet token's ciphertext, a base64 letter
    tampered = sealed[:middle] + (b"A" if sealed[middle : middle + 1] != b"A" else b"B")
    tampered += sealed[middle + 1 :]
    with pytest.raises(InvalidToken):
        redis_layer.deserialize(tampered)
    assert not redis_layer._opened


async def test_a_channel_its_owner_is_done_with_leaves_redis_and_memory(redis_layer: Any) -> None:
    import redis.asyncio as redis

    channel = await redis_layer.new_channel("healthz.")
    await redis_layer.send(channel, {"type": "health.ping"})
    assert (await redis_layer.receive(channel))["type"] == "health.ping"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert await client.pubsub_channels(channel) == [channel.encode()]
        await redis_layer.forget_channel(channel)
        assert await client.pubsub_channels(channel) == []
    finally:
        await client.aclose()
    assert channel not in redis_layer._get_layer().channels
    await redis_layer.forget_channel(channel)  # twice is harmless


async def test_the_receiver_waits_for_messages_instead_of_polling(redis_layer: Any) -> None:
    import asyncio

    channel = await redis_layer.new_channel()
    await redis_layer.group_add("quiet-room", channel)
    shard = redis_layer._get_layer()._shards[0]
    assert isinstance(shard, layer_module._ShardReceivingWhenTold)
    asks: list[float | None] = []
    upstream = shard._pubsub.get_message

    async def counted(*args: Any, **kwargs: Any) -> Any:
        asks.append(kwargs.get("timeout"))
        return await upstream(*args, **kwargs)

    shard._pubsub.get_message = counted
    await redis_layer.group_send("quiet-room", {"type": "first"})
    assert (await asyncio.wait_for(redis_layer.receive(channel), 2))["type"] == "first"
    await asyncio.sleep(0.05)  # the subscriptions' confirmations are read by now
    asks.clear()
    await asyncio.sleep(0.6)  # upstream asked six times in this quiet
    assert asks == []
    await redis_layer.group_send("quiet-room", {"type": "second"})
    assert (await asyncio.wait_for(redis_layer.receive(channel), 2))["type"] == "second"


async def test_a_receiver_with_nothing_subscribed_wakes_for_the_next_subscription(
    redis_layer: Any,
) -> None:
    import asyncio

    first = await redis_layer.new_channel("reachable.")
    await redis_layer.forget_channel(first)  # nothing subscribed now: the receiver waits
    await asyncio.sleep(0.2)
    shard = redis_layer._get_layer()._shards[0]
    assert shard._receive_task is not None
    assert not shard._receive_task.done()
    assert not shard._has_subscriptions.is_set()
    second = await redis_layer.new_channel("reachable.")
    await redis_layer.send(second, {"type": "hello"})
    assert (await asyncio.wait_for(redis_layer.receive(second), 2))["type"] == "hello"


async def test_a_sockets_channel_stays_out_of_redis_and_hears_its_groups(redis_layer: Any) -> None:
    import asyncio

    import redis.asyncio as redis

    channel = await redis_layer.new_channel()  # what Channels asks for when a socket opens
    await redis_layer.group_add("room.7", channel)
    group_channel = redis_layer._get_layer()._get_group_channel_name("room.7")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert await client.pubsub_channels(channel) == []
        assert await client.pubsub_channels(group_channel) == [group_channel.encode()]
    finally:
        await client.aclose()

    await redis_layer.group_send("room.7", {"type": "room.message.new", "seq": 1})
    assert (await asyncio.wait_for(redis_layer.receive(channel), 2))["seq"] == 1
    await redis_layer.send(channel, {"type": "room.typing"})  # from this process: its queue
    assert (await asyncio.wait_for(redis_layer.receive(channel), 2))["type"] == "room.typing"


async def test_a_channel_under_another_prefix_is_reached_from_another_worker(
    redis_layer: Any,
) -> None:
    import asyncio

    other_worker = RedisPubSubChannelLayer(
        hosts=[REDIS_URL],
        prefix=redis_layer._get_layer().prefix,
        symmetric_encryption_keys=["a test key that is long enough"],
    )
    try:
        channel = await redis_layer.new_channel("healthz.")
        await other_worker.send(channel, {"type": "health.ping"})
        assert (await asyncio.wait_for(redis_layer.receive(channel), 2))["type"] == "health.ping"
    finally:
        await other_worker.flush()
