"""Reading a room (liaison/services/reading.py): every auditor read path writes its audit row
(the WebSocket's ``history`` and ``sync``, ``GET /api/v1/rooms/<id>/messages``), and a stored
message that no longer authenticates writes ``message.integrity_failed``."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from liaison.models import AuditEvent, Message, Room, User
from liaison.realtime import limits
from liaison.services import reading
from liaison.services.messaging import send_message

BACKGROUND = {"presence", "typing", "read"}


def say(user: User, room: Room, *bodies: str) -> list[Message]:
    return [
        send_message(sender=user, room_id=room.pk, client_id=uuid.uuid4().hex, body=body).message
        for body in bodies
    ]


def viewed(**details: Any) -> list[AuditEvent]:
    rows = AuditEvent.objects.filter(action="audit.viewed").order_by("seq")
    return [row for row in rows if all(row.details.get(k) == v for k, v in details.items())]


def tamper(message: Message) -> None:
    ciphertext = bytearray(bytes(message.ciphertext))
    ciphertext[0] ^= 0x01
    Message.objects.filter(pk=message.pk).update(ciphertext=bytes(ciphertext))


# --- the service ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_auditors_history_read_is_audited_with_the_room_and_what_was_shown(
    auditor: User, uk_officer: User, room: Room
) -> None:
    say(uk_officer, room, "one", "two", "three")
    page = reading.read_history(user=auditor, room_id=room.pk, limit=2, via="api", ip="10.0.0.9")
    assert [m["body"] for m in page.messages] == ["two", "three"]
    (row,) = viewed(page="history")
    assert (row.actor_id, row.target_type, row.target_id) == (auditor.pk, "room", str(room.pk))
    assert row.exercise_id == room.exercise_id
    assert row.ip == "10.0.0.9"
    assert row.details == {
        "page": "history",
        "via": "api",
        "messages": 2,
        "first_seq": 2,
        "last_seq": 3,
        "before": None,
    }


@pytest.mark.django_db
def test_an_auditors_sync_read_is_audited_even_when_nothing_was_missed(
    auditor: User, uk_officer: User, room: Room
) -> None:
    say(uk_officer, room, "one")
    page = reading.read_since(user=auditor, room_id=room.pk, after_seq=1, via="ws")
    assert page.messages == []
    (row,) = viewed(page="sync")
    assert row.details["after"] == 1
    assert row.details["messages"] == 0


@pytest.mark.django_db
def test_a_members_reads_are_not_audited_as_auditor_views(uk_officer: User, room: Room) -> None:
    say(uk_officer, room, "one")
    reading.read_history(user=uk_officer, room_id=room.pk, via="api")
    reading.read_since(user=uk_officer, room_id=room.pk, after_seq=0, via="ws")
    assert viewed() == []


# --- REST: GET /api/v1/rooms/<id>/messages -----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "kind"), [("", "history"), ("?before=3", "history"), ("?after=1", "sync")]
)
def test_an_auditors_http_history_read_writes_its_audit_row(
    client: Client, login_as, auditor: User, uk_officer: User, room: Room, query: str, kind: str
) -> None:
    say(uk_officer, room, "one", "two", "three")
    login_as(client, auditor)
    response = client.get(f"/api/v1/rooms/{room.pk}/messages{query}")
    assert response.status_code == 200
    (row,) = viewed(page=kind, via="api")
    assert row.actor_id == auditor.pk
    assert row.details["messages"] == len(response.json()["messages"])


@pytest.mark.django_db
def test_an_auditor_refused_nothing_leaves_no_view_row_for_a_missing_room(
    client: Client, login_as, auditor: User
) -> None:
    login_as(client, auditor)
    assert client.get("/api/v1/rooms/999999/messages").status_code == 404
    assert viewed() == []


# --- WebSocket: history and sync ------------------------------------------------------------------


async def _socket(ws_headers: Any, user: User, room: Room) -> WebsocketCommunicator:
    headers = await database_sync_to_async(ws_headers)(user)
    communicator = WebsocketCommunicator(application, f"/ws/rooms/{room.pk}/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def _expect(communicator: WebsocketCommunicator, kind: str) -> dict[str, Any]:
    while True:
        frame = json.loads((await communicator.receive_output(2))["text"])
        if frame["type"] == kind:
            return frame
        assert frame["type"] in BACKGROUND, frame


@pytest.mark.django_db(transaction=True)
async def test_an_auditors_socket_history_writes_its_audit_row(
    ws_headers, auditor: User, uk_officer: User, room: Room
) -> None:
    limits.frame_rate.reset()
    await database_sync_to_async(say)(uk_officer, room, "one", "two")
    socket = await _socket(ws_headers, auditor, room)
    await socket.send_to(text_data=json.dumps({"type": "history", "limit": 10}))
    batch = await _expect(socket, "history.batch")
    await socket.disconnect()
    assert [m["body"] for m in batch["messages"]] == ["one", "two"]
    (row,) = await database_sync_to_async(viewed)(page="history", via="ws")
    assert (row.actor_id, row.target_id, row.details["messages"]) == (auditor.pk, str(room.pk), 2)


@pytest.mark.django_db(transaction=True)
async def test_an_auditors_socket_sync_writes_a_row_per_page_read(
    ws_headers, settings, auditor: User, uk_officer: User, room: Room
) -> None:
    limits.frame_rate.reset()
    settings.LIAISON_SYNC_PAGE_SIZE = 2
    await database_sync_to_async(say)(uk_officer, room, "one", "two", "three")
    socket = await _socket(ws_headers, auditor, room)
    await socket.send_to(text_data=json.dumps({"type": "sync", "after_seq": 0}))
    assert len((await _expect(socket, "sync.batch"))["messages"]) == 2
    assert len((await _expect(socket, "sync.batch"))["messages"]) == 1
    assert (await _expect(socket, "sync.done"))["last_seq"] == 3
    await socket.disconnect()
    rows = await database_sync_to_async(viewed)(page="sync", via="ws")
    assert [(row.details["after"], row.details["messages"]) for row in rows] == [(0, 2), (2, 1)]


@pytest.mark.django_db(transaction=True)
async def test_a_members_socket_reads_write_no_auditor_row(
    ws_headers, uk_officer: User, room: Room
) -> None:
    limits.frame_rate.reset()
    await database_sync_to_async(say)(uk_officer, room, "one")
    socket = await _socket(ws_headers, uk_officer, room)
    await socket.send_to(text_data=json.dumps({"type": "history"}))
    await _expect(socket, "history.batch")
    await socket.disconnect()
    assert await database_sync_to_async(viewed)() == []


# --- integrity failures ------------------------------------------------------------------------


def integrity_failures() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="message.integrity_failed").order_by("seq"))


@pytest.mark.django_db(transaction=True)
def test_a_message_that_fails_to_authenticate_writes_an_audit_event(
    uk_officer: User, room: Room
) -> None:
    first, _second = say(uk_officer, room, "original", "untouched")
    tamper(first)
    page = reading.read_history(user=uk_officer, room_id=room.pk, via="api")
    assert [m.get("error") for m in page.messages] == ["integrity", None]
    (row,) = integrity_failures()
    assert (row.target_type, row.target_id) == ("message", str(first.pk))
    assert row.exercise_id == room.exercise_id
    assert row.actor_id is None
    assert row.details == {"room": room.pk, "seq": 1, "key_version": first.key_version}


@pytest.mark.django_db
def test_an_integrity_failure_found_inside_a_transaction_is_recorded_when_it_commits(
    uk_officer: User, room: Room, django_capture_on_commit_callbacks
) -> None:
    (message,) = say(uk_officer, room, "original")
    tamper(message)
    with django_capture_on_commit_callbacks(execute=True):
        page = reading.read_since(user=uk_officer, room_id=room.pk, after_seq=0, via="ws")
        assert page.messages[0]["error"] == "integrity"
        assert integrity_failures() == []  # nothing written inside the reader's transaction
    assert len(integrity_failures()) == 1


@pytest.mark.django_db(transaction=True)
async def test_a_tampered_message_read_over_the_socket_writes_an_audit_event(
    ws_headers, uk_officer: User, room: Room
) -> None:
    limits.frame_rate.reset()
    (message,) = await database_sync_to_async(say)(uk_officer, room, "original")
    await database_sync_to_async(tamper)(message)
    socket = await _socket(ws_headers, uk_officer, room)
    await socket.send_to(text_data=json.dumps({"type": "sync", "after_seq": 0}))
    batch = await _expect(socket, "sync.batch")
    await socket.disconnect()
    assert batch["messages"][0]["error"] == "integrity"
    assert len(await database_sync_to_async(integrity_failures)()) == 1
