"""Signing in (password, then the second factor) and out, in HTML. The JSON session endpoint
lives in views/sessions.py.

The password step does not sign anyone in when the account has an authenticator: it remembers
the account in the anonymous session for a few minutes and asks for the code. Only a passed
second step calls Django's ``login()`` (which rotates the session key). An account without an
authenticator yet (new, or reset by an administrator) is signed in after its password and sent to
set one up before anything else (``TwoFactorRequiredMiddleware``).

Failures of both steps count toward the same lockout (django-axes: 5 per account and per
address within 15 minutes).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from axes.handlers.proxy import AxesProxyHandler
from axes.signals import user_locked_out
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import BACKEND_SESSION_KEY, login, logout
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from liaison.models import User
from liaison.services import sessions, twofactor
from liaison.signals import OTP_STAGE
from liaison.views.base import client_ip

# Session keys of a sign-in waiting for its second step.
PENDING_USER = "liaison_pending_user"
PENDING_SINCE = "liaison_pending_since"
PENDING_BACKEND = "liaison_pending_backend"
PENDING_KEYS = (PENDING_USER, PENDING_SINCE, PENDING_BACKEND)
LOCKED_DETAIL = gettext_lazy(
    "Too many failed sign-in attempts. This account or address is locked for 15 minutes; "
    "try again later."
)


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label=gettext_lazy("E-mail"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )
    error_messages = {
        "invalid_login": gettext_lazy("That e-mail address and password do not match an account."),
        "inactive": gettext_lazy("This account is disabled."),
    }

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()


class SecondFactorForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Authentication code"),
        max_length=32,
        strip=True,
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "spellcheck": "false",
            }
        ),
    )


def safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({'next': next_url})}" if next_url and next_url != "/" else url


# --- lockout plumbing shared with the JSON sign-in ------------------------------------------------


def is_locked_out(request: HttpRequest, email: str) -> bool:
    """Whether the account or the address is locked; a refused attempt is audited."""
    if AxesProxyHandler.is_allowed(request, {settings.AXES_USERNAME_FORM_FIELD: email}):
        return False
    user_locked_out.send(
        "axes", request=request, username=email, ip_address=request.axes_ip_address
    )
    return True


def count_second_factor_failure(request: HttpRequest, email: str) -> None:
    """Count a failed second step toward the lockout, like a wrong password. On the failure that
    reaches the limit axes marks the request, and its middleware answers 429."""
    user_login_failed.send(
        sender=__name__,
        credentials={settings.AXES_USERNAME_FORM_FIELD: email, "stage": OTP_STAGE},
        request=request,
    )


def clear_failures(request: HttpRequest, email: str) -> None:
    """Both factors passed: forget this account's and this address's earlier failures."""
    AxesProxyHandler.update_request(request)
    AxesProxyHandler.get_implementation().reset_user_attempts(
        request, {settings.AXES_USERNAME_FORM_FIELD: email}
    )


def lockout_response(
    request: HttpRequest, response: Any = None, credentials: Any = None, *args: Any, **kwargs: Any
) -> HttpResponse:
    """What a locked-out client sees: a clear message, 429, for HTML and API alike
    (``AXES_LOCKOUT_CALLABLE``)."""
    if request.path.startswith("/api/"):
        from liaison.views.base import json_error

        return json_error("locked_out", LOCKED_DETAIL, 429)
    return render(
        request, "liaison/error.html", {"title": _("Locked"), "detail": LOCKED_DETAIL}, status=429
    )


# --- signing in -------------------------------------------------------------------------------


def complete_sign_in(request: HttpRequest, user: User, device: Any, backend: str | None) -> None:
    """Both factors passed: sign the session in with a fresh key and mark it verified."""
    if request.user.is_authenticated and request.user.pk == user.pk:
        # Signed in before the second step (a first sign-in, say): rotate the key now.
        old_key = request.session.session_key
        request.session.cycle_key()
        sessions.rekey_session(old_key=old_key, new_key=request.session.session_key)
    else:
        login(request, user, backend=backend)
    for key in PENDING_KEYS:
        request.session.pop(key, None)
    otp_login(request, device)
    clear_failures(request, user.email)


def _pending_user(request: HttpRequest) -> tuple[User | None, str | None]:
    """The account whose password was just accepted on this session, if still fresh."""
    user_id = request.session.get(PENDING_USER)
    since = request.session.get(PENDING_SINCE, 0)
    if not user_id or time.time() - float(since) > settings.LIAISON_LOGIN_STEP_SECONDS:
        return None, None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    return user, request.session.get(PENDING_BACKEND)


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = safe_next(request)
    if request.user.is_authenticated and request.method == "GET":
        return redirect(next_url)
    form = EmailAuthenticationForm(request, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.get_user()
        if request.user.is_authenticated:
            sign_out(request)
        if twofactor.has_two_factor(user):
            request.session[PENDING_USER] = user.pk
            request.session[PENDING_SINCE] = time.time()
            request.session[PENDING_BACKEND] = user.backend
            return redirect(_with_next(reverse("login-otp"), next_url))
        # No authenticator yet: sign in and set one up before anything else.
        login(request, user)
        return redirect(_with_next(reverse("security-enrol"), next_url))
    status = 400 if request.method == "POST" else 200
    return render(request, "liaison/login.html", {"form": form, "next": next_url}, status=status)


def _is_demo(user: User) -> bool:
    from liaison.services.demo import DEMO_USERS

    return not settings.PRODUCTION and any(spec.email == user.email for spec in DEMO_USERS)


@require_http_methods(["GET", "POST"])
def login_otp_view(request: HttpRequest) -> HttpResponse:
    """The second step: a code from the authenticator app, or a recovery code."""
    next_url = safe_next(request)
    if request.user.is_authenticated:
        user, backend = request.user, request.session.get(BACKEND_SESSION_KEY)
        if request.user.is_verified():
            return redirect(next_url)
        if not twofactor.has_two_factor(user):
            return redirect(_with_next(reverse("security-enrol"), next_url))
    else:
        user, backend = _pending_user(request)
        if user is None:
            messages.info(request, _("Sign in with your e-mail address and password first."))
            return redirect(_with_next(reverse("login"), next_url))
    form = SecondFactorForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if is_locked_out(request, user.email):
            return lockout_response(request)
        if form.is_valid():
            try:
                passed = twofactor.verify_second_factor(
                    user=user, code=form.cleaned_data["code"], ip=client_ip(request)
                )
            except twofactor.OtpInvalid as error:
                count_second_factor_failure(request, user.email)
                form.add_error("code", error.detail)
            except twofactor.OtpRequired as error:
                form.add_error("code", error.detail)
            else:
                complete_sign_in(request, user, passed.device, backend)
                if passed.method == "recovery_code":
                    messages.warning(
                        request,
                        _(
                            "You signed in with a recovery code; %(recovery_codes_left)s left. Make new ones "
                            "on your security page if you are running low."
                        )
                        % {"recovery_codes_left": passed.recovery_codes_left},
                    )
                return redirect(next_url)
        status = 400
    return render(
        request,
        "liaison/login_otp.html",
        {"form": form, "next": next_url, "account": user, "demo_account": _is_demo(user)},
        status=status,
    )


def sign_out(request: HttpRequest) -> None:
    """End this session: its row, its sockets, its data."""
    if request.user.is_authenticated:
        sessions.end_session_at_logout(user=request.user, session_key=request.session.session_key)
    logout(request)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    sign_out(request)
    return redirect("login")
