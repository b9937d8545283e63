"""The daphne tuning: request bodies stay in Twisted's spool until the application reads them,
over-limit bodies are refused from the headers (live tests: ``test_request_bodies.py``), and
large buffers go back to the system."""

from __future__ import annotations

import io
from typing import Any

import pytest

from liaison.realtime.server import SpooledBodyQueue, stream_request_bodies_from_spool


def fill_as_daphne_does(queue: SpooledBodyQueue, content: io.BytesIO, size: int) -> None:
    content.seek(0)
    while True:
        chunk = content.read(size)
        more_body = len(chunk) == size
        queue.put_nowait({"type": "http.request", "body": chunk, "more_body": more_body})
        if not more_body:
            break


async def test_queued_chunks_hold_no_body_bytes_until_read() -> None:
    body = bytes(range(256)) * 100  # 25,600 bytes
    content = io.BytesIO(body)
    queue = SpooledBodyQueue(content)
    fill_as_daphne_does(queue, content, 4096)
    queued = list(queue._queue)
    assert len(queued) == 7
    assert all(item["body"] == b"" for item in queued)
    received = []
    while True:
        message = await queue.get()
        received.append(message["body"])
        if not message["more_body"]:
            break
    assert b"".join(received) == body
    assert [len(part) for part in received] == [4096] * 6 + [1024]


async def test_a_closed_spool_reads_as_a_disconnect() -> None:
    content = io.BytesIO(b"x" * 10_000)
    queue = SpooledBodyQueue(content)
    fill_as_daphne_does(queue, content, 4096)
    content.close()
    assert await queue.get() == {"type": "http.disconnect"}


async def test_other_messages_pass_through_unchanged() -> None:
    queue = SpooledBodyQueue(io.BytesIO(b""))
    queue.put_nowait({"type": "http.disconnect"})
    queue.put_nowait({"type": "http.request", "body": b"", "more_body": False})
    assert await queue.get() == {"type": "http.disconnect"}
    assert await queue.get() == {"type": "http.request", "body": b"", "more_body": False}


def test_the_server_patch_is_installed_once() -> None:
    from daphne.server import Server

    assert stream_request_bodies_from_spool() is True
    patched = Server.create_application
    assert stream_request_bodies_from_spool() is True
    assert Server.create_application is patched


def test_the_body_limits_are_installed_once() -> None:
    from daphne.http_protocol import WebRequest

    from liaison.realtime.server import limit_request_bodies

    assert limit_request_bodies() is True
    patched = (WebRequest.gotLength, WebRequest.handleContentChunk, WebRequest.requestReceived)
    assert limit_request_bodies() is True
    assert (WebRequest.gotLength, WebRequest.handleContentChunk, WebRequest.requestReceived) == (
        patched
    )


def test_large_buffers_are_given_back_to_the_system_under_glibc() -> None:
    import platform

    from liaison.realtime.server import return_large_buffers_to_the_system

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert return_large_buffers_to_the_system() is True


def test_daphne_walks_its_connections_every_few_seconds_not_every_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from daphne.server import Server
    from twisted.internet import reactor

    from liaison.realtime import server

    assert server.sweep_connections_less_often()
    scheduled: list[float] = []
    monkeypatch.setattr(reactor, "callLater", lambda delay, *args: scheduled.append(delay))

    class Finished:
        def done(self) -> bool:
            return True

        def exception(self) -> None:
            return None

    class FakeServer:
        def __init__(self) -> None:
            # A socket that closed and whose application has finished: the walk forgets it.
            self.connections = {"closed": {"disconnected": 1.0, "application_instance": Finished()}}
            self.application_close_timeout = 10

        application_checker = Server.application_checker

    fake = FakeServer()
    ticks = server.SWEEP_SECONDS  # one a second
    for _ in range(ticks - 1):
        fake.application_checker()
        assert "closed" in fake.connections  # not walked on the ticks in between
    fake.application_checker()
    assert fake.connections == {}
    assert scheduled == [1] * ticks  # the timer keeps its one-second tick


def test_autobahn_builds_its_debug_text_only_when_it_is_shown() -> None:
    from autobahn.twisted import websocket as twisted_websocket
    from autobahn.websocket import protocol

    from liaison.realtime import server_connections

    assert server_connections.format_debug_text_only_when_shown()
    assert server_connections.format_debug_text_only_when_shown()  # idempotent
    deferred = protocol.pformat([("autoPingInterval", 20, "Factory")])
    assert isinstance(deferred, server_connections._ShownLater)
    assert str(deferred) == "[('autoPingInterval', 20, 'Factory')]"
    assert f"\n{deferred}" == "\n[('autoPingInterval', 20, 'Factory')]"
    for module in (protocol, twisted_websocket):
        assert isinstance(
            module.hltype(protocol.WebSocketProtocol.sendData), server_connections._ShownLater
        )
        assert "sendData" in str(module.hltype(protocol.WebSocketProtocol.sendData))
        assert "17" in f"{module.hlval(17)}"
    timings = protocol.Timings()
    timings.track("opened")
    assert str(timings).startswith("{'opened':")  # the one caller that needs a str gets one


def test_a_frame_for_a_client_that_has_gone_is_dropped_not_raised() -> None:
    from daphne.ws_protocol import WebSocketProtocol

    from liaison.realtime import server_connections

    assert server_connections.drop_frames_for_departed_clients()
    sent: list[bytes] = []

    class Departed(WebSocketProtocol):
        def __init__(self, state: int) -> None:
            self.state = state
            self.client_addr = ("192.0.2.1", 50000)

        def sendMessage(self, payload: bytes, isBinary: bool = False) -> None:
            if self.state != self.STATE_OPEN:
                raise AssertionError("sent on a closed protocol")
            sent.append(payload)

    Departed(WebSocketProtocol.STATE_OPEN).serverSend("kept")
    Departed(WebSocketProtocol.STATE_CLOSING).serverSend("dropped")
    Departed(WebSocketProtocol.STATE_CLOSED).serverSend("dropped", True)
    assert sent == [b"kept"]


def test_idle_sockets_are_pinged_at_the_configured_interval_unless_the_command_line_says(
    settings: Any,
) -> None:
    from daphne.server import Server

    from liaison.realtime import server_connections

    settings.LIAISON_WS_PING_SECONDS = 45
    assert server_connections.ping_idle_sockets_less_often()
    assert server_connections.ping_idle_sockets_less_often()  # idempotent
    default = Server(application=None, endpoints=["tcp:port=0"], ping_interval=20)
    chosen = Server(application=None, endpoints=["tcp:port=0"], ping_interval=7)
    assert (default.ping_interval, chosen.ping_interval) == (45, 7)
