"""HTTP rate limits on views (the counters are ``liaison/ratelimits.py``): a refused request gets
429 with ``Retry-After`` and says when to try again, as JSON for the API and as a page for
HTML views. Checked before the view reads the request body."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from liaison import ratelimits
from liaison.views.base import client_ip, json_error

View = Callable[..., HttpResponse]


def retry_detail(seconds: int) -> str:
    return ngettext(
        "Too many requests. Try again in %(seconds)s second.",
        "Too many requests. Try again in %(seconds)s seconds.",
        seconds,
    ) % {"seconds": seconds}


def too_many_requests(request: HttpRequest, retry_after: int, *, html: bool) -> HttpResponse:
    """The 429 answer: ``Retry-After`` in whole seconds, and the same in words."""
    detail = retry_detail(retry_after)
    if html:
        response = render(
            request,
            "liaison/error.html",
            {"title": _("Too many requests"), "detail": detail},
            status=429,
        )
    else:
        response = json_error("rate_limited", detail, 429, retry_after=retry_after)
    response["Retry-After"] = str(retry_after)
    add_never_cache_headers(response)
    return response


def declared_length(request: HttpRequest) -> int:
    """The request body's declared size (what an upload costs against the byte quota)."""
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def rate_key(request: HttpRequest, by: str) -> str:
    """Who a request counts for: the signed-in user, else (or with ``by="ip"``) the address."""
    user = getattr(request, "user", None)
    if by == "user" and user is not None and user.is_authenticated:
        return f"u{user.pk}"
    return f"ip:{client_ip(request) or 'unknown'}"


def limit_requests(
    name: str,
    *,
    by: str = "user",
    methods: Iterable[str] | None = None,
    html: bool = False,
    cost: Callable[[HttpRequest], int] | None = None,
) -> Callable[[View], View]:
    """Count each request (or ``cost(request)``) against limit ``name``; over it, answer 429.

    ``methods`` restricts counting to those methods (a GET list beside a POST create)."""
    counted = {method.upper() for method in methods} if methods else None

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if counted is None or request.method in counted:
                verdict = ratelimits.hit(
                    name,
                    rate_key(request, by),
                    cost=cost(request) if cost is not None else 1,
                )
                if not verdict.allowed:
                    return too_many_requests(request, verdict.retry_after, html=html)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
