"""End to end through a real daphne server and the ``websockets`` client: two officers chat,
one drops off and catches up with ``sync``, a removed member is cut off, an oversized frame
is refused by the transport."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from liaison.models import Membership, Message, Room, User
from tests.conftest import LiveServer

pytestmark = [pytest.mark.live_server, pytest.mark.django_db(transaction=True)]

BACKGROUND = {"presence", "typing", "read"}


@pytest.fixture
def server(asgi_server: LiveServer) -> LiveServer:
    """The live server, warmed up: on a busy machine the first request of a fresh process can
    outlast daphne's WebSocket handshake timeout."""
    with urllib.request.urlopen(f"{asgi_server.url}/healthz", timeout=60) as response:
        assert response.status == 200
    return asgi_server


async def open_socket(server: LiveServer, ws_headers: Any, user: User, room: Room):
    headers = await database_sync_to_async(ws_headers)(user, server.url)
    cookie = dict(headers)[b"cookie"].decode()
    return await connect(
        f"{server.ws_url}/ws/rooms/{room.pk}/",
        additional_headers={"Cookie": cookie},
        origin=server.url,
        open_timeout=10,
    )


async def expect(
    ws: ClientConnection, kind: str, timeout: float = 5, skip: frozenset[str] = frozenset()
) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] == kind:
            return frame
        assert frame["type"] in BACKGROUND | skip, f"expected {kind}, got {frame}"


async def closed_with(ws: ClientConnection, timeout: float) -> int | None:
    try:
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            assert frame["type"] in BACKGROUND, frame
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def test_two_officers_send_acknowledge_and_receive_through_daphne(
    server: LiveServer, ws_headers, uk_officer: User, gz_officer: User, room: Room
) -> None:
    olivia = await open_socket(server, ws_headers, uk_officer, room)
    li = await open_socket(server, ws_headers, gz_officer, room)
    await expect(li, "presence")
    await olivia.send(
        json.dumps({"type": "message.send", "client_id": "live-1", "body": "Vessel sailed 14:20."})
    )
    assert await expect(olivia, "message.ack") == {
        "type": "message.ack",
        "client_id": "live-1",
        "seq": 1,
    }
    own = await expect(olivia, "message.new")
    received = await expect(li, "message.new")
    assert received == own
    assert received["message"]["body"] == "Vessel sailed 14:20."
    assert received["message"]["sender"]["id"] == uk_officer.pk

    # The same client_id again (an outbox resend): the same seq, nothing new stored.
    await olivia.send(
        json.dumps({"type": "message.send", "client_id": "live-1", "body": "Vessel sailed 14:20."})
    )
    assert (await expect(olivia, "message.ack"))["seq"] == 1
    assert await database_sync_to_async(Message.objects.filter(room=room).count)() == 1
    await olivia.close()
    await li.close()


async def test_an_officer_who_dropped_off_gets_all_fifty_missed_messages_in_order(
    server: LiveServer, ws_headers, uk_officer: User, gz_officer: User, room: Room
) -> None:
    li = await open_socket(server, ws_headers, gz_officer, room)
    await expect(li, "presence")
    await li.close()

    olivia = await open_socket(server, ws_headers, uk_officer, room)

    async def send(index: int) -> None:
        frame = {"type": "message.send", "client_id": f"burst-{index}", "body": f"crate {index}"}
        await olivia.send(json.dumps(frame))

    # Fifty messages, a few in flight at a time as the browser's outbox sends them (a server
    # refuses a send that waited too long behind its socket's earlier frames).
    window = 5
    for index in range(window):
        await send(index)
    own_messages = frozenset({"message.new"})
    acks = []
    for _ in range(50):
        acks.append((await expect(olivia, "message.ack", skip=own_messages))["seq"])
        if len(acks) + window <= 50:
            await send(len(acks) + window - 1)
    assert acks == list(range(1, 51))
    await olivia.close()

    li = await open_socket(server, ws_headers, gz_officer, room)
    await li.send(json.dumps({"type": "sync", "after_seq": 0}))
    messages = []
    while True:
        frame = json.loads(await asyncio.wait_for(li.recv(), 5))
        if frame["type"] in BACKGROUND:
            continue
        if frame["type"] == "sync.done":
            break
        assert frame["type"] == "sync.batch"
        messages.extend(frame["messages"])
    assert [m["seq"] for m in messages] == list(range(1, 51))
    assert [m["body"] for m in messages] == [f"crate {index}" for index in range(50)]
    assert frame == {"type": "sync.done", "last_seq": 50}
    await li.close()


def _delete(url: str, cookie: str) -> int:
    token = "a" * 32  # a CSRF token of our choosing, sent as cookie and header alike
    request = urllib.request.Request(
        url,
        method="DELETE",
        headers={
            "Cookie": f"{cookie}; {settings.CSRF_COOKIE_NAME}={token}",
            "X-CSRFToken": token,
            "Origin": url.split("/api/")[0],
            "Referer": url,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


async def test_a_removed_members_open_socket_is_closed_with_4403_within_a_second(
    server: LiveServer, ws_headers, admin: User, uk_officer: User, room: Room
) -> None:
    olivia = await open_socket(server, ws_headers, uk_officer, room)
    await expect(olivia, "presence")
    admin_cookie = dict(await database_sync_to_async(ws_headers)(admin))[b"cookie"].decode()
    url = f"{server.url}/api/v1/exercises/{room.exercise_id}/members/{uk_officer.pk}"

    status = await database_sync_to_async(_delete)(url, admin_cookie)
    removed_at = time.monotonic()
    assert status == 200
    assert await closed_with(olivia, timeout=1) == 4403
    assert time.monotonic() - removed_at < 1
    membership = await database_sync_to_async(Membership.objects.get)(user=uk_officer)
    assert membership.removed_at is not None


async def test_a_frame_over_the_transport_limit_is_closed_with_1009(
    server: LiveServer, ws_headers, uk_officer: User, room: Room
) -> None:
    olivia = await open_socket(server, ws_headers, uk_officer, room)
    await expect(olivia, "presence")
    body = "x" * (settings.LIAISON_WS_MAX_FRAME_BYTES + 1)
    await olivia.send(json.dumps({"type": "message.send", "client_id": "big", "body": body}))
    assert await closed_with(olivia, timeout=5) == 1009
    assert await database_sync_to_async(Message.objects.count)() == 0
