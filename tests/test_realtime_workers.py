"""Several real daphne workers on one PostgreSQL and one Redis: messages, presence, typing and
revocation cross between them, and a worker stopped with SIGTERM hands its clients over
cleanly (1012, no acknowledged message lost)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import Client
from websockets.exceptions import ConnectionClosed

from liaison.models import Message, Room, User
from tests.conftest import sign_in
from tests.realtime_support import Recorder, Worker, Workers, needs_shared_layer, open_socket

pytestmark = [pytest.mark.live_server, pytest.mark.django_db(transaction=True)]


def _admin_request(worker: Worker, admin: User, method: str, path: str) -> int:
    """An admin's API call through ``worker``'s HTTP side, as a browser session would make it."""
    client = sign_in(Client(), admin)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    token = "x" * 32
    request = urllib.request.Request(
        f"{worker.url}{path}",
        method=method,
        headers={
            "Cookie": f"{settings.SESSION_COOKIE_NAME}={session}; "
            f"{settings.CSRF_COOKIE_NAME}={token}",
            "X-CSRFToken": token,
            "Origin": worker.url,
            "Referer": f"{worker.url}/",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


async def test_officers_on_two_workers_chat_see_each_other_and_a_removal_crosses_over(
    workers: Workers, ws_headers: Any, admin: User, uk_officer: User, gz_officer: User, room: Room
) -> None:
    needs_shared_layer()
    london, guangzhou = workers.start(), workers.start()
    olivia = Recorder(await open_socket(london, ws_headers, uk_officer, room)).start()
    await olivia.wait_for("presence", timeout=10)
    li = Recorder(await open_socket(guangzhou, ws_headers, gz_officer, room)).start()
    online = await li.wait_for("presence", timeout=10)
    assert online["online"] == sorted([uk_officer.pk, gz_officer.pk])
    # Presence crosses: London hears Guangzhou arrive.
    await olivia.wait_for("presence", joined=[gz_officer.pk])

    await olivia.ws.send(json.dumps({"type": "message.send", "client_id": "a", "body": "hi"}))
    await olivia.wait_for("message.ack", client_id="a")
    assert (await li.wait_for("message.new"))["message"]["body"] == "hi"
    await li.ws.send(json.dumps({"type": "message.send", "client_id": "b", "body": "你好"}))
    assert (await li.wait_for("message.ack", client_id="b"))["seq"] == 2
    await li.ws.send(json.dumps({"type": "typing"}))
    assert (await olivia.wait_for("typing"))["user"]["id"] == gz_officer.pk
    assert [m["seq"] for m in olivia.messages()] == [1, 2]

    # The admin removes Li Wei through the London worker; the socket in Guangzhou closes.
    status = await database_sync_to_async(_admin_request)(
        london, admin, "DELETE", f"/api/v1/exercises/{room.exercise_id}/members/{gz_officer.pk}"
    )
    assert status == 200
    started = time.monotonic()
    assert await li.wait_closed(timeout=5) == 4403
    assert li.closed_at - started < 1.0
    await olivia.wait_for("presence", left=[gz_officer.pk])
    await olivia.ws.close()


class OutboxClient:
    """A browser-like client: every message waits in an outbox until acknowledged, and is
    resent with the same client_id after a reconnect."""

    def __init__(self, name: str, user: User) -> None:
        self.name = name
        self.user = user
        self.outbox: dict[str, str] = {}
        self.acked: dict[str, int] = {}
        self.close_codes: list[int | None] = []
        self.sent = 0

    async def session(self, worker: Worker, ws_headers: Any, room: Room, *, stop: asyncio.Event):
        ws = await open_socket(worker, ws_headers, self.user, room)
        reader = asyncio.create_task(self._read(ws))
        try:
            for client_id, body in list(self.outbox.items()):
                await ws.send(
                    json.dumps({"type": "message.send", "client_id": client_id, "body": body})
                )
            while not stop.is_set() and not reader.done():
                self.sent += 1
                client_id = f"{self.name}-{self.sent}"
                self.outbox[client_id] = client_id
                await ws.send(
                    json.dumps({"type": "message.send", "client_id": client_id, "body": client_id})
                )
                await asyncio.sleep(0.01)
        except ConnectionClosed:
            pass
        await asyncio.wait_for(reader, 10)
        return ws

    async def _read(self, ws: Any) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for text in ws:
                frame = json.loads(text)
                if frame["type"] == "message.ack":
                    self.acked[frame["client_id"]] = frame["seq"]
                    self.outbox.pop(frame["client_id"], None)
        self.close_codes.append(ws.close_code)

    async def drain(self, worker: Worker, ws_headers: Any, room: Room) -> None:
        """Reconnect, resend what was never acknowledged, wait for every ack."""
        ws = await open_socket(worker, ws_headers, self.user, room)
        reader = asyncio.create_task(self._read(ws))
        for client_id, body in list(self.outbox.items()):
            await ws.send(
                json.dumps({"type": "message.send", "client_id": client_id, "body": body})
            )
        deadline = time.monotonic() + 10
        while self.outbox and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await ws.close()
        await asyncio.wait_for(reader, 10)


async def test_sigterm_closes_sockets_with_1012_and_no_acknowledged_message_is_lost(
    workers: Workers,
    ws_headers: Any,
    uk_officer: User,
    gz_officer: User,
    uk_coordinator: User,
    room: Room,
) -> None:
    needs_shared_layer()
    doomed = workers.start()
    clients = [
        OutboxClient(name, user)
        for name, user in (("olivia", uk_officer), ("li", gz_officer), ("casey", uk_coordinator))
    ]
    stop = asyncio.Event()
    sessions = [
        asyncio.create_task(client.session(doomed, ws_headers, room, stop=stop))
        for client in clients
    ]
    deadline = time.monotonic() + 20
    while not all(len(client.acked) >= 5 for client in clients):  # all three are sending
        assert time.monotonic() < deadline, [len(client.acked) for client in clients]
        await asyncio.sleep(0.05)
    stopped_at = time.monotonic()
    doomed.terminate()
    await asyncio.gather(*sessions)
    exit_code = await asyncio.to_thread(doomed.process.wait, 10)
    took = time.monotonic() - stopped_at
    assert exit_code is not None
    assert took < 5.0, f"the worker took {took:.2f}s to exit"
    assert [client.close_codes[0] for client in clients] == [1012, 1012, 1012]

    successor = workers.start()
    for client in clients:
        await client.drain(successor, ws_headers, room)
        assert client.outbox == {}, f"{client.name} still waits for {sorted(client.outbox)}"

    stored = await database_sync_to_async(
        lambda: list(Message.objects.filter(room=room).values_list("client_id", "seq"))
    )()
    by_client_id = dict(stored)
    assert len(by_client_id) == len(stored), "a client_id was stored twice"
    for client in clients:
        for client_id, seq in client.acked.items():
            assert by_client_id.get(client_id) == seq, f"acknowledged {client_id} is lost"
    seqs = sorted(seq for _, seq in stored)
    assert seqs == list(range(1, len(seqs) + 1)), "the room's seq has a gap"
