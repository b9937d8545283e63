"""Error pages: JSON under /api/, HTML elsewhere; never a stack trace."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from liaison.views.base import json_error


def _respond(request: HttpRequest, status: int, code: str, title: str, detail: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_error(code, detail, status)
    return render(request, "liaison/error.html", {"title": title, "detail": detail}, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _respond(
        request, 400, "invalid", _("Bad request"), _("The request could not be understood.")
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _respond(request, 403, "forbidden", _("Forbidden"), _("You are not allowed to do this."))


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _respond(request, 404, "not_found", _("Not found"), _("There is nothing here."))


def server_error(request: HttpRequest) -> HttpResponse:
    return _respond(
        request,
        500,
        "server_error",
        _("Something went wrong"),
        _("The server could not complete the request. It has been logged; please try again."),
    )
