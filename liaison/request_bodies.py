"""Request bodies: each route's size limit, enforced before a body is read, and the upload body
streamed to its view instead of spooled.

A route accepts ``LIAISON_REQUEST_MAX_BYTES`` (1 MiB) unless its view is marked
``@takes_large_body(limit)`` (the attachment upload: the file limit plus multipart framing). A
body declaring more (``Content-Length``) is answered 413 from the headers, before any of it is
read; a body without a declared length (chunked) is counted as it arrives and cut off at the
limit. ``BodyLimitMiddleware`` is that rule for any ASGI server; under daphne the same rule runs
earlier, in the server, before Twisted spools a byte (``liaison/realtime/server.py``).

Django's ASGI handler reads every body whole into a temporary file (on disk past 256 KiB) before
any view runs. ``StreamingASGIHandler`` reads ordinary bodies into memory instead (the limit
bounds them) and gives a marked view a stream that fetches each piece from the server when the
multipart parser asks for it, so an attachment goes straight into the encrypting upload handler
and no byte of it is written to disk in plaintext.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import io
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.urls import resolve
from django.utils import translation
from django.utils.translation import gettext as _

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
View = TypeVar("View", bound=Callable[..., Any])

MIB = 1024 * 1024
# A streamed body is fetched from the server at least this much at a time: each fetch is a hop
# from the view's thread to the event loop and back.
READ_AHEAD_BYTES = 256 * 1024


# --- the rule -----------------------------------------------------------------------------------


def default_max_bytes() -> int:
    """What a route accepts unless its view takes a large body."""
    return int(settings.LIAISON_REQUEST_MAX_BYTES)


def takes_large_body(max_bytes: Callable[[], int]) -> Callable[[View], View]:
    """Let a view accept a body of up to ``max_bytes()`` bytes, streamed to it as it is read.

    The view must read the body in pieces (an upload handler), never whole (``request.body``).
    Apply it outermost, so the server finds it on the function the URL resolves to.
    """

    def mark(view: View) -> View:
        view.max_body_bytes = max_bytes  # type: ignore[attr-defined]
        return view

    return mark


@dataclass(frozen=True)
class BodyRule:
    max_bytes: int
    streamed: bool


@functools.lru_cache(maxsize=1024)
def _view_at(path: str, urlconf: str) -> Any:
    """The view a path resolves to (``None``: no route), remembered: every request and every
    WebSocket handshake asks before its body is read, and a path that matches no route (every
    ``/ws/`` path) walks the whole URL map to find that out."""
    try:
        return resolve(path, urlconf).func
    except Exception:  # no such route, or a path the resolver cannot take: the strict default
        return None


def body_rule(path: str, *, root_path: str = "") -> BodyRule:
    """What the route at ``path`` (percent-decoded, as ASGI's ``scope["path"]``) accepts."""
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :] or "/"
    view = _view_at(path, settings.ROOT_URLCONF)
    max_bytes = getattr(view, "max_body_bytes", None)
    if max_bytes is None:
        return BodyRule(default_max_bytes(), streamed=False)
    return BodyRule(int(max_bytes()), streamed=True)


def body_rule_for_target(target: bytes, *, root_path: str = "") -> BodyRule:
    """``body_rule`` for a raw HTTP request target (``/path?query`` or an absolute URL)."""
    try:
        text = target.decode("ascii")
    except UnicodeDecodeError:  # refused with 400 by the server anyway
        return BodyRule(default_max_bytes(), streamed=False)
    if not text.startswith("/"):
        text = urlsplit(text).path or "/"
    return body_rule(unquote(text.split("?", 1)[0]), root_path=root_path)


# --- the answer ---------------------------------------------------------------------------------


def _size(size: int) -> str:
    return f"{size / MIB:,.0f} MiB" if size >= MIB else f"{size:,} bytes"


def _language(accept_language: str) -> str:
    from django.utils.translation.trans_real import parse_accept_lang_header

    for code, _quality in parse_accept_lang_header(accept_language or ""):
        if code == "*":
            break
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


def too_large_body(max_bytes: int, *, accept_language: str = "") -> bytes:
    """The JSON of the 413 answer (the API's error shape), in the client's language if we have
    it: the answer is given before any session, so the user's saved language is not known."""
    with translation.override(_language(accept_language)):
        detail = _("The request body is larger than the %(size)s this address accepts.") % {
            "size": _size(max_bytes)
        }
    error = {"code": "too_large", "detail": detail, "max_bytes": max_bytes}
    return json.dumps({"error": error}).encode()


