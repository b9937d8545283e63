"""The handshake's cookies and session key, put in the scope without touching the database.

Channels' ``AuthMiddlewareStack`` loaded the session and the person for every handshake, on
Channels' single database thread, and wrapped every frame a socket sent afterwards; admission
then read both again. Profiled in a connect storm it was a fifth of the server's work. A
socket's admission reads the session, the person and the room in one statement
(``realtime/standing.py``), so the handshake only needs the key.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http.cookie import parse_cookie


def scope_cookies(scope: dict[str, Any]) -> dict[str, str]:
    header = b"; ".join(value for name, value in scope.get("headers") or () if name == b"cookie")
    return parse_cookie(header.decode("latin-1")) if header else {}


class SessionKeyMiddleware:
    """Adds ``cookies`` and ``session_key`` (``None`` without a session cookie) to the scope."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        cookies = scope_cookies(scope)
        session_key = cookies.get(settings.SESSION_COOKIE_NAME) or None
        return await self.inner(
            dict(scope, cookies=cookies, session_key=session_key), receive, send
        )
