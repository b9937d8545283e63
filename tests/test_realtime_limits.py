"""Room socket limits hold per person, not per worker process: frames per 10 s and open sockets,
each refused with an error frame saying when to retry, then close 4429."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from websockets.exceptions import ConnectionClosed

from liaison.models import Presence, Room, User
from liaison.realtime.admission import socket_cap_retry_seconds
from liaison.realtime.limits import FrameRate, frame_rate
from tests.realtime_support import needs_shared_layer, open_socket
from tests.test_realtime_consumer import joined

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _fresh_layer() -> AsyncIterator[None]:
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        await layer.flush()
    yield
    frame_rate.reset()


# --- through Channels' communicator ------------------------------------------------------------


async def test_a_refused_frame_says_when_to_retry(
    ws_headers, uk_officer: User, room: Room, settings
) -> None:
    settings.LIAISON_WS_RATE_PER_10S = 3
    olivia = await joined(ws_headers, uk_officer, room)
    for _ in range(3):
        await olivia.still_up()
    await olivia.send({"type": "ping"})
    error = await olivia.expect("error")
    assert error["code"] == "rate_limited"
    assert 1 <= error["retry_after"] <= 10
    assert await olivia.closed_with() == 4429
    await olivia.close()


async def test_open_sockets_per_person_are_capped_with_a_retry_time(
    ws_headers, uk_officer: User, gz_officer: User, room: Room, lane_room: Room, settings
) -> None:
    settings.LIAISON_WS_MAX_SOCKETS_PER_USER = 2
    first = await joined(ws_headers, uk_officer, room)
    second = await joined(ws_headers, uk_officer, lane_room)
    third = await refused_socket(ws_headers, uk_officer, room)
    error = await third.expect("error")
    assert error == {
        "type": "error",
        "code": "rate_limited",
        "detail": "Too many open connections; close another tab or window.",
        "retry_after": socket_cap_retry_seconds(),
    }
    assert await third.closed_with() == 4429
    await third.close()
    assert await database_sync_to_async(Presence.objects.filter(user=uk_officer).count)() == 2
    # Someone else is not affected; a closed socket frees its place.
    other = await joined(ws_headers, gz_officer, room)
    await second.close()
    await asyncio.sleep(0.2)
    again = await joined(ws_headers, uk_officer, lane_room)
    for socket in (first, other, again):
        await socket.still_up()
        await socket.close()


async def refused_socket(ws_headers: Any, user: User, room: Room) -> Any:
    from tests.test_realtime_consumer import open_socket as open_communicator

    return await open_communicator(ws_headers, user, room.pk)


def test_frames_on_two_workers_count_together() -> None:
    """Two ``FrameRate``s over the same counters stand for two worker processes."""
    first, second = FrameRate(shared=True), FrameRate(shared=True)
    allowed = 0
    for round_ in range(10):
        for worker in (first, second):
            allowed += sum(worker.allow(42, 20) for _ in range(3))
            worker.shared.sync()
        if round_ == 0:
            assert allowed == 6
    # Alone, each would have allowed all its 30; together they stop at the limit, passing it
    # by at most what the other worker allowed since its last batch (3 here).
    assert 20 <= allowed <= 20 + 3
    assert first.retry_after(42, 20) >= 1
    assert not first.allow(42, 20)
    assert not second.allow(42, 20)
    assert first.allow(43, 20)  # another person
    first.reset()
    second.reset()


def test_a_process_alone_counts_in_memory_when_the_counters_are_local(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from liaison import ratelimits

    monkeypatch.setattr(ratelimits, "is_shared", lambda: False)  # no REDIS_URL
    rate = FrameRate()
    assert all(rate.allow(7, 5) for _ in range(5))
    assert not rate.allow(7, 5)
    assert rate._shared_on is False  # no Redis: no shared counting at all
    assert rate.shared._pending == {}
    rate.reset()


# --- several real workers on Redis ----------------------------------------------------------------


async def _pings_until_closed(socket: Any, count: int) -> tuple[int, int | None, dict | None]:
    """Send ``count`` pings (a little apart, so batches are shared) while reading every answer:
    the pongs, the close code and the rate-limit error frame if one came."""
    frames: list[dict[str, Any]] = []

    async def read() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for text in socket:
                frames.append(json.loads(text))

    reader = asyncio.create_task(read())
    with contextlib.suppress(ConnectionClosed):
        for _ in range(count):
            await socket.send(json.dumps({"type": "ping"}))
            await asyncio.sleep(0.03)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(reader), 2)
    await socket.close()
    await reader
    pongs = sum(frame["type"] == "pong" for frame in frames)
    errors = [frame for frame in frames if frame["type"] == "error"]
    return pongs, socket.close_code, errors[0] if errors else None


def test_the_frame_limit_holds_for_a_person_on_two_workers(
    workers, ws_headers, uk_officer: User, room: Room
) -> None:
    needs_shared_layer()
    env = {"LIAISON_WS_RATE_PER_10S": "20"}
    first, second = workers.start(**env), workers.start(**env)

    async def scenario() -> list[tuple[int, int | None, dict | None]]:
        sockets = [
            await open_socket(first, ws_headers, uk_officer, room),
            await open_socket(second, ws_headers, uk_officer, room),
        ]
        return await asyncio.gather(*(_pings_until_closed(socket, 25) for socket in sockets))

    results = asyncio.run(scenario())
    # 50 pings offered, 25 per worker: counting alone, each worker would answer 20 (40 in all).
    # Counting together they stop near 20, passing it by what the other worker answered since
    # its last batch (a few frames; more when the machine is busy).
    answered = sum(pongs for pongs, _code, _error in results)
    assert answered <= 30, results
    refused = [(code, error) for _pongs, code, error in results if code == 4429]
    assert refused, results
    assert all(error and error["retry_after"] >= 1 for _code, error in refused)


def test_the_open_socket_cap_holds_across_workers(
    workers, ws_headers, uk_officer: User, room: Room, lane_room: Room
) -> None:
    needs_shared_layer()
    env = {"LIAISON_WS_MAX_SOCKETS_PER_USER": "2"}
    first, second = workers.start(**env), workers.start(**env)

    async def scenario() -> tuple[int | None, dict]:
        kept = [
            await open_socket(first, ws_headers, uk_officer, room),
            await open_socket(second, ws_headers, uk_officer, lane_room),
        ]
        for socket in kept:
            assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "presence"
        third = await open_socket(first, ws_headers, uk_officer, room)
        error = json.loads(await asyncio.wait_for(third.recv(), 5))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(third.wait_closed(), 5)
        for socket in kept:
            await socket.close()
        return third.close_code, error

    code, error = asyncio.run(scenario())
    assert code == 4429
    assert error["code"] == "rate_limited"
    assert error["retry_after"] >= 1
