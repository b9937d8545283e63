"""Real daphne worker processes for the real-time tests: started as the deployment starts them
(``daphne config.asgi:application``), on the test database and the test channel layer, so
several can share one PostgreSQL and one Redis, and one can be sent SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection, connections
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from liaison.models import Room, User

BASE_DIR = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _database_url() -> str:
    """The test database as a URL the worker processes can open."""
    data = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{data['NAME']}"
    user = data.get("USER") or "postgres"
    password = f":{data['PASSWORD']}" if data.get("PASSWORD") else ""
    host = data.get("HOST") or "127.0.0.1"
    port = data.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{data['NAME']}"


def needs_shared_layer() -> None:
    """Several processes only meet on Redis; PostgreSQL is what production runs."""
    if "Redis" not in settings.CHANNEL_LAYERS["default"]["BACKEND"]:
        pytest.skip("needs Redis (REDIS_URL): worker processes share the channel layer there")
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL): several workers write concurrently")


@dataclass
class Worker:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)


@dataclass
class Workers:
    tmp: Path
    started: list[Worker] = field(default_factory=list)

    def start(self, **env: str) -> Worker:
        port = _free_port()
        log = self.tmp / f"daphne-{port}.log"
        environment = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "LIAISON_VAR_DIR": str(settings.VAR_DIR),
            # The test's own checkpoint store (conftest), shared with the worker.
            "LIAISON_CHECKPOINT_DIR": settings.STORAGES["audit_checkpoints"]["OPTIONS"]["location"],
            "LIAISON_WS_RATE_PER_10S": "100000",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "--websocket-max-message-size",
                str(settings.LIAISON_WS_MAX_FRAME_BYTES),
                "config.asgi:application",
            ],
            cwd=BASE_DIR,
            env=environment,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        worker = Worker(port, process, log)
        self.started.append(worker)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{worker.url}/healthz", timeout=5) as response:
                    if response.status == 200:
                        return worker
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"daphne did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop_all(self) -> None:
        for worker in self.started:
            if worker.process.poll() is None:
                worker.process.kill()
            with contextlib.suppress(Exception):
                worker.process.wait(10)


@pytest.fixture
def workers(transactional_db: None, tmp_path: Path) -> Iterator[Workers]:
    connections.close_all()
    pool = Workers(tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()
        connections.close_all()


async def open_socket(worker: Worker, ws_headers: Any, user: User, room: Room) -> ClientConnection:
    headers = await database_sync_to_async(ws_headers)(user, worker.url)
    cookie = dict(headers)[b"cookie"].decode()
    return await connect(
        f"{worker.ws_url}/ws/rooms/{room.pk}/",
        additional_headers={"Cookie": cookie},
        origin=worker.url,
        open_timeout=20,
        max_size=None,
    )


@dataclass
class Recorder:
    """Everything one socket receives, with arrival times, until it closes."""

    ws: ClientConnection
    frames: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    close_code: int | None = None
    closed_at: float | None = None
    task: asyncio.Task[None] | None = None

    def start(self) -> Recorder:
        self.task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        try:
            async for text in self.ws:
                self.frames.append((time.monotonic(), json.loads(text)))
        except ConnectionClosed:
            pass
        self.closed_at = time.monotonic()
        self.close_code = self.ws.close_code

    async def wait_for(self, kind: str, timeout: float = 5, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, frame in self.frames:
                if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                    return frame
            await asyncio.sleep(0.01)
        raise AssertionError(f"no {kind} {match} within {timeout}s: {self.frames[-5:]}")

    async def wait_closed(self, timeout: float) -> int | None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        return self.close_code

    def messages(self, after: float | None = None) -> list[dict[str, Any]]:
        return [
            frame["message"]
            for at, frame in self.frames
            if frame["type"] in {"message.new", "message.updated"} and (after is None or at > after)
        ]


class Sender:
    """A member sending a steady stream of messages on its own socket, counting acks."""

    def __init__(self, ws: ClientConnection, *, interval: float = 0.005) -> None:
        self.ws = ws
        self.interval = interval
        self.acked: dict[str, int] = {}
        self.sent = 0
        self.running = True
        self.task: asyncio.Task[None] | None = None
        self.reader: asyncio.Task[None] | None = None

    def start(self) -> Sender:
        self.task = asyncio.create_task(self._send())
        self.reader = asyncio.create_task(self._read())
        return self

    async def _send(self) -> None:
        while self.running:
            self.sent += 1
            client_id = f"s{self.sent}"
            await self.ws.send(
                json.dumps({"type": "message.send", "client_id": client_id, "body": client_id})
            )
            await asyncio.sleep(self.interval)

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for text in self.ws:
                frame = json.loads(text)
                if frame["type"] == "message.ack":
                    self.acked[frame["client_id"]] = frame["seq"]

    async def stop(self) -> None:
        self.running = False
        for task in (self.task, self.reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.ws.close()