def too_large_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    """Headers of the 413 answer. The connection closes after it: the rest of the body is never
    read."""
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        (b"connection", b"close"),
    ]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value
    return None


def declared_length(scope: Scope) -> int | None:
    """The body size the request declares, or ``None`` (chunked, or not a number)."""
    value = _header(scope, b"content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


# --- the ASGI side --------------------------------------------------------------------------------


class BodyLimitMiddleware:
    """Answer 413 to a body over its route's limit without the application reading any of it.

    A declared length over the limit is refused before the application is called; a body that
    arrives without one is counted, and once over the limit the client is answered 413 and the
    application is told the client went away (whatever it sends after that is dropped).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = body_rule(scope["path"], root_path=scope.get("root_path", ""))
        language = (_header(scope, b"accept-language") or b"").decode("latin-1")
        declared = declared_length(scope)
        if declared is not None and declared > rule.max_bytes:
            await _answer_too_large(send, rule.max_bytes, language)
            return

        received = 0
        started = answered = False

        async def counted_receive() -> Message:
            nonlocal received, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > rule.max_bytes:
                    answered = True
                    if not started:
                        await _answer_too_large(send, rule.max_bytes, language)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return
            started = True
            await send(message)

        await self.app(scope, counted_receive, guarded_send)


async def _answer_too_large(send: Send, max_bytes: int, language: str) -> None:
    body = too_large_body(max_bytes, accept_language=language)
    await send({"type": "http.response.start", "status": 413, "headers": too_large_headers(body)})
    await send({"type": "http.response.body", "body": body})


class StreamedBody(io.RawIOBase):
    """A request body the view's thread reads as a file, fetched from the server piece by piece.

    Each ``read`` runs one fetch on the event loop (``receive`` is a coroutine of the loop) and
    waits for it; a client that goes away, or a body that stalls for
    ``ASGIRequest.body_receive_timeout`` seconds, is an ``OSError``, which Django turns into
    ``UnreadablePostError``. Also the ``receive`` the handler uses once the body is read.
    """

    def __init__(self, receive: Receive, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._receive = receive
        self._loop = loop
        self._pending = bytearray()
        self._ended = False
        self._complete = asyncio.Event()
        self.disconnected = False

    async def __call__(self) -> Message:
        return await self._receive()

    async def complete(self) -> None:
        """Wait until the whole body (or the client's disconnect) has been received."""
        await self._complete.wait()

    async def _fill(self, wanted: int) -> None:
        while not self._ended and len(self._pending) < wanted:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._ended = self.disconnected = True
                self._complete.set()
                raise OSError("The client went away before its request body was complete.")
            self._pending += message.get("body", b"")
            if not message.get("more_body", False):
                self._ended = True
                self._complete.set()

    def _wait_for(self, wanted: int) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError("A streamed request body is read from a worker thread.")
        future = asyncio.run_coroutine_threadsafe(self._fill(wanted), self._loop)
        try:
            future.result(timeout=ASGIRequest.body_receive_timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise OSError("The request body stalled.") from None

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        wanted = sys.maxsize if size is None or size < 0 else size
        if len(self._pending) < wanted and not self._ended:
            self._wait_for(max(wanted, READ_AHEAD_BYTES))
        data = bytes(self._pending[:wanted])
        del self._pending[:wanted]
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class StreamingASGIHandler(ASGIHandler):
    """Django's ASGI handler without the body spool: ordinary bodies are read into memory,
    bounded by ``BodyLimitMiddleware`` in front; a view that takes a large body reads it as a
    ``StreamedBody`` while it arrives."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if body_rule(scope["path"], root_path=scope.get("root_path", "")).streamed:
            receive = StreamedBody(receive, asyncio.get_running_loop())
        await super().handle(scope, receive, send)

    async def read_body(self, receive: Receive) -> Any:
        if isinstance(receive, StreamedBody):
            return receive
        body = io.BytesIO()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestAborted()
            body.write(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body.seek(0)
        return body

    async def listen_for_disconnect(self, receive: Receive) -> None:
        if isinstance(receive, StreamedBody):
            # Until the view has read the body, the next message belongs to it.
            await receive.complete()
            if receive.disconnected:
                raise RequestAborted()
        await super().listen_for_disconnect(receive)


def asgi_application() -> ASGIApp:
    """Django for ASGI behind the body limits: what ``config/asgi.py`` serves over HTTP."""
    import django

    django.setup(set_prefix=False)
    return BodyLimitMiddleware(StreamingASGIHandler())
