"""The socket protocol of replies, mentions and acknowledgements (room socket), and the attention
socket (``/ws/attention/``): live counts across rooms and sockets, notices, and revocation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from config.asgi import application
from liaison.models import AuditEvent, Room, User
from liaison.realtime import limits
from liaison.services import memberships
from liaison.services.messaging import send_message
from tests.test_realtime_consumer import Socket, count, joined, open_socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _fresh_layer() -> AsyncIterator[None]:
    limits.frame_rate.reset()
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        await layer.flush()
    yield
    limits.frame_rate.reset()


async def attention_socket(ws_headers: Any, user: User | None) -> Socket:
    headers = await database_sync_to_async(ws_headers)(user)
    communicator = WebsocketCommunicator(application, "/ws/attention/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return Socket(communicator)


async def first_counts(socket: Socket) -> dict[str, Any]:
    frame = await socket.next()
    assert frame["type"] == "counts", frame
    assert frame["full"] is True
    return frame["rooms"]


class Tally:
    """What a browser keeps from the attention frames (as static/liaison/chat/attention.js)."""

    def __init__(self, user_id: int, rooms: dict[str, Any]) -> None:
        self.user_id = user_id
        self.rooms = {int(k): dict(v) for k, v in rooms.items()}
        self.noticed: set[tuple[int, int, str]] = set()

    def apply(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "counts":
            for key, value in frame["rooms"].items():
                self.rooms[int(key)] = dict(value)
        elif frame["type"] == "activity":
            row = self.rooms[frame["room"]]
            if frame["seq"] > row["last_seq"]:
                row["last_seq"] = frame["seq"]
                if frame["sender"] != self.user_id and frame["seq"] > row["read_seq"]:
                    row["unread"] += 1
        elif frame["type"] == "notice":
            key = (frame["room"], frame["seq"], frame["reason"])
            row = self.rooms[frame["room"]]
            if key not in self.noticed and frame["seq"] > row["read_seq"]:
                self.noticed.add(key)
                if frame["reason"] == "mention":
                    row["mentions"] += 1

    def counts(self, room: Room) -> tuple[int, int]:
        row = self.rooms[room.pk]
        return row["unread"], row["mentions"]


async def drain(socket: Socket, tally: Tally, *, wait: float = 0.3) -> list[dict[str, Any]]:
    seen = []
    while not await socket.communicator.receive_nothing(timeout=wait):
        frame = await socket.next()
        tally.apply(frame)
        seen.append(frame)
    return seen


# --- the room socket: replies, mentions, acknowledgements ------------------------------------


async def test_a_reply_with_mentions_and_an_ack_request_goes_out_whole(
    ws_headers: Any, uk_officer: User, gz_officer: User, room: Room
) -> None:
    await database_sync_to_async(send_message)(
        sender=gz_officer, room_id=room.pk, client_id="p", body="MSKU4417702 arrives Friday."
    )
    olivia = await joined(ws_headers, uk_officer, room)
    li = await joined(ws_headers, gz_officer, room)
    await olivia.send(
        {
            "type": "message.send",
            "client_id": "c-1",
            "body": "@Li Wei please hold it.",
            "reply_to": 1,
            "mentions": {"users": [gz_officer.pk]},
            "ack": {"agencies": ["gacc-gz"]},
        }
    )
    assert (await olivia.expect("message.ack"))["seq"] == 2
    await olivia.expect("message.new")
    message = (await li.expect("message.new"))["message"]
    assert message["reply"]["excerpt"] == "MSKU4417702 arrives Friday."
    assert message["mentions"]["all"] == [gz_officer.pk]
    assert [row["user"]["id"] for row in message["ack"]["by"]] == [gz_officer.pk]

    await li.send({"type": "ack", "seq": 2})
    for socket in (olivia, li):
        update = await socket.expect("ack.updated")
        assert update["seq"] == 2
        assert update["room"] == room.pk
        assert update["ack"]["by"][0]["user"]["display_name"] == "Li Wei"
        assert update["ack"]["by"][0]["at"]
    assert await count(AuditEvent, action="message.acknowledged") == 1
    await olivia.close()
    await li.close()


async def test_a_mention_of_a_non_member_is_refused_over_the_socket(
    ws_headers: Any, uk_officer: User, outsider: User, room: Room
) -> None:
    olivia = await joined(ws_headers, uk_officer, room)
    await olivia.send(
        {
            "type": "message.send",
            "client_id": "c-1",
            "body": "@Sam",
            "mentions": {"users": [outsider.pk]},
        }
    )
    error = await olivia.expect("error")
    assert error["code"] == "invalid"
    assert error["client_id"] == "c-1"
    await olivia.close()


async def test_acknowledging_a_message_that_did_not_ask_you_is_forbidden(
    ws_headers: Any, uk_officer: User, gz_officer: User, uk_coordinator: User, room: Room
) -> None:
    await database_sync_to_async(send_message)(
        sender=uk_officer, room_id=room.pk, client_id="a", body="x", ack={"users": [gz_officer.pk]}
    )
    james = await joined(ws_headers, uk_coordinator, room)
    await james.send({"type": "ack", "seq": 1})
    assert (await james.expect("error"))["code"] == "forbidden"
    await james.still_up()
    await james.close()


async def test_an_observer_cannot_post_an_ack_for_someone_else(
    ws_headers: Any, gz_observer: User, room: Room
) -> None:
    chen = await joined(ws_headers, gz_observer, room)
    await chen.send({"type": "ack", "seq": 1})
    assert (await chen.expect("error"))["code"] == "not_found"
    await chen.close()


# --- the attention socket -----------------------------------------------------------------------


async def test_the_attention_socket_needs_a_session(ws_headers: Any) -> None:
    socket = await attention_socket(ws_headers, None)
    assert await socket.closed_with() == 4401


async def test_counts_are_right_across_two_rooms_and_two_sockets_of_the_same_user(
    ws_headers: Any, uk_officer: User, gz_officer: User, room: Room, lane_room: Room
) -> None:
    first = await attention_socket(ws_headers, gz_officer)
    second = await attention_socket(ws_headers, gz_officer)
    tallies = [Tally(gz_officer.pk, await first_counts(s)) for s in (first, second)]
    assert tallies[0].counts(room) == tallies[0].counts(lane_room) == (0, 0)

    send = database_sync_to_async(send_message)
    await send(sender=uk_officer, room_id=room.pk, client_id="1", body="one")
    await send(
        sender=uk_officer,
        room_id=room.pk,
        client_id="2",
        body="@Li Wei",
        mentions={"users": [gz_officer.pk]},
    )
    await send(
        sender=uk_officer,
        room_id=lane_room.pk,
        client_id="3",
        body="@GACC",
        mentions={"agencies": ["gacc-gz"]},
    )
    await send(sender=gz_officer, room_id=lane_room.pk, client_id="4", body="mine")
    for socket, tally in zip((first, second), tallies, strict=True):
        await drain(socket, tally)
        assert tally.counts(room) == (2, 1)
        assert tally.counts(lane_room) == (1, 1)

    # Reading in one tab (its room socket) brings both sockets the exact counts of that room.
    li_room = await joined(ws_headers, gz_officer, room)
    await li_room.send({"type": "read", "seq": 2})
    for socket, tally in zip((first, second), tallies, strict=True):
        frames = await drain(socket, tally)
        assert any(f["type"] == "counts" and not f["full"] for f in frames)
        assert tally.counts(room) == (0, 0)
        assert tally.counts(lane_room) == (1, 1)
    for socket in (first, second, li_room):
        await socket.close()


async def test_a_notice_reaches_only_the_person_mentioned(
    ws_headers: Any, uk_officer: User, gz_officer: User, uk_coordinator: User, room: Room
) -> None:
    li = await attention_socket(ws_headers, gz_officer)
    james = await attention_socket(ws_headers, uk_coordinator)
    await first_counts(li)
    await first_counts(james)
    await database_sync_to_async(send_message)(
        sender=uk_officer,
        room_id=room.pk,
        client_id="1",
        body="@Li Wei",
        mentions={"users": [gz_officer.pk]},
    )
    li_frames = await drain(li, Tally(gz_officer.pk, {str(room.pk): _zero()}))
    james_frames = await drain(james, Tally(uk_coordinator.pk, {str(room.pk): _zero()}))
    assert [f["type"] for f in li_frames] == ["activity", "notice"] or sorted(
        f["type"] for f in li_frames
    ) == ["activity", "notice"]
    assert [f["type"] for f in james_frames] == ["activity"]
    notice = next(f for f in li_frames if f["type"] == "notice")
    assert notice["reason"] == "mention"
    assert notice["sender"]["display_name"] == "Olivia Hughes"
    assert "body" not in json.dumps(notice)
    await li.close()
    await james.close()


def _zero() -> dict[str, Any]:
    return {"unread": 0, "mentions": 0, "acks": 0, "read_seq": 0, "last_seq": 0}


async def test_an_outsider_hears_nothing_of_the_exercise(
    ws_headers: Any, uk_officer: User, outsider: User, room: Room
) -> None:
    sam = await attention_socket(ws_headers, outsider)
    rooms = await first_counts(sam)
    assert str(room.pk) not in rooms
    await database_sync_to_async(send_message)(
        sender=uk_officer, room_id=room.pk, client_id="1", body="x"
    )
    await sam.nothing_more()
    await sam.close()


async def test_a_removed_member_stops_hearing_the_exercise(
    ws_headers: Any, admin: User, uk_officer: User, gz_officer: User, room: Room
) -> None:
    li = await attention_socket(ws_headers, gz_officer)
    await first_counts(li)

    @database_sync_to_async
    def remove() -> None:
        membership = gz_officer.memberships.get(removed_at__isnull=True)
        memberships.remove_member(actor=admin, membership=membership)

    await remove()
    refreshed = await li.next()
    assert refreshed["type"] == "counts"
    assert refreshed["full"] is True
    assert str(room.pk) not in refreshed["rooms"]
    await database_sync_to_async(send_message)(
        sender=uk_officer, room_id=room.pk, client_id="1", body="after the removal"
    )
    await li.nothing_more()
    await li.close()


async def test_the_attention_socket_answers_ping_and_refuses_anything_else(
    ws_headers: Any, gz_officer: User, room: Room
) -> None:
    li = await attention_socket(ws_headers, gz_officer)
    await first_counts(li)
    await li.send({"type": "ping"})
    assert await li.next() == {"type": "pong"}
    await li.send({"type": "message.send", "client_id": "x", "body": "x"})
    assert (await li.next())["code"] == "invalid"
    await li.close()


# --- presence in the exercise ----------------------------------------------------------------


async def test_presence_is_per_exercise_a_person_in_another_room_is_online_here(
    ws_headers: Any, uk_officer: User, gz_officer: User, room: Room, lane_room: Room
) -> None:
    olivia = await joined(ws_headers, uk_officer, room)
    li = await joined(ws_headers, gz_officer, lane_room)
    assert await olivia.expect("presence") == {"type": "presence", "joined": [gz_officer.pk]}
    # A second socket of Li Wei, in Olivia's room, changes nothing: he was online already.
    li_here = await open_socket(ws_headers, gz_officer, room.pk)
    assert (await li_here.expect("presence"))["online"] == sorted([uk_officer.pk, gz_officer.pk])
    await olivia.nothing_more()
    await li_here.close()
    await olivia.nothing_more()
    await li.close()
    assert await olivia.expect("presence") == {"type": "presence", "left": [gz_officer.pk]}
    await olivia.close()


async def test_presence_in_another_exercise_is_not_shown(
    ws_headers: Any, uk_officer: User, outsider: User, other_exercise: Any, room: Room
) -> None:
    from tests.factories import RoomFactory

    other_room = await database_sync_to_async(RoomFactory)(exercise=other_exercise, name="x")
    olivia = await joined(ws_headers, uk_officer, room)
    sam = await joined(ws_headers, outsider, other_room)
    await olivia.nothing_more()
    await sam.close()
    await olivia.nothing_more()
    await olivia.close()


async def test_attention_sockets_beyond_the_cap_are_refused(
    ws_headers: Any, gz_officer: User, room: Room, settings: Any
) -> None:
    settings.LIAISON_WS_MAX_SOCKETS_PER_USER = 2
    first = await attention_socket(ws_headers, gz_officer)
    second = await attention_socket(ws_headers, gz_officer)
    await first_counts(first)
    await first_counts(second)
    third = await attention_socket(ws_headers, gz_officer)
    assert await third.closed_with() == 4429
    await first.close()
    fourth = await attention_socket(ws_headers, gz_officer)
    await first_counts(fourth)
    await second.close()
    await fourth.close()
