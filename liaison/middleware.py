"""Response hardening shared by every page."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from liaison.languages import saved_language


class SecurityHeadersMiddleware:
    """Adds the Permissions-Policy header (Django has no setting for it) and keeps API
    responses out of shared caches."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.LIAISON_PERMISSIONS_POLICY)
        if request.path.startswith("/api/"):
            response.setdefault("Cache-Control", "no-store")
        return response


# --- language: the saved choice, then Accept-Language, then English (liaison/languages.py) ------


class UserLanguageMiddleware:
    """Runs after authentication: a signed-in user's saved language replaces what
    ``LocaleMiddleware`` found in the language cookie or the browser's Accept-Language."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = saved_language(getattr(request, "user", None))
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)


# --- time zone: the signed-in user's own, for pages and forms ------------------------------------


class UserTimezoneMiddleware:
    """Shows dates in the signed-in user's own time zone (templates and form input alike)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        name = getattr(user, "time_zone", "") if user is not None and user.is_authenticated else ""
        try:
            if name:
                timezone.activate(zoneinfo.ZoneInfo(name))
            else:
                timezone.deactivate()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


# --- account security: session policy and mandatory two-factor ---------------------------------

# Paths outside the session policy (no session work at all).
SESSION_POLICY_EXEMPT = ("/static/", "/healthz")
# Paths a signed-in person may reach before passing the second factor.
TWO_FACTOR_EXEMPT = (
    "/login/",
    "/logout/",
    "/account/2fa/setup/",
    "/invite/",
    "/static/",
    "/healthz",
    "/api/v1/session",
    "/i18n/",
    "/jsi18n/",
)
ENROL_URL = "/account/2fa/setup/"
SECOND_STEP_URL = "/login/otp/"


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _to(url: str, request: HttpRequest) -> HttpResponse:
    from urllib.parse import urlencode

    from django.shortcuts import redirect

    target = request.get_full_path() if request.method == "GET" else "/"
    if target and target != "/":
        url = f"{url}?{urlencode({'next': target})}"
    return redirect(url)


class SessionPolicyMiddleware:
    """Ends a signed-in session that went idle, outlived its absolute lifetime, was revoked or
    logged out elsewhere (liaison/services/sessions.py), and records activity on the rest.

    A page request goes to the sign-in page; an API request gets 401 ``session_expired``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(SESSION_POLICY_EXEMPT):
            return self.get_response(request)
        user = request.user
        if user.is_authenticated:
            from liaison.services import sessions

            session_key = request.session.session_key
            problem = sessions.check_http_session(user=user, session_key=session_key)
            if problem is not None:
                return self._ended(request, user, session_key, problem)
        return self.get_response(request)

    def _ended(
        self, request: HttpRequest, user, session_key: str | None, problem: str
    ) -> HttpResponse:
        from django.contrib import messages
        from django.contrib.auth.models import AnonymousUser

        from liaison.services import sessions
        from liaison.views.base import client_ip, json_error

        sessions.expire_session(
            user=user, session_key=session_key, reason=problem, ip=client_ip(request)
        )
        request.session.flush()
        request.user = AnonymousUser()
        detail = _("Your session has ended; sign in again.")
        if problem == sessions.IDLE_TIMEOUT:
            detail = _("You were signed out after a period of inactivity; sign in again.")
        elif problem == sessions.LIFETIME_EXCEEDED:
            detail = _("Sessions last at most a working day; sign in again.")
        if _wants_json(request):
            return json_error("session_expired", detail, 401)
        messages.info(request, detail)
        return _to("/login/", request)


class TwoFactorRequiredMiddleware:
    """No access without a second factor: a signed-in person without an authenticator is sent
    to set one up, and one whose session has not passed the second step is sent to it. The API
    answers ``otp_required`` (403 to set one up, 401 to pass the step) instead of redirecting."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            not user.is_authenticated
            or request.path.startswith(TWO_FACTOR_EXEMPT)
            or user.is_verified()
        ):
            return self.get_response(request)
        from liaison.services import twofactor
        from liaison.views.base import json_error

        enrolled = twofactor.has_two_factor(user)
        if _wants_json(request):
            if enrolled:
                return json_error(
                    "otp_required", _("Complete two-factor sign-in: POST /api/v1/session."), 401
                )
            return json_error(
                "otp_required",
                _("Set up two-factor authentication in the browser before using the API."),
                403,
            )
        return _to(SECOND_STEP_URL if enrolled else ENROL_URL, request)
