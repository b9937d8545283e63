"""Presence changes are told to an exercise's rooms at most once per window per process: the
first at once, later ones together, as the state when told."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from liaison import events
from liaison.models import Room, User
from liaison.realtime import presence, presence_deltas

pytestmark = pytest.mark.django_db(transaction=True)

WINDOW_MS = 400


@pytest.fixture(autouse=True)
def _short_window(settings: Any) -> None:
    settings.LIAISON_WS_PRESENCE_WINDOW_MS = WINDOW_MS


def _join(user: User, room: Room, channel: str) -> presence.Change | None:
    joined = presence.join(
        user_id=user.pk,
        room_id=room.pk,
        exercise_id=room.exercise_id,
        channel_name=channel,
        session_key="s",
    )
    assert joined is not None
    return joined.change


async def _listen(room: Room) -> Any:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(events.room_group(room.pk), channel)

    async def next_frame(timeout: float = 3.0) -> dict[str, Any]:
        event = await asyncio.wait_for(layer.receive(channel), timeout)
        assert event["type"] == events.ROOM_PRESENCE
        return json.loads(event["frame"])

    return next_frame


async def test_the_first_change_goes_at_once_and_later_ones_together_after_the_window(
    room: Room, lane_room: Room, uk_officer: User, gz_officer: User
) -> None:
    here, there = await _listen(room), await _listen(lane_room)
    loop = asyncio.get_running_loop()
    started = loop.time()
    presence_deltas.note(await database_sync_to_async(_join)(uk_officer, room, "a1"))
    assert await here() == {"type": "presence", "joined": [uk_officer.pk]}
    assert await there() == {"type": "presence", "joined": [uk_officer.pk]}
    first_told = loop.time() - started
    assert first_told < WINDOW_MS / 1000

    # Two more changes inside the window: one frame per room, after the window, with both.
    presence_deltas.note(await database_sync_to_async(_join)(gz_officer, lane_room, "b1"))
    presence_deltas.note(await database_sync_to_async(presence.leave)(channel_name="a1"))
    both = {"type": "presence", "joined": [gz_officer.pk], "left": [uk_officer.pk]}
    assert await here() == both
    assert await there() == both
    second_told = loop.time()
    assert second_told - started >= WINDOW_MS / 1000
    with pytest.raises(TimeoutError):
        await here(timeout=WINDOW_MS / 1000 * 1.2)

    # Changes kept coming: the next window is twice as long.
    presence_deltas.note(await database_sync_to_async(presence.leave)(channel_name="b1"))
    assert await here() == {"type": "presence", "left": [gz_officer.pk]}
    assert loop.time() - second_told >= 2 * WINDOW_MS / 1000 - 0.1  # counted from the telling
    assert await there() == {"type": "presence", "left": [gz_officer.pk]}


async def test_a_quiet_window_brings_the_first_window_back(room: Room, uk_officer: User) -> None:
    here = await _listen(room)
    loop = asyncio.get_running_loop()
    presence_deltas.note(await database_sync_to_async(_join)(uk_officer, room, "a1"))
    await here()
    presence_deltas.note(await database_sync_to_async(presence.leave)(channel_name="a1"))
    await here()  # after one window; the next would be twice as long
    await asyncio.sleep(2 * WINDOW_MS / 1000 + 0.1)  # quiet
    started = loop.time()
    presence_deltas.note(await database_sync_to_async(_join)(uk_officer, room, "a2"))
    assert await here() == {"type": "presence", "joined": [uk_officer.pk]}
    assert loop.time() - started < WINDOW_MS / 1000


async def test_a_batch_says_the_state_when_told_not_the_order_of_changes(
    room: Room, uk_officer: User, gz_officer: User
) -> None:
    here = await _listen(room)
    presence_deltas.note(await database_sync_to_async(_join)(gz_officer, room, "b1"))
    assert await here() == {"type": "presence", "joined": [gz_officer.pk]}
    # Online, offline and back online again inside one window: told once, as online.
    presence_deltas.note(await database_sync_to_async(_join)(uk_officer, room, "a1"))
    presence_deltas.note(await database_sync_to_async(presence.leave)(channel_name="a1"))
    presence_deltas.note(await database_sync_to_async(_join)(uk_officer, room, "a2"))
    assert await here() == {"type": "presence", "joined": [uk_officer.pk]}
    with pytest.raises(TimeoutError):
        await here(timeout=WINDOW_MS / 1000 * 1.5)


async def test_nothing_changed_tells_nothing(room: Room) -> None:
    here = await _listen(room)
    presence_deltas.note(None)
    with pytest.raises(TimeoutError):
        await here(timeout=0.3)


async def test_a_window_of_zero_tells_every_change_at_once(
    room: Room, uk_officer: User, gz_officer: User, settings: Any
) -> None:
    settings.LIAISON_WS_PRESENCE_WINDOW_MS = 0
    here = await _listen(room)
    presence_deltas.note(await database_sync_to_async(_join)(uk_officer, room, "a1"))
    assert await here(timeout=0.5) == {"type": "presence", "joined": [uk_officer.pk]}
    presence_deltas.note(await database_sync_to_async(_join)(gz_officer, room, "b1"))
    assert await here(timeout=0.5) == {"type": "presence", "joined": [gz_officer.pk]}
    presence_deltas.note(await database_sync_to_async(presence.leave)(channel_name="a1"))
    assert await here(timeout=0.5) == {"type": "presence", "left": [uk_officer.pk]}
