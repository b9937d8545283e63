"""Shared plumbing for views: JSON API endpoints and the mapping of domain errors to HTTP."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from liaison import audit
from liaison.errors import AccessDenied, Invalid, LiaisonError, PermissionDenied

logger = logging.getLogger(__name__)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as the server saw it (the proxy sets REMOTE_ADDR via daphne)."""
    return request.META.get("REMOTE_ADDR") or None


def json_error(code: str, detail: str, status: int, **extra: Any) -> JsonResponse:
    body: dict[str, Any] = {"code": code, "detail": str(detail)}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JsonResponse({"error": body}, status=status)


def record_if_denied(request: HttpRequest, error: LiaisonError, *, via: str) -> None:
    if isinstance(error, AccessDenied | PermissionDenied):
        audit.record_denied(
            actor=getattr(request, "user", None),
            error=error,
            ip=client_ip(request),
            via=via,
            path=request.path,
        )


def parse_json(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object, or ``Invalid`` saying what is wrong with it."""
    if not request.body:
        return {}
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # ValueError also covers integers longer than Python converts (4,300 digits).
        raise Invalid(_("The request body is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise Invalid(_("The request body must be a JSON object."))
    return data


def api_endpoint(
    *methods: str, login_required: bool = True
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Wrap a JSON view: method check, authentication, and domain errors as JSON errors."""

    allowed = {m.upper() for m in methods}

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                response = json_error(
                    "method_not_allowed",
                    _("Use %(values)s.") % {"values": ", ".join(sorted(allowed))},
                    405,
                )
                response["Allow"] = ", ".join(sorted(allowed))
                return response
            if login_required and not request.user.is_authenticated:
                return json_error("not_authenticated", _("Sign in first."), 401)
            try:
                return view(request, *args, **kwargs)
            except LiaisonError as error:
                record_if_denied(request, error, via="api")
                return json_error(error.code, error.detail, error.http_status, field=error.field)

        return wrapper

    return decorate


def render_error(request: HttpRequest, error: LiaisonError) -> HttpResponse:
    """An HTML page for a domain error: the safe detail, never a trace."""
    record_if_denied(request, error, via="web")
    return render(
        request,
        "liaison/error.html",
        {
            "title": _("Not found") if error.http_status == 404 else _("Request refused"),
            "detail": error.detail,
        },
        status=error.http_status,
    )


def page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap an HTML view so domain errors become a clear error page."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except LiaisonError as error:
            return render_error(request, error)

    return wrapper
