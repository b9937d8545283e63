"""The room WebSocket through Channels' communicator: the protocol of docs/api/websocket.md,
its refusals and its close codes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.db import transaction

from config.asgi import application
from liaison import audit, events
from liaison.models import AuditEvent, Membership, Message, Presence, ReadMarker, Room, User
from liaison.realtime import limits
from liaison.services import exercises as exercise_service
from liaison.services import memberships, sessions
from liaison.services.messaging import send_message

pytestmark = pytest.mark.django_db(transaction=True)

# Frames that arrive whenever someone comes or goes; tests waiting for something else skip them.
BACKGROUND = {"presence", "typing", "read"}


@pytest.fixture(autouse=True)
async def _fresh_layer_and_limits() -> AsyncIterator[None]:
    limits.frame_rate.reset()
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        await layer.flush()
    yield
    limits.frame_rate.reset()


class Socket:
    """A communicator with the few verbs the tests speak."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def send(self, frame: dict[str, Any] | str) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self.communicator.send_to(text_data=text)

    async def next(self, timeout: float = 2) -> dict[str, Any]:
        """The next frame; a close is returned as ``{"type": "close", "code": ...}``."""
        output = await self.communicator.receive_output(timeout)
        if output["type"] == "websocket.close":
            return {"type": "close", "code": output.get("code")}
        return json.loads(output["text"])

    async def expect(self, kind: str, timeout: float = 2) -> dict[str, Any]:
        """The next frame of type ``kind``, skipping presence/typing/read chatter."""
        while True:
            frame = await self.next(timeout)
            if frame["type"] == kind:
                return frame
            if frame["type"] not in BACKGROUND:
                raise AssertionError(f"expected {kind}, got {frame}")

    async def closed_with(self, timeout: float = 2) -> int:
        while True:
            frame = await self.next(timeout)
            if frame["type"] == "close":
                return frame["code"]
            assert frame["type"] in BACKGROUND, frame

    async def nothing_more(self) -> None:
        assert await self.communicator.receive_nothing(timeout=0.2)

    async def still_up(self) -> None:
        await self.send({"type": "ping"})
        assert (await self.expect("pong")) == {"type": "pong"}

    async def close(self) -> None:
        await self.communicator.disconnect()


