"""Structured logs: one JSON object per line, each carrying the request it belongs to.

The request log middleware gives every HTTP request an id (the proxy's ``X-Request-ID`` when it
sends a well-formed one), binds it with the signed-in user's id, the exercise and the room to
every record logged while the request runs, and writes one line when it ends: route pattern,
method, status and duration.

What never reaches a log: message text, file content, invitation tokens, passwords or session
cookies. Lines name the route *pattern* (``invite/<str:token>/``), never the path or query
string; Django's own request records have their path replaced by the pattern too; and extra
fields whose name suggests a secret, or whose value is not a plain scalar (a request object
prints its path), are dropped by the formatter.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
_INBOUND_ID = re.compile(r"[A-Za-z0-9-]{8,64}")
UNMATCHED_ROUTE = "<unmatched>"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_user_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("user_id", default=None)
_exercise: contextvars.ContextVar[int | None] = contextvars.ContextVar("exercise", default=None)
_room: contextvars.ContextVar[int | None] = contextvars.ContextVar("room", default=None)
_route: contextvars.ContextVar[str | None] = contextvars.ContextVar("route", default=None)

CONTEXT_FIELDS = ("request_id", "user_id", "exercise", "room", "route")
# Extra fields named like these are never written, whatever they hold.
_SECRET_NAME = re.compile(
    r"body|text|content|token|passw|secret|cookie|authori|key|otp|code|ciphertext|nonce|session",
    re.IGNORECASE,
)
_SCALARS = (str, int, float, bool, type(None))
# LogRecord attributes that are not "extra" fields.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "taskName", *CONTEXT_FIELDS}
)


def bind(*, exercise: int | None = None, room: int | None = None) -> None:
    """Name the exercise or room the current request is about, for every later log line."""
    if exercise is not None:
        _exercise.set(exercise)
    if room is not None:
        _room.set(room)


def current_request_id() -> str | None:
    return _request_id.get()


class RequestContextFilter(logging.Filter):
    """Adds the current request's id, user, exercise, room and route to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (
            ("request_id", _request_id),
            ("user_id", _user_id),
            ("exercise", _exercise),
            ("room", _room),
            ("route", _route),
        ):
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        request = getattr(record, "request", None)
        if record.request_id is None and request is not None:
            # Django logs a failed response after the middleware has returned.
            record.request_id = getattr(request, "request_id", None)
            record.route = record.route or route_of(request)
        return True


class RedactRequestPaths(logging.Filter):
    """Django logs "Not Found: /invite/<the token>/" and the like: put the route pattern in the
    path's place (the record's ``request`` itself is dropped by the formatter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is None or not record.args or not isinstance(record.args, tuple):
            return True
        path = getattr(request, "path", None)
        full = request.get_full_path() if hasattr(request, "get_full_path") else None
        route = route_of(request)
        record.args = tuple(route if arg in (path, full) else arg for arg in record.args)
        return True


# A path segment after one of these carries a secret: "invite/<token>/", also inside a query
# string ("?next=%2Finvite%2F<token>%2F"), where the slashes are percent-escaped.
_SECRET_SEGMENT = re.compile(
    r"(?P<prefix>(?:^|/|%2[fF])invite(?:/|%2[fF]))(?P<secret>(?:(?!%2[fF])[^/?&#\s\"])+)"
)


def fingerprint(secret: str) -> str:
    """The first 12 hex digits of the secret's SHA-256: what Liaison keeps of an invitation
    token (its stored hash starts with them), enough to tell links apart in a log."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def redact_path(path: str) -> str:
    """``path`` (with its query string) with every invitation token replaced by its
    fingerprint: ``/invite/<fp:3f9a1c2b7d4e>/``."""
    return _SECRET_SEGMENT.sub(
        lambda match: f"{match['prefix']}<fp:{fingerprint(unquote(match['secret']))}>", path
    )


