"""This process's sockets: one admission of a person at a time, so a browser restoring its tabs
waits on the event loop instead of holding database threads on the person's row lock."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from liaison.models import Room, User
from liaison.realtime import admission, db, sockets
from tests.test_realtime_consumer import Socket


async def _admit(user_id: int, log: list[str], name: str, pause: float = 0.02) -> None:
    async with sockets.admission_turn(user_id):
        log.append(f"{name} in")
        await asyncio.sleep(pause)
        log.append(f"{name} out")


async def test_one_person_is_admitted_one_socket_at_a_time() -> None:
    log: list[str] = []
    await asyncio.gather(*(_admit(7, log, name) for name in "abc"))
    # Each admission ends before the next begins, in the order they came.
    assert log == ["a in", "a out", "b in", "b out", "c in", "c out"]
    assert not sockets._turns


async def test_different_people_are_admitted_side_by_side() -> None:
    log: list[str] = []
    await asyncio.gather(_admit(7, log, "a"), _admit(8, log, "b"))
    assert log[:2] == ["a in", "b in"]
    assert not sockets._turns


async def test_a_failed_admission_gives_the_turn_to_the_next() -> None:
    async def fail() -> None:
        async with sockets.admission_turn(7):
            raise RuntimeError("the database went away")

    log: list[str] = []
    failing = asyncio.ensure_future(fail())
    await asyncio.sleep(0)
    await asyncio.wait_for(_admit(7, log, "next"), timeout=1)
    with pytest.raises(RuntimeError):
        await failing
    assert log == ["next in", "next out"]
    assert not sockets._turns


@pytest.mark.django_db(transaction=True)
async def test_sockets_of_one_person_opening_together_are_admitted_in_turn(
    ws_headers: Any, room: Room, uk_officer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    admitting: list[int] = []
    most = 0
    guard = threading.Lock()
    real_admit = admission.admit_socket

    def watched_admit(**kwargs: Any) -> admission.Admission:
        nonlocal most
        with guard:
            admitting.append(kwargs["user_id"])
            most = max(most, admitting.count(kwargs["user_id"]))
        try:
            time.sleep(0.05)  # long enough for the others to overlap, were they let in
            return real_admit(**kwargs)
        finally:
            with guard:
                admitting.remove(kwargs["user_id"])

    monkeypatch.setattr(admission, "admit_socket", watched_admit)
    headers = [await database_sync_to_async(ws_headers)(uk_officer) for _ in range(5)]
    communicators = [
        WebsocketCommunicator(application, f"/ws/rooms/{room.pk}/", headers=h) for h in headers
    ]
    try:
        await asyncio.gather(*(c.connect(timeout=5) for c in communicators))
        for communicator in communicators:
            socket = Socket(communicator)
            assert uk_officer.pk in (await socket.expect("presence", timeout=5))["online"]
            await socket.still_up()
            await socket.close()
        assert most == 1
        assert not sockets._turns
    finally:
        db.shutdown(wait=True)