async def open_socket(
    ws_headers: Any, user: User | None, room_id: int, origin: str = "http://127.0.0.1:8000"
) -> Socket:
    headers = await database_sync_to_async(ws_headers)(user, origin)
    communicator = WebsocketCommunicator(application, f"/ws/rooms/{room_id}/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return Socket(communicator)


async def joined(ws_headers: Any, user: User, room: Room) -> Socket:
    """An admitted socket (its own presence broadcast already consumed)."""
    socket = await open_socket(ws_headers, user, room.pk)
    frame = await socket.expect("presence")
    assert user.pk in frame["online"]
    return socket


@database_sync_to_async
def count(model: Any, **filters: Any) -> int:
    return model.objects.filter(**filters).count()


@database_sync_to_async
def room_chain(room: Room) -> tuple[int, str, list[tuple[int, str, str, str]]]:
    """The room's ``last_seq`` and chain head, and its messages' (seq, client_id, prev_hash,
    chain_hash) in order: the per-room chain that is a message's record."""
    fresh = Room.objects.get(pk=room.pk)
    rows = Message.objects.filter(room=room).order_by("seq")
    return (
        fresh.last_seq,
        fresh.chain_head,
        list(rows.values_list("seq", "client_id", "prev_hash", "chain_hash")),
    )


@database_sync_to_async
def denials(**details: Any) -> list[AuditEvent]:
    rows = AuditEvent.objects.filter(action="access.denied").order_by("seq")
    return [row for row in rows if all(row.details.get(k) == v for k, v in details.items())]


# --- send, ack, receive -----------------------------------------------------------------------


async def test_a_message_is_acknowledged_to_the_sender_then_delivered_to_the_room(
    ws_headers, uk_officer: User, gz_officer: User, room: Room
) -> None:
    olivia = await joined(ws_headers, uk_officer, room)
    li = await joined(ws_headers, gz_officer, room)
    await olivia.send(
        {"type": "message.send", "client_id": "c-1", "body": "MSKU 7710322 loaded today."}
    )

    assert await olivia.expect("message.ack") == {
        "type": "message.ack",
        "client_id": "c-1",
        "seq": 1,
    }
    own = await olivia.expect("message.new")
    delivered = await li.expect("message.new")
    assert own == delivered
    assert delivered["message"]["seq"] == 1
    assert delivered["message"]["body"] == "MSKU 7710322 loaded today."
    assert delivered["message"]["sender"]["display_name"] == "Olivia Hughes"
    assert delivered["message"]["sender"]["agency"] == "HM Revenue & Customs"
    # The message is on the room's chain, written with it; no global audit row per message.
    last_seq, head, ((seq, client_id, prev_hash, chain_hash),) = await room_chain(room)
    assert (seq, client_id, last_seq) == (1, "c-1", 1)
    assert prev_hash == audit.GENESIS_HASH
    assert head == chain_hash
    assert await count(AuditEvent, target_type="message") == 0
    await olivia.close()
    await li.close()


async def test_a_resent_client_id_gets_the_same_seq_and_no_second_message(
    ws_headers, uk_officer: User, gz_officer: User, room: Room
) -> None:
    olivia = await joined(ws_headers, uk_officer, room)
    li = await joined(ws_headers, gz_officer, room)
    frame = {"type": "message.send", "client_id": "outbox-7", "body": "Seal 4471 intact."}
    await olivia.send(frame)
    first = await olivia.expect("message.ack")
    await olivia.expect("message.new")
    await li.expect("message.new")
    await olivia.send(frame)
    again = await olivia.expect("message.ack")

    assert again == first == {"type": "message.ack", "client_id": "outbox-7", "seq": 1}
    await olivia.nothing_more()
    await li.nothing_more()
    # One message for the client_id, and the room's seq and chain head moved once.
    last_seq, head, ((seq, client_id, prev_hash, chain_hash),) = await room_chain(room)
    assert (seq, client_id, last_seq) == (1, "outbox-7", 1)
    assert prev_hash == audit.GENESIS_HASH
    assert head == chain_hash
    await olivia.close()
    await li.close()


async def test_sync_after_a_gap_returns_everything_in_order_in_pages(
    ws_headers, uk_officer: User, gz_officer: User, room: Room, settings
) -> None:
    settings.LIAISON_SYNC_PAGE_SIZE = 3
    for index in range(8):
        await database_sync_to_async(send_message)(
            sender=uk_officer, room_id=room.pk, client_id=f"m{index}", body=f"update {index + 1}"
        )
    li = await joined(ws_headers, gz_officer, room)
    await li.send({"type": "sync", "after_seq": 2})
    seqs = []
    batches = 0
    while True:
        frame = await li.next()
        if frame["type"] == "sync.done":
            break
        assert frame["type"] == "sync.batch"
        batches += 1
        seqs.extend(message["seq"] for message in frame["messages"])
    assert seqs == [3, 4, 5, 6, 7, 8]
    assert batches == 2
    assert frame == {"type": "sync.done", "last_seq": 8}

    await li.send({"type": "sync", "after_seq": 8})
    assert await li.expect("sync.batch") == {"type": "sync.batch", "messages": []}
    assert await li.expect("sync.done") == {"type": "sync.done", "last_seq": 8}
    await li.close()


async def test_history_returns_the_newest_messages_below_a_seq(
    ws_headers, uk_officer: User, gz_officer: User, room: Room
) -> None:
    for index in range(5):
        await database_sync_to_async(send_message)(
            sender=uk_officer, room_id=room.pk, client_id=f"m{index}", body=f"update {index + 1}"
        )
    li = await joined(ws_headers, gz_officer, room)
    await li.send({"type": "history", "before_seq": None, "limit": 2})
    newest = await li.expect("history.batch")
    assert [m["seq"] for m in newest["messages"]] == [4, 5]
    await li.send({"type": "history", "before_seq": 4, "limit": 50})
    older = await li.expect("history.batch")
    assert [m["body"] for m in older["messages"]] == ["update 1", "update 2", "update 3"]
    await li.close()


async def test_edits_and_deletions_reach_the_room_as_updates(
    ws_headers, uk_officer: User, gz_officer: User, room: Room
) -> None:
    olivia = await joined(ws_headers, uk_officer, room)
    li = await joined(ws_headers, gz_officer, room)
    await olivia.send({"type": "message.send", "client_id": "c-1", "body": "24.1 t"})
    await olivia.expect("message.ack")
    await olivia.expect("message.new")
    await li.expect("message.new")
    await olivia.send({"type": "message.edit", "seq": 1, "body": "21.4 t"})
    assert (await olivia.expect("message.updated"))["message"]["body"] == "21.4 t"
    edited = await li.expect("message.updated")
    assert (edited["message"]["body"], edited["message"]["seq"]) == ("21.4 t", 1)
    assert edited["message"]["edited_at"]
    await li.send({"type": "message.edit", "seq": 1, "body": "hijack"})
    refused = await li.expect("error")
    assert refused["code"] == "forbidden"
    await olivia.send({"type": "message.delete", "seq": 1})
    await olivia.expect("message.updated")
    deleted = await li.expect("message.updated")
    assert (deleted["message"]["deleted"], deleted["message"]["body"]) == (True, None)
    await olivia.send({"type": "message.delete", "seq": 99})
    assert (await olivia.expect("error"))["code"] == "not_found"
    await olivia.close()
    await li.close()


# --- malformed frames ---------------------------------------------------------------------------


MALFORMED = [
    ("this is not json", "not valid JSON", None),
    ("[1, 2]", "JSON object", None),
    ('{"kind": "ping"}', "string 'type'", None),
    ('{"type": 5}', "string 'type'", None),
    ('{"type": "message.shout"}', "Unknown frame type", None),
    ('{"type": "message.send", "body": "no id"}', "'client_id' is required", None),
    ('{"type": "message.send", "client_id": "c-9"}', "'body' is required", "c-9"),
    (
        '{"type": "message.send", "client_id": "c-9", "body": 7}',
        "'body' must be a string",
        "c-9",
    ),
    ('{"type": "message.send", "client_id": "bad id!", "body": "x"}', "client_id", "bad id!"),
    ('{"type": "message.send", "client_id": "c", "body": "   "}', "empty", "c"),
    ('{"type": "message.send", "client_id": "c", "body": "x", "to": 1}', "Unknown field", "c"),
    ('{"type": "message.edit", "seq": "1", "body": "x"}', "'seq' must be an integer", None),
    ('{"type": "sync", "after_seq": true}', "'after_seq' must be an integer", None),
    ('{"type": "sync", "after_seq": -1}', "at least 0", None),
    ('{"type": "sync"}', "'after_seq' is required", None),
    ('{"type": "history", "limit": 500}', "at most 100", None),
    ('{"type": "read", "seq": 1.5}', "'seq' must be an integer", None),
    ('{"type": "ping", "extra": 1}', "Unknown field", None),
]


async def test_malformed_frames_get_errors_and_the_socket_stays_up(
    ws_headers, uk_officer: User, room: Room
) -> None:
    socket = await joined(ws_headers, uk_officer, room)
    for raw, detail, client_id in MALFORMED:
        await socket.send(raw)
        error = await socket.expect("error")
        assert error["code"] == "invalid", raw
        assert detail in error["detail"], (raw, error)
        assert error.get("client_id") == client_id, raw
        await socket.still_up()
    assert await count(Message) == 0
    await socket.close()


async def test_a_binary_frame_is_refused_and_the_socket_stays_up(
    ws_headers, uk_officer: User, room: Room
) -> None:
    socket = await joined(ws_headers, uk_officer, room)
    await socket.communicator.send_to(bytes_data=b"\x00\x01")
    assert (await socket.expect("error"))["code"] == "invalid"
    await socket.still_up()
    await socket.close()


async def test_a_body_over_the_limit_gets_too_large_with_its_client_id(
    ws_headers, uk_officer: User, room: Room
) -> None:
    socket = await joined(ws_headers, uk_officer, room)
    await socket.send({"type": "message.send", "client_id": "long-1", "body": "x" * 8001})
    error = await socket.expect("error")
    assert (error["code"], error["client_id"]) == ("too_large", "long-1")
    assert "8000" in error["detail"]
    await socket.still_up()
    assert await count(Message) == 0
    await socket.close()


async def test_a_frame_over_the_transport_limit_gets_too_large(
    ws_headers, uk_officer: User, room: Room, settings
) -> None:
    socket = await joined(ws_headers, uk_officer, room)
    body = "x" * settings.LIAISON_WS_MAX_FRAME_BYTES
    await socket.send({"type": "message.send", "client_id": "huge", "body": body})
    error = await socket.expect("error")
    assert error["code"] == "too_large"
    await socket.still_up()
    await socket.close()


# --- refusals -----------------------------------------------------------------------------------


async def test_without_a_session_the_socket_is_closed_with_4401(ws_headers, room: Room) -> None:
    socket = await open_socket(ws_headers, None, room.pk)
    assert await socket.closed_with() == 4401
    await socket.close()


async def test_a_session_that_is_gone_is_closed_with_4401(
    ws_headers, uk_officer: User, room: Room
) -> None:
    headers = await database_sync_to_async(ws_headers)(uk_officer)
    await database_sync_to_async(lambda: Session.objects.all().delete())()
    communicator = WebsocketCommunicator(application, f"/ws/rooms/{room.pk}/", headers=headers)
    await communicator.connect()
    assert await Socket(communicator).closed_with() == 4401
    await communicator.disconnect()


async def test_an_outsider_is_closed_with_4403_and_the_attempt_is_audited(
    ws_headers, outsider: User, room: Room
) -> None:
    socket = await open_socket(ws_headers, outsider, room.pk)
    assert await socket.closed_with() == 4403
    await socket.close()
    (row,) = await denials(via="ws")
    assert (row.actor_id, row.target_type, row.target_id) == (outsider.pk, "room", str(room.pk))
    assert await count(Presence) == 0


async def test_a_room_that_does_not_exist_is_closed_with_4403_like_a_forbidden_one(
    ws_headers, uk_officer: User, room: Room
) -> None:
    socket = await open_socket(ws_headers, uk_officer, room.pk + 1000)
    assert await socket.closed_with() == 4403
    await socket.close()
    assert len(await denials(via="ws")) == 1


async def test_a_foreign_origin_is_refused_at_the_handshake(
    ws_headers, uk_officer: User, room: Room
) -> None:
    headers = await database_sync_to_async(ws_headers)(uk_officer, "https://evil.example")
    communicator = WebsocketCommunicator(application, f"/ws/rooms/{room.pk}/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected is False
    await communicator.disconnect()
    assert await count(Presence) == 0


async def test_an_observer_reads_but_posting_is_forbidden_and_audited(
    ws_headers, gz_observer: User, uk_officer: User, room: Room
) -> None:
    await database_sync_to_async(send_message)(
        sender=uk_officer, room_id=room.pk, client_id="m1", body="for everyone"
    )
    chen = await joined(ws_headers, gz_observer, room)
    await chen.send({"type": "message.send", "client_id": "obs-1", "body": "may I?"})
    error = await chen.expect("error")
    assert (error["code"], error["client_id"]) == ("forbidden", "obs-1")
    await chen.send({"type": "sync", "after_seq": 0})
    assert [m["body"] for m in (await chen.expect("sync.batch"))["messages"]] == ["for everyone"]
    await chen.expect("sync.done")
    await chen.close()
    assert await count(Message) == 1
    (row,) = await denials(via="ws")
    assert (row.actor_id, row.details["reason"]) == (gz_observer.pk, "forbidden")


async def test_an_auditor_reads_but_posting_is_forbidden_and_audited(
    ws_headers, auditor: User, room: Room
) -> None:
    socket = await open_socket(ws_headers, auditor, room.pk)
    await socket.send({"type": "message.send", "client_id": "aud-1", "body": "note"})
    error = await socket.expect("error")
    assert (error["code"], error["client_id"]) == ("forbidden", "aud-1")
    await socket.send({"type": "typing"})
    assert (await socket.expect("error"))["code"] == "forbidden"
    await socket.still_up()
    await socket.close()
    assert await count(Message) == 0
    assert len(await denials(via="ws")) == 2


# --- revocation ---------------------------------------------------------------------------------


async def test_a_removed_members_socket_is_closed_with_4403_within_a_second(
    ws_headers, admin: User, uk_officer: User, gz_officer: User, room: Room
) -> None:
    li = await joined(ws_headers, gz_officer, room)
    olivia = await joined(ws_headers, uk_officer, room)
    assert await li.expect("presence") == {"type": "presence", "joined": [uk_officer.pk]}
    membership = await database_sync_to_async(Membership.objects.get)(
        user=uk_officer, exercise_id=room.exercise_id
    )
    await database_sync_to_async(memberships.remove_member)(actor=admin, membership=membership)

    assert await olivia.closed_with(timeout=1) == 4403
    await olivia.close()
    assert await li.expect("presence") == {"type": "presence", "left": [uk_officer.pk]}
    await li.close()


def _lost_events(action: Any, **kwargs: Any) -> Any:
    """Run a service while the channel layer loses every event it publishes."""
    with events.deferred_publishing(), transaction.atomic():
        return action(**kwargs)


async def test_a_removed_members_frames_are_refused_even_if_the_event_is_lost(
    ws_headers, admin: User, uk_officer: User, room: Room
) -> None:
    olivia = await joined(ws_headers, uk_officer, room)
    membership = await database_sync_to_async(Membership.objects.get)(
        user=uk_officer, exercise_id=room.exercise_id
    )
    # The at-most-once layer loses the revocation: the room's epoch still tells.
    await database_sync_to_async(_lost_events)(
        memberships.remove_member, actor=admin, membership=membership
    )
    await olivia.send({"type": "message.send", "client_id": "late", "body": "still here?"})
    assert await olivia.closed_with() == 4403
    await olivia.close()
    assert await count(Message) == 0


async def test_frames_after_a_revocation_are_refused(
    ws_headers, uk_officer: User, room: Room
) -> None:
    olivia = await joined(ws_headers, uk_officer, room)
    await get_channel_layer().group_send(
        events.user_group(uk_officer.pk),
        events.user_revoked(exercise_id=room.exercise_id, room_ids=[room.pk]),
    )
    assert await olivia.closed_with() == 4403
    await olivia.send({"type": "message.send", "client_id": "after", "body": "too late"})
    await olivia.nothing_more()
    await olivia.close()
    assert await count(Message) == 0


async def test_revocation_of_another_room_leaves_the_socket_open(
    ws_headers, uk_officer: User, room: Room
) -> None:
    olivia = await joined(ws_headers, uk_officer, room)
    await get_channel_layer().group_send(
        events.user_group(uk_officer.pk),
        events.user_revoked(exercise_id=room.exercise_id, room_ids=[room.pk + 1]),
    )
    await olivia.still_up()
    await olivia.close()


async def test_closing_the_exercise_closes_sockets_with_4409_and_leaves_it_read_only(
    ws_headers, admin: User, uk_officer: User, room: Room
) -> None:
    olivia = await joined(ws_headers, uk_officer, room)
    await database_sync_to_async(exercise_service.close_exercise)(
        actor=admin, exercise=room.exercise
    )
    notice = (await olivia.expect("message.new"))["message"]
    assert (notice["kind"], notice["sender"]["display_name"]) == ("system", "Liaison")
    assert await olivia.closed_with(timeout=1) == 4409
    await olivia.close()

    again = await joined(ws_headers, uk_officer, room)
    await again.send({"type": "message.send", "client_id": "c-1", "body": "after closing"})
    error = await again.expect("error")
    assert (error["code"], error["client_id"]) == ("room_closed", "c-1")
    await again.send({"type": "history"})
    assert [m["seq"] for m in (await again.expect("history.batch"))["messages"]] == [notice["seq"]]
    await again.close()


async def test_the_end_of_the_session_closes_its_sockets_with_4401(
    ws_headers, uk_officer: User, room: Room
) -> None:
    olivia = await joined(ws_headers, uk_officer, room)
    await get_channel_layer().group_send(
        events.user_group(uk_officer.pk), events.session_ended(session_key="some-other-session")
    )
    await olivia.still_up()
    await get_channel_layer().group_send(
        events.user_group(uk_officer.pk), events.session_ended(session_key=None)
    )
    assert await olivia.closed_with(timeout=1) == 4401
    await olivia.close()


async def test_the_watchdog_closes_a_socket_whose_session_expired(
    ws_headers, uk_officer: User, room: Room, settings
) -> None:
    settings.LIAISON_SESSION_IDLE_SECONDS = 1
    olivia = await joined(ws_headers, uk_officer, room)
    # Nobody announces an idle timeout: the socket knows its deadline and checks it then.
    assert await olivia.closed_with(timeout=3) == 4401
    await olivia.close()


async def test_a_frame_on_an_expired_session_closes_with_4401(
    ws_headers, uk_officer: User, room: Room
) -> None:
    olivia = await joined(ws_headers, uk_officer, room)
    # The session ends (every session of the account) and the layer loses the news.
    await database_sync_to_async(_lost_events)(
        sessions.end_all_sessions, user=uk_officer, reason="test"
    )
    await olivia.send({"type": "message.send", "client_id": "c-1", "body": "hello?"})
    assert await olivia.closed_with() == 4401
    await olivia.close()
    assert await count(Message) == 0


async def test_more_frames_than_the_rate_allows_close_with_4429(
    ws_headers, uk_officer: User, room: Room, settings
) -> None:
    settings.LIAISON_WS_RATE_PER_10S = 5
    olivia = await joined(ws_headers, uk_officer, room)
    for _ in range(5):
        await olivia.still_up()
    await olivia.send({"type": "ping"})
    assert (await olivia.expect("error"))["code"] == "rate_limited"
    assert await olivia.closed_with() == 4429
    await olivia.close()


# --- typing, read markers, presence ---------------------------------------------------------------


async def test_typing_reaches_the_others_but_not_the_typist(
    ws_headers, uk_officer: User, gz_officer: User, room: Room
) -> None:
    olivia = await joined(ws_headers, uk_officer, room)
    li = await joined(ws_headers, gz_officer, room)
    await olivia.expect("presence")
    await li.send({"type": "typing"})
    typing = await olivia.expect("typing")
    assert typing["user"]["id"] == gz_officer.pk
    assert typing["user"]["display_name"] == "Li Wei"
    await li.still_up()  # and li got no typing frame of its own
    await olivia.close()
    await li.close()


async def test_a_read_marker_is_stored_and_shown_to_the_room(
    ws_headers, uk_officer: User, gz_officer: User, room: Room
) -> None:
    for index in range(3):
        await database_sync_to_async(send_message)(
            sender=uk_officer, room_id=room.pk, client_id=f"m{index}", body="x"
        )
    olivia = await joined(ws_headers, uk_officer, room)
    li = await joined(ws_headers, gz_officer, room)
    await li.send({"type": "read", "seq": 2})
    receipt = await olivia.expect("read")
    assert (receipt["user"]["id"], receipt["seq"]) == (gz_officer.pk, 2)
    marker = await database_sync_to_async(ReadMarker.objects.get)(user=gz_officer, room=room)
    assert marker.last_read_seq == 2
    await olivia.close()
    await li.close()


async def test_presence_lists_who_is_online_and_follows_departures(
    ws_headers, uk_officer: User, gz_officer: User, room: Room
) -> None:
    olivia = await joined(ws_headers, uk_officer, room)
    li = await open_socket(ws_headers, gz_officer, room.pk)
    both = sorted([uk_officer.pk, gz_officer.pk])
    # The newcomer gets the whole list; the others only the change.
    assert await olivia.expect("presence") == {"type": "presence", "joined": [gz_officer.pk]}
    assert (await li.expect("presence"))["online"] == both
    assert await count(Presence, room=room) == 2
    await li.close()
    assert await olivia.expect("presence") == {"type": "presence", "left": [gz_officer.pk]}
    assert await count(Presence, room=room) == 1
    await olivia.close()
    assert await count(Presence) == 0


async def test_a_second_socket_of_the_same_person_counts_once(
    ws_headers, uk_officer: User, gz_officer: User, room: Room
) -> None:
    first = await joined(ws_headers, gz_officer, room)
    second = await joined(ws_headers, gz_officer, room)
    watcher = await joined(ws_headers, uk_officer, room)
    assert await first.expect("presence") == {"type": "presence", "joined": [uk_officer.pk]}
    # A second socket of someone already online, and its departure, change nothing.
    await second.close()
    await watcher.nothing_more()
    await first.close()
    assert await watcher.expect("presence") == {"type": "presence", "left": [gz_officer.pk]}
    await watcher.close()
    await asyncio.sleep(0)


async def test_an_unknown_group_event_is_ignored(ws_headers, uk_officer: User, room: Room) -> None:
    olivia = await joined(ws_headers, uk_officer, room)
    await get_channel_layer().group_send(events.room_group(room.pk), {"type": "room.unheard.of"})
    await olivia.still_up()
    await olivia.close()


@pytest.mark.parametrize(
    "overload",
    [{"LIAISON_WS_MAX_SEND_WAIT_SECONDS": 0.0}, {"LIAISON_WS_MAX_PENDING": 0}],
    ids=["send waited too long", "database queue full"],
)
async def test_a_busy_server_refuses_a_send_with_retry_after_and_stores_nothing(
    ws_headers, uk_officer: User, room: Room, settings, overload: dict[str, Any]
) -> None:
    for name, value in overload.items():
        setattr(settings, name, value)
    olivia = await joined(ws_headers, uk_officer, room)
    await olivia.send({"type": "message.send", "client_id": "busy-1", "body": "Seal 44120"})
    error = await olivia.expect("error")
    assert (error["code"], error["client_id"]) == ("unavailable", "busy-1")
    assert 0 < error["retry_after"] <= 5
    await olivia.still_up()
    await olivia.close()
    assert await count(Message) == 0
