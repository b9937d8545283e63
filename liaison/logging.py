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
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

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
    """Outermost middleware: request id in, one log line and the HTTP metrics out."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        from liaison import metrics

        self.get_response = get_response
        self.metrics = metrics
        self.logger = logging.getLogger("liaison.request")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = _request_id_for(request)
        request.request_id = request_id
        tokens = [
            _request_id.set(request_id),
            _user_id.set(None),
            _exercise.set(None),
            _room.set(None),
            _route.set(None),
        ]
        started = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            response[REQUEST_ID_HEADER] = request_id
            return response
        finally:
            elapsed = time.perf_counter() - started
            self._log(request, status, elapsed)
            for var, token in zip(
                (_request_id, _user_id, _exercise, _room, _route), tokens, strict=True
            ):
                var.reset(token)

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: dict[str, Any]
    ) -> None:
        _route.set(route_of(request))
        _user_id.set(_known_user_id(request))
        bind(exercise=_int_kwarg(kwargs, "exercise_id"), room=_int_kwarg(kwargs, "room_id"))

    def _log(self, request: HttpRequest, status: int, elapsed: float) -> None:
        route = route_of(request)
        user_id = _known_user_id(request)
        _user_id.set(user_id)
        _route.set(route)
        self.metrics.observe_http_request(
            route=route, method=request.method or "", status=status, seconds=elapsed
        )
        if request.path.startswith("/static/"):
            return
        level = logging.ERROR if status >= 500 else logging.INFO
        self.logger.log(
            level,
            "%s %s %s",
            request.method,
            route,
            status,
            extra={
                "user_id": user_id,
                "method": request.method,
                "status": status,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )
