"""The WebSocket router: unknown paths get the forbidden-room answer (4403, audited), never a
server error; only the site's own origins (scheme, host and port) may open a socket."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from config.asgi import application
from liaison.models import AuditEvent, Room, User
from liaison.realtime.origins import origin_allowed, parse_origin
from liaison.realtime.routing import MAX_ROOM_ID

SITE = "http://127.0.0.1:8000"


def _denials() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="access.denied").order_by("pk"))


async def _close_code(communicator: WebsocketCommunicator) -> int:
    connected, _ = await communicator.connect()
    assert connected is True  # accepted, so the client sees the close code
    message = await communicator.receive_output(timeout=5)
    assert message["type"] == "websocket.close"
    await communicator.wait()
    return message["code"]


@pytest.mark.django_db(transaction=True)
async def test_a_websocket_to_an_unknown_path_is_refused() -> None:
    communicator = WebsocketCommunicator(
        application, "/ws/nowhere/", headers=[(b"origin", SITE.encode())]
    )
    assert await _close_code(communicator) == 4401  # nobody signed in: no audit row either
    assert await database_sync_to_async(_denials)() == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path",
    ["/ws/rooms/%D9%A1/", "/ws/rooms/-1/", "/ws/rooms/0/", "/ws/rooms/abc/", "/ws/nowhere/"],
)
async def test_paths_without_a_room_close_4403_and_are_audited(
    path: str, uk_officer: User, ws_headers
) -> None:
    headers = await database_sync_to_async(ws_headers)(uk_officer)
    communicator = WebsocketCommunicator(application, path, headers=headers)
    assert await _close_code(communicator) == 4403
    (denial,) = await database_sync_to_async(_denials)()
    assert denial.actor_id == uk_officer.pk
    assert denial.details["via"] == "ws"


@pytest.mark.django_db(transaction=True)
async def test_a_150_digit_room_id_closes_4403_and_its_denial_is_audited(
    uk_officer: User, room: Room, ws_headers
) -> None:
    path = "/ws/rooms/" + "9" * 150 + "/"
    headers = await database_sync_to_async(ws_headers)(uk_officer)
    assert await _close_code(WebsocketCommunicator(application, path, headers=headers)) == 4403
    (denial,) = await database_sync_to_async(_denials)()
    assert denial.actor_id == uk_officer.pk
    assert denial.details["path"] == path[:200]


@pytest.mark.django_db(transaction=True)
async def test_the_largest_room_id_is_a_room_lookup_not_an_overflow(
    uk_officer: User, room: Room, ws_headers
) -> None:
    headers = await database_sync_to_async(ws_headers)(uk_officer)
    path = f"/ws/rooms/{MAX_ROOM_ID}/"
    assert await _close_code(WebsocketCommunicator(application, path, headers=headers)) == 4403
    (denial,) = await database_sync_to_async(_denials)()
    assert denial.details["path"] == path


def test_an_overlong_path_is_audited_truncated() -> None:
    from liaison.realtime.refused import PATH_CHARS, requested_path

    raw = b"/ws/" + b"%D9%A1" * 100
    assert requested_path({"raw_path": raw, "path": "ignored"}) == raw.decode()[:PATH_CHARS]


@pytest.mark.django_db(transaction=True)
async def test_a_websocket_from_a_foreign_origin_is_refused() -> None:
    communicator = WebsocketCommunicator(
        application, "/ws/rooms/1/", headers=[(b"origin", b"https://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert connected is False
    await communicator.disconnect()


# --- the origin check, scheme + host + port --------------------------------------------------------


def _scope(origin: str | None, host: str | None = "127.0.0.1:8000", **extra: str) -> dict:
    headers = []
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if host is not None:
        headers.append((b"host", host.encode()))
    headers += [(name.encode(), value.encode()) for name, value in extra.items()]
    return {"type": "websocket", "headers": headers}


def test_parse_origin_makes_default_ports_explicit() -> None:
    assert parse_origin("https://Liaison.Example") == ("https", "liaison.example", 443)
    assert parse_origin("http://127.0.0.1:8000") == ("http", "127.0.0.1", 8000)
    assert parse_origin("null") is None
    assert parse_origin("ftp://x.example") is None
    assert parse_origin("http://x.example:99999") is None


@override_settings(LIAISON_BASE_URL="https://liaison.example", CSRF_TRUSTED_ORIGINS=[])
def test_only_the_requested_origin_passes_by_scheme_host_and_port() -> None:
    assert origin_allowed(_scope("http://127.0.0.1:8000"))
    assert not origin_allowed(_scope("http://127.0.0.1:9999"))  # another port of the host
    assert not origin_allowed(_scope("https://127.0.0.1:8000"))  # another scheme
    assert not origin_allowed(_scope("http://localhost:8000"))  # another (allowed) host
    assert not origin_allowed(_scope(None))
    assert not origin_allowed(_scope("null"))
    # A Host outside ALLOWED_HOSTS makes no origin its own.
    assert not origin_allowed(_scope("http://evil.example:8000", host="evil.example:8000"))
    # Two Origin headers: nothing to trust.
    assert not origin_allowed(
        {"headers": [(b"origin", b"http://127.0.0.1:8000")] * 2 + [(b"host", b"127.0.0.1:8000")]}
    )


@override_settings(
    ALLOWED_HOSTS=["liaison.example"],
    CSRF_TRUSTED_ORIGINS=["https://liaison.example", "https://*.partner.example"],
    LIAISON_BASE_URL="https://liaison.example",
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
def test_configured_origins_pass_exactly_behind_the_proxy() -> None:
    assert origin_allowed(_scope("https://liaison.example", host="liaison.example"))
    assert origin_allowed(_scope("https://liaison.example:443", host="internal:8000"))
    assert origin_allowed(_scope("https://desk.partner.example", host="liaison.example"))
    assert not origin_allowed(_scope("https://partner.example.evil", host="liaison.example"))
    behind_proxy = {"x-forwarded-proto": "https"}
    assert not origin_allowed(
        _scope("http://liaison.example", host="liaison.example", **behind_proxy)
    )
    assert not origin_allowed(_scope("https://liaison.example:8443", host="liaison.example"))
    # The proxy says the request came over TLS: the requested origin is https.
    assert not origin_allowed(_scope("https://liaison.example:444", host="liaison.example:444"))
    assert origin_allowed(
        _scope(
            "https://liaison.example:444",
            host="liaison.example:444",
            **{"x-forwarded-proto": "https"},
        )
    )


async def _handshake(url: str, origin: str) -> int | None:
    """The HTTP status of a refused handshake, or None when the socket opened."""
    try:
        async with connect(url, origin=origin, open_timeout=10) as socket:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(socket.recv(), 2)
            return None
    except InvalidStatus as refused:
        return refused.response.status_code


def test_a_real_server_refuses_another_port_of_its_host_at_the_handshake(asgi_server) -> None:
    url = f"{asgi_server.ws_url}/ws/rooms/1/"
    other_port = 9999 if asgi_server.port != 9999 else 9998
    assert asyncio.run(_handshake(url, f"http://127.0.0.1:{other_port}")) == 403
    # The server's own origin gets through the handshake (then 4401: nobody signed in).
    assert asyncio.run(_handshake(url, asgi_server.url)) is None


def test_a_real_server_answers_paths_without_a_room_without_an_error(
    asgi_server, uk_officer: User, ws_headers
) -> None:
    cookie = dict(ws_headers(uk_officer, asgi_server.url))[b"cookie"].decode()

    async def close_code(path: str) -> int | None:
        async with connect(
            f"{asgi_server.ws_url}{path}",
            origin=asgi_server.url,
            additional_headers={"Cookie": cookie},
            open_timeout=10,
        ) as socket:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(socket.recv(), 5)
            return socket.close_code

    paths = ["/ws/rooms/%D9%A1/", "/ws/rooms/-1/", "/ws/rooms/" + "1" * 150 + "/"]
    assert [asyncio.run(close_code(path)) for path in paths] == [4403, 4403, 4403]
    assert [event.details["path"] for event in _denials()] == [path[:200] for path in paths]