def redact_server_access_log() -> bool:
    """Make daphne's access log (on by default: one line per request and per socket event)
    print redacted paths. daphne logs the raw request line; this wraps the one method every
    access-log line goes through. Idempotent; ``False`` without daphne."""
    try:
        from daphne.server import Server
    except ImportError:
        return False
    if getattr(Server, "_liaison_redacted_log", False):
        return True
    original = Server.log_action

    @functools.wraps(original)
    def log_action(self: Any, protocol: str, action: str, details: dict[str, Any]) -> None:
        path = details.get("path")
        if isinstance(path, str):
            details = {**details, "path": redact_path(path)}
        original(self, protocol, action, details)

    Server.log_action = log_action
    Server._liaison_redacted_log = True
    return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: time (UTC), level, logger, message, the request context, and
    whatever plain, harmless extra fields the caller passed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", False)
        super().__init__(*args, **kwargs)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = (
            dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.getMessage()
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                log_data[name] = value
        extras = {**record.__dict__, **message_dict}
        for name, value in extras.items():
            if name in _RECORD_ATTRS or name.startswith("_") or _SECRET_NAME.search(name):
                continue
            if isinstance(value, _SCALARS):
                log_data[name] = value
        for name in ("exc_info", "stack_info"):
            if message_dict.get(name):
                log_data[name] = message_dict[name]


# --- the request log middleware ----------------------------------------------------------------


def route_of(request: HttpRequest) -> str:
    """The URL pattern that served ``request`` (never its path: paths can carry tokens)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED_ROUTE
    return match.route or match.view_name or UNMATCHED_ROUTE


def _known_user_id(request: HttpRequest) -> int | None:
    """The signed-in user's id if the request already looked the user up; never a new query."""
    user = request.__dict__.get("user")
    wrapped = getattr(user, "_wrapped", user) if user is not None else None
    if wrapped is empty or wrapped is None:
        wrapped = getattr(request, "_cached_user", None) or getattr(request, "_acached_user", None)
    if wrapped is None or not getattr(wrapped, "is_authenticated", False):
        return None
    return wrapped.pk


def _request_id_for(request: HttpRequest) -> str:
    inbound = request.headers.get(REQUEST_ID_HEADER, "")
    if _INBOUND_ID.fullmatch(inbound):
        return inbound
    return uuid.uuid4().hex


def _int_kwarg(kwargs: dict[str, Any], name: str) -> int | None:
    value = kwargs.get(name)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class RequestLogMiddleware:
    """Outermost middleware: request id in, one log line and the HTTP metrics out. Sync and async
    capable, so under ASGI it adds no thread hop in front of the rest of the chain."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        from liaison import metrics

        self.get_response = get_response
        self.metrics = metrics
        self.logger = logging.getLogger("liaison.request")
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        tokens = self._start(request)
        started, status = time.perf_counter(), 500
        try:
            response = self.get_response(request)
            status = response.status_code
            response[REQUEST_ID_HEADER] = request.request_id
            return response
        finally:
            self._finish(request, status, time.perf_counter() - started, tokens)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        tokens = self._start(request)
        started, status = time.perf_counter(), 500
        try:
            response = await self.get_response(request)
            status = response.status_code
            response[REQUEST_ID_HEADER] = request.request_id
            return response
        finally:
            self._finish(request, status, time.perf_counter() - started, tokens)

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: dict[str, Any]
    ) -> None:
        """Binds what the records logged by the view should carry (in the view's context)."""
        _route.set(route_of(request))
        _user_id.set(_known_user_id(request))
        bind(exercise=_int_kwarg(kwargs, "exercise_id"), room=_int_kwarg(kwargs, "room_id"))

    def _start(self, request: HttpRequest) -> list[contextvars.Token[Any]]:
        request.request_id = _request_id_for(request)
        return [
            _request_id.set(request.request_id),
            _user_id.set(None),
            _exercise.set(None),
            _room.set(None),
            _route.set(None),
        ]

    def _finish(
        self,
        request: HttpRequest,
        status: int,
        elapsed: float,
        tokens: list[contextvars.Token[Any]],
    ) -> None:
        try:
            self._log(request, status, elapsed)
        finally:
            for var, token in zip(
                (_request_id, _user_id, _exercise, _room, _route), tokens, strict=True
            ):
                var.reset(token)

    def _log(self, request: HttpRequest, status: int, elapsed: float) -> None:
        route = route_of(request)
        self.metrics.observe_http_request(
            route=route, method=request.method or "", status=status, seconds=elapsed
        )
        if request.path.startswith("/static/"):
            return
        match = getattr(request, "resolver_match", None)
        kwargs = match.kwargs if match is not None else {}
        level = logging.ERROR if status >= 500 else logging.INFO
        self.logger.log(
            level,
            "%s %s %s",
            request.method,
            route,
            status,
            extra={
                "user_id": _known_user_id(request),
                "exercise": _int_kwarg(kwargs, "exercise_id"),
                "room": _int_kwarg(kwargs, "room_id"),
                "route": route,
                "method": request.method,
                "status": status,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )
