"""Request bodies (``liaison/request_bodies.py`` and the daphne patch in
``liaison/realtime/server.py``): a body over its route's limit is refused from the headers,
before the server reads or stores it; the upload route's body is streamed into the encrypting
upload handler; and no plaintext body byte reaches the disk on the way.

The server tests run a real daphne whose temporary files are counted and kept in an empty folder
of the test's own (``tests/server_support.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connections

from liaison.models import Attachment, Room, User
from liaison.request_bodies import (
    READ_AHEAD_BYTES,
    BodyLimitMiddleware,
    body_rule,
    body_rule_for_target,
)
from tests import attachments_support as support
from tests import server_support
from tests.attachments_support import BOUNDARY, MIB, multipart
from tests.conftest import session_cookie_header
from tests.server_support import WatchedServer

# Each test's attachments go to a store of its own; the server's temporary files are watched.
store = support.store
watched_server = server_support.watched_server

CSRF = "c" * 32


# --- the rule -----------------------------------------------------------------------------------


def test_the_upload_route_takes_the_file_limit_plus_framing_and_every_other_route_one_mib(
    settings: Any,
) -> None:
    settings.LIAISON_ATTACHMENT_MAX_BYTES = 5 * MIB

    upload = body_rule("/api/v1/rooms/7/attachments")
    assert (upload.max_bytes, upload.streamed) == (5 * MIB + 64 * 1024, True)
    for path in ("/api/v1/rooms/7/messages", "/login/", "/no/such/route", "/"):
        assert body_rule(path) == body_rule("/api/v1/session")
    assert body_rule("/login/").max_bytes == 1 * MIB
    assert body_rule("/login/").streamed is False

    settings.LIAISON_REQUEST_MAX_BYTES = 4096
    assert body_rule("/api/v1/rooms/7/messages").max_bytes == 4096


def test_the_server_reads_the_rule_from_the_raw_request_target() -> None:
    upload = body_rule("/api/v1/rooms/7/attachments")

    assert body_rule_for_target(b"/api/v1/rooms/7/attachments?x=1") == upload
    assert body_rule_for_target(b"http://liaison.example/api/v1/rooms/7/attachments") == upload
    assert body_rule_for_target(b"/api/v1/rooms/%37/attachments") == upload
    assert (
        body_rule_for_target(b"/prefix/api/v1/rooms/7/attachments", root_path="/prefix") == upload
    )
    assert body_rule_for_target(b"/api/v1/rooms/\xff/attachments").streamed is False


# --- the ASGI middleware (any server) -----------------------------------------------------------


def scope_for(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "root_path": "", "headers": headers}


async def call(middleware: BodyLimitMiddleware, scope: dict[str, Any], pieces: list[bytes]) -> Any:
    sent: list[dict[str, Any]] = []
    queue = [
        {"type": "http.request", "body": piece, "more_body": index < len(pieces) - 1}
        for index, piece in enumerate(pieces)
    ]
    delivered = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        delivered += 1
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    return sent, delivered


async def test_the_middleware_refuses_a_declared_length_without_calling_the_application() -> None:
    called = []

    async def application(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)

    scope = scope_for("/api/v1/rooms/7/messages", [(b"content-length", str(2 * MIB).encode())])
    sent, delivered = await call(BodyLimitMiddleware(application), scope, [b"x" * 1000])

    assert called == []
    assert delivered == 0
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "too_large"


async def test_the_middleware_cuts_off_an_undeclared_body_at_the_limit() -> None:
    seen: list[dict[str, Any]] = []

    async def application(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"too late"})

    scope = scope_for("/api/v1/rooms/7/messages", [])
    sent, delivered = await call(BodyLimitMiddleware(application), scope, [b"x" * 400_000] * 6)

    assert delivered == 3  # 1.2 MB seen: cut off there, the rest never read
    assert seen[-1] == {"type": "http.disconnect"}
    assert [message.get("status") for message in sent[:1]] == [413]
    assert all(b"too late" not in message.get("body", b"") for message in sent)


async def test_the_middleware_lets_a_body_within_the_limit_through() -> None:
    bodies = []

    async def application(scope: Any, receive: Any, send: Any) -> None:
        bodies.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    scope = scope_for("/api/v1/rooms/7/messages", [(b"content-length", b"5")])
    sent, _ = await call(BodyLimitMiddleware(application), scope, [b"hello"])

    assert bodies == [b"hello"]
    assert sent[0]["status"] == 204


# --- the upload body, streamed by the application -------------------------------------------------


def cookie_of(user: User) -> bytes:
    """A signed-in session cookie, made in a worker thread whose connection is closed after."""
    try:
        return session_cookie_header(user)[1]
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
async def test_the_upload_body_goes_into_the_encrypting_handler_as_it_arrives(
    uk_officer: User, room: Room, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Driven through the ASGI application itself: the file's first piece is encrypted when only
    the first few pieces of the body have been received, and Django's body spool is never
    opened."""
    from asgiref.sync import sync_to_async

    from config.asgi import django_asgi_app
    from liaison.services.attachments.uploads import AttachmentUpload

    def no_spool(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the request body was spooled to a temporary file")

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", no_spool)
    monkeypatch.setattr(tempfile, "TemporaryFile", no_spool)
    data = b"container MSKU1234565 seized\n" * 70_000  # about 2 MB of text
    body = multipart("evidence.txt", data, "text/plain")
    pieces = [body[start : start + 64 * 1024] for start in range(0, len(body), 64 * 1024)]
    delivered = 0
    delivered_at_first_write: list[int] = []
    original_write = AttachmentUpload.write

    def write(self: AttachmentUpload, chunk: bytes) -> None:
        if not delivered_at_first_write:
            delivered_at_first_write.append(delivered)
        original_write(self, chunk)

    monkeypatch.setattr(AttachmentUpload, "write", write)
    cookie = await sync_to_async(cookie_of)(uk_officer)
    finished = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered == len(pieces):
            await finished.wait()
            return {"type": "http.disconnect"}
        delivered += 1
        return {
            "type": "http.request",
            "body": pieces[delivered - 1],
            "more_body": delivered < len(pieces),
        }

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            finished.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/api/v1/rooms/{room.pk}/attachments",
        "raw_path": f"/api/v1/rooms/{room.pk}/attachments".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
            (b"content-length", str(len(body)).encode()),
            (b"cookie", cookie + f"; {django_settings.CSRF_COOKIE_NAME}={CSRF}".encode()),
            (b"x-csrftoken", CSRF.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    await django_asgi_app(scope, receive, send)

    assert sent[0]["status"] == 201, sent
    payload = json.loads(b"".join(message.get("body", b"") for message in sent[1:]))
    assert payload["attachment"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(pieces) > 20
    assert delivered_at_first_write
    # Only the read-ahead (and the piece it ends in) had arrived when encryption began.
    assert delivered_at_first_write[0] <= READ_AHEAD_BYTES // (64 * 1024) + 1


# --- through a real daphne ----------------------------------------------------------------------


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(sock: socket.socket) -> tuple[int, Any, bytes]:
    """Status, headers (any case) and body of the answer on ``sock``."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.msg, response.read()


def upload_headers(user: User, length: int) -> dict[str, str]:
    cookie = session_cookie_header(user)[1].decode()
    return {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(length),
        "Cookie": f"{cookie}; {django_settings.CSRF_COOKIE_NAME}={CSRF}",
        "X-CSRFToken": CSRF,
    }


def assert_nothing_spooled(server: WatchedServer) -> None:
    assert (server.anonymous.value, server.named.value) == (0, 0)
    assert list(server.folder.iterdir()) == []
    assert server.open_files() == []


@pytest.mark.live_server
def test_a_declared_200_mib_upload_is_refused_at_once_and_nothing_is_spooled(
    watched_server: WatchedServer, uk_officer: User, room: Room
) -> None:
    path = f"/api/v1/rooms/{room.pk}/attachments"
    with watched_server.connect() as sock:
        started = time.monotonic()
        sock.sendall(request_head("POST", path, upload_headers(uk_officer, 200 * MIB)))
        sock.sendall(b"A" * 256 * 1024)  # the start of the body, which nobody reads
        status, headers, body = read_answer(sock)
        elapsed = time.monotonic() - started

    assert status == 413
    assert elapsed < 1.0
    assert headers["Connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == "too_large"
    assert error["max_bytes"] == django_settings.LIAISON_ATTACHMENT_MAX_BYTES + 64 * 1024
    assert_nothing_spooled(watched_server)
    assert not Attachment.objects.exists()
    # The server is none the worse for it.
    answer = http.client.HTTPConnection(watched_server.host, watched_server.port, timeout=10)
    answer.request("GET", "/healthz")
    assert answer.getresponse().status == 200


@pytest.mark.live_server
def test_an_ordinary_route_refuses_a_2_mib_body_from_its_headers(
    watched_server: WatchedServer, uk_officer: User, room: Room
) -> None:
    headers = upload_headers(uk_officer, 2 * MIB)
    headers["Content-Type"] = "application/json"
    with watched_server.connect() as sock:
        started = time.monotonic()
        sock.sendall(request_head("POST", f"/api/v1/rooms/{room.pk}/messages", headers))
        status, _, body = read_answer(sock)

    assert status == 413
    assert time.monotonic() - started < 1.0
    assert json.loads(body)["error"]["max_bytes"] == 1 * MIB
    assert_nothing_spooled(watched_server)


@pytest.mark.live_server
def test_a_chunked_body_is_cut_off_at_the_limit(
    watched_server: WatchedServer, uk_officer: User, room: Room
) -> None:
    headers = upload_headers(uk_officer, 0)
    del headers["Content-Length"]
    headers |= {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    piece = b"x" * 64 * 1024
    with watched_server.connect() as sock:
        sock.sendall(request_head("POST", f"/api/v1/rooms/{room.pk}/messages", headers))
        for _ in range(32):  # 2 MiB in all, never terminated
            sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        status, _, body = read_answer(sock)

    assert status == 413
    assert json.loads(body)["error"]["code"] == "too_large"
    assert watched_server.named.value == 0
    assert watched_server.open_files() == []


@pytest.mark.live_server
def test_no_100_continue_is_sent_before_the_refusal(
    watched_server: WatchedServer, uk_officer: User, room: Room
) -> None:
    headers = upload_headers(uk_officer, 200 * MIB) | {"Expect": "100-continue"}
    with watched_server.connect() as sock:
        sock.sendall(request_head("POST", f"/api/v1/rooms/{room.pk}/attachments", headers))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)

    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in head


@pytest.mark.live_server
def test_an_upload_is_spooled_only_as_ciphertext_and_arrives_intact(
    watched_server: WatchedServer, uk_officer: User, room: Room
) -> None:
    """The positive control: a normal upload works, and while daphne holds its body, the one
    temporary file it uses holds none of the file's text."""
    marker = b"SEIZED-BALE-07 container MSKU1234565\n"
    data = marker * 80_000  # about 3 MB
    body = multipart("evidence.txt", data, "text/plain")
    half = len(body) // 2
    path = f"/api/v1/rooms/{room.pk}/attachments"
    with watched_server.connect(timeout=30) as sock:
        sock.sendall(request_head("POST", path, upload_headers(uk_officer, len(body))))
        sock.sendall(body[:half])
        deadline = time.monotonic() + 10
        spooled = b""
        while time.monotonic() < deadline:
            files = watched_server.open_files()
            if files and os.stat(files[0]).st_size >= half - 64 * 1024:
                spooled = Path(files[0]).read_bytes()
                break
            time.sleep(0.05)
        sock.sendall(body[half:])
        status, _, answer = read_answer(sock)

    assert len(spooled) >= half - 64 * 1024, "the server's spool file was not found"
    assert marker not in spooled
    assert b"MSKU" not in spooled
    assert status == 201, answer
    assert json.loads(answer)["attachment"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert (watched_server.anonymous.value, watched_server.named.value) == (
        1,
        0,
    )  # the sealed spool only


@pytest.mark.live_server
def test_a_file_posted_to_an_ordinary_form_is_never_written_to_a_temporary_file(
    watched_server: WatchedServer,
) -> None:
    body = multipart("scan.pdf", b"%PDF-1.7\n" + b"P" * 600_000, "application/pdf")
    headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(len(body)),
        "Cookie": f"{django_settings.CSRF_COOKIE_NAME}={CSRF}",
    }
    with watched_server.connect(timeout=30) as sock:
        sock.sendall(request_head("POST", "/login/", headers) + body)
        status, _, _ = read_answer(sock)

    assert status == 403  # the CSRF check read the form (no token in it) and refused
    assert watched_server.named.value == 0
