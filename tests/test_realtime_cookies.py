"""The handshake's cookies and session key go into the scope without a database read."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from liaison.realtime.cookies import SessionKeyMiddleware


async def _scope_after(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)

    await SessionKeyMiddleware(inner)({"type": "websocket", "headers": headers}, None, None)
    return seen


async def test_the_session_key_and_cookies_are_read_from_the_headers() -> None:
    name = settings.SESSION_COOKIE_NAME
    # No database mark: any query would fail this test.
    scope = await _scope_after(
        [
            (b"origin", b"http://x"),
            (b"cookie", f"{name}=abc123; django_language=zh-hans".encode()),
        ]
    )
    assert scope["session_key"] == "abc123"
    assert scope["cookies"]["django_language"] == "zh-hans"


async def test_several_cookie_headers_are_read_together() -> None:
    name = settings.SESSION_COOKIE_NAME
    scope = await _scope_after([(b"cookie", b"a=1"), (b"cookie", f"{name}=k2".encode())])
    assert (scope["cookies"]["a"], scope["session_key"]) == ("1", "k2")


async def test_no_cookie_or_an_empty_one_means_no_session() -> None:
    name = settings.SESSION_COOKIE_NAME
    assert (await _scope_after([]))["session_key"] is None
    assert (await _scope_after([(b"cookie", f"{name}=".encode())]))["session_key"] is None
    assert (await _scope_after([(b"cookie", b"\xff\xfe garbage")]))["session_key"] is None
