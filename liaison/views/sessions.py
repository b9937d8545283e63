"""``/api/v1/session``: sign in and out for scripts and the browser client, in JSON.

- ``GET`` says whether this session is signed in and sets the ``csrftoken`` cookie; the token is
  also in the body, since the cookie is HttpOnly in production.
- ``POST {email, password, otp}`` signs in; ``otp`` is a 6-digit TOTP code or a recovery code.
  CSRF-protected like every unsafe request (against login CSRF): send the token from ``GET`` in
  ``X-CSRFToken``. Failures count toward the same lockout as the sign-in page (429 when locked).
- ``DELETE`` signs this session out.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.utils.translation import gettext as _
from django.views.decorators.csrf import ensure_csrf_cookie
from django_otp import login as otp_login

from liaison.errors import Invalid
from liaison.payloads import account_payload
from liaison.services import twofactor
from liaison.views.accounts import (
    clear_failures,
    count_second_factor_failure,
    is_locked_out,
    lockout_response,
    sign_out,
)
from liaison.views.base import api_endpoint, client_ip, json_error, parse_json


def _text(data: dict[str, Any], name: str, label: str) -> str:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Invalid(_("%(label)s is required.") % {"label": label}, field=name)
    if not isinstance(value, str):
        raise Invalid(_("%(label)s must be a string.") % {"label": label}, field=name)
    if len(value) > 1024:
        raise Invalid(_("%(label)s is too long.") % {"label": label}, field=name)
    return value


def _state(request: HttpRequest) -> JsonResponse:
    user = request.user
    signed_in = user.is_authenticated and user.is_verified()
    body: dict[str, Any] = {
        "authenticated": bool(signed_in),
        "user": account_payload(user) if signed_in else None,
        "csrf_token": get_token(request),
    }
    if user.is_authenticated and not signed_in:
        body["second_factor_required"] = True
    return JsonResponse(body)


def _sign_in(request: HttpRequest) -> HttpResponse:
    data = parse_json(request)
    email = _text(data, "email", "E-mail").strip().lower()
    password = _text(data, "password", "Password")
    otp = data.get("otp")
    if otp is None or (isinstance(otp, str) and not otp.strip()):
        return json_error(
            "otp_required",
            _(
                "Two-factor authentication is required: send the 6-digit code from your "
                "authenticator app (or a recovery code) as otp."
            ),
            400,
            field="otp",
        )
    if not isinstance(otp, str):
        raise Invalid(_('otp must be a string, like "123456".'), field="otp")
    user = authenticate(request, username=email, password=password)
    if user is None:
        if getattr(request, "axes_locked_out", False):
            return lockout_response(request)
        return json_error(
            "invalid_credentials",
            _("That e-mail address and password do not match an account."),
            401,
        )
    if is_locked_out(request, user.email):
        return lockout_response(request)
    try:
        passed = twofactor.verify_second_factor(user=user, code=otp, ip=client_ip(request))
    except twofactor.OtpInvalid as error:
        count_second_factor_failure(request, user.email)
        return json_error(error.code, error.detail, 401, field="otp")
    except twofactor.OtpRequired as error:
        return json_error(error.code, error.detail, 403, field="otp")
    if request.user.is_authenticated:
        sign_out(request)
    login(request, user, backend=user.backend)
    otp_login(request, passed.device)
    clear_failures(request, user.email)
    body: dict[str, Any] = {"user": account_payload(user)}
    if passed.method == "recovery_code":
        body["recovery_codes_left"] = passed.recovery_codes_left
    return JsonResponse(body)


@ensure_csrf_cookie
@api_endpoint("GET", "POST", "DELETE", login_required=False)
def session(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _sign_in(request)
    if request.method == "DELETE":
        sign_out(request)
        return JsonResponse({"authenticated": False})
    return _state(request)
