"""Account security pages: two-factor set-up and the officer's security page (sessions,
recent sign-ins, password, recovery codes)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from liaison.errors import Invalid
from liaison.models import AuditEvent, User, UserSession
from liaison.services import accounts, sessions, twofactor
from liaison.views.accounts import (
    clear_failures,
    is_locked_out,
    lockout_response,
    safe_next,
    sign_out,
)
from liaison.views.base import client_ip, json_error, page

SIGN_IN_ACTIONS = (
    "auth.login",
    "auth.login_failed",
    "auth.otp_failed",
    "auth.locked_out",
    "auth.recovery_code_used",
    "auth.logout",
    "auth.logout_everywhere",
    "auth.session_expired",
    "auth.session_revoked",
    "auth.password_changed",
    "auth.2fa_enrolled",
    "auth.2fa_reset",
    "auth.recovery_codes_regenerated",
)
ACTION_LABELS = {
    "auth.login": gettext_lazy("Signed in"),
    "auth.login_failed": gettext_lazy("Wrong password"),
    "auth.otp_failed": gettext_lazy("Wrong two-factor code"),
    "auth.locked_out": gettext_lazy("Locked out after repeated failures"),
    "auth.recovery_code_used": gettext_lazy("Signed in with a recovery code"),
    "auth.logout": gettext_lazy("Signed out"),
    "auth.logout_everywhere": gettext_lazy("Signed out of all other sessions"),
    "auth.session_expired": gettext_lazy("Session ended by the session policy"),
    "auth.session_revoked": gettext_lazy("Session revoked"),
    "auth.password_changed": gettext_lazy("Password changed"),
    "auth.2fa_enrolled": gettext_lazy("Authenticator set up"),
    "auth.2fa_reset": gettext_lazy("Two-factor reset by an administrator"),
    "auth.recovery_codes_regenerated": gettext_lazy("New recovery codes made"),
}


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code from the app"),
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class PasswordChangeForm(forms.Form):
    current_password = forms.CharField(
        label=gettext_lazy("Current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new_password = forms.CharField(
        label=gettext_lazy("New password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=gettext_lazy(
            "At least 12 characters; not a common password, not like your name or e-mail."
        ),
    )
    new_password_again = forms.CharField(
        label=gettext_lazy("New password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict:
        data = super().clean()
        if (
            data.get("new_password")
            and data.get("new_password_again")
            and data["new_password"] != data["new_password_again"]
        ):
            self.add_error("new_password_again", _("The two new passwords differ."))
        return data


class ConfirmPasswordForm(forms.Form):
    password = forms.CharField(
        label=gettext_lazy("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def device_label(user_agent: str) -> str:
    """A short human name for a browser from its user agent ("Firefox on Windows")."""
    ua = user_agent or ""
    if not ua:
        return "Unknown device"
    browser = "Browser"
    for needle, name in (
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("python", "Script"),
        ("curl/", "curl"),
    ):
        if needle in ua:
            browser = name
            break
    system = ""
    for needle, name in (
        ("Windows", "Windows"),
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ):
        if needle in ua:
            system = name
            break
    return f"{browser} on {system}" if system else browser


def recent_sign_ins(user: User, limit: int = 20) -> list[dict]:
    events = AuditEvent.objects.filter(
        Q(actor=user)
        | Q(actor__isnull=True, actor_label=user.email)
        | Q(target_type="user", target_id=str(user.pk)),
        action__in=SIGN_IN_ACTIONS,
    ).order_by("-seq")[:limit]
    return [
        {
            "at": event.created_at,
            "action": event.action,
            "label": ACTION_LABELS.get(event.action, event.action),
            "ip": event.ip,
            "failed": event.action in {"auth.login_failed", "auth.otp_failed", "auth.locked_out"},
        }
        for event in events
    ]


def _security_context(request: HttpRequest, **extra: object) -> dict:
    user = request.user
    current = request.session.session_key
    rows: list[UserSession] = list(sessions.active_sessions(user))
    return {
        "sessions": [
            {
                "row": row,
                "device": device_label(row.user_agent),
                "current": row.session_key == current,
            }
            for row in rows
        ],
        "other_sessions": sum(1 for row in rows if row.session_key != current),
        "sign_ins": recent_sign_ins(user),
        "recovery_codes_left": twofactor.recovery_codes_left(user),
        "idle_minutes": int(sessions.idle_limit().total_seconds() // 60),
        "lifetime_hours": int(sessions.absolute_limit().total_seconds() // 3600),
        "password_form": extra.pop("password_form", None) or PasswordChangeForm(),
        "codes_form": extra.pop("codes_form", None) or ConfirmPasswordForm(),
        **extra,
    }


@login_required
@require_http_methods(["GET"])
def security_page(request: HttpRequest) -> HttpResponse:
    return render(request, "liaison/security/page.html", _security_context(request))


@login_required
@require_POST
@page
def revoke_session(request: HttpRequest, session_id: int) -> HttpResponse:
    current = UserSession.objects.filter(
        pk=session_id, session_key=request.session.session_key
    ).exists()
    if current:
        sign_out(request)
        return redirect("login")
    sessions.revoke_session(actor=request.user, session_id=session_id, ip=client_ip(request))
    messages.success(request, _("That session has been signed out."))
    return redirect("security")


@login_required
@require_POST
def logout_everywhere(request: HttpRequest) -> HttpResponse:
    count = sessions.end_other_sessions(
        actor=request.user, keep_session_key=request.session.session_key, ip=client_ip(request)
    )
    messages.success(
        request,
        ngettext(
            "Signed out of %(count)s other session.",
            "Signed out of %(count)s other sessions.",
            count,
        )
        % {"count": count}
        if count
        else _("There were no other sessions."),
    )
    return redirect("security")


@login_required
@require_POST
def change_password(request: HttpRequest) -> HttpResponse:
    user = request.user
    if is_locked_out(request, user.email):
        return lockout_response(request)
    form = PasswordChangeForm(request.POST)
    if form.is_valid():
        try:
            accounts.change_password(
                user=user,
                current_password=form.cleaned_data["current_password"],
                new_password=form.cleaned_data["new_password"],
                keep_session_key=request.session.session_key,
                ip=client_ip(request),
            )
        except Invalid as error:
            if error.field == "current_password":
                _count_password_failure(request, user.email)
            form.add_error(error.field if error.field in form.fields else None, error.detail)
        else:
            old_key = request.session.session_key
            update_session_auth_hash(request, user)  # keeps this session, with a new key
            sessions.rekey_session(old_key=old_key, new_key=request.session.session_key)
            messages.success(request, _("Your password has been changed; other sessions ended."))
            return redirect("security")
    return render(
        request,
        "liaison/security/page.html",
        _security_context(request, password_form=form),
        status=400,
    )


def _count_password_failure(request: HttpRequest, email: str) -> None:
    """A wrong current password on the security page counts toward the sign-in lockout, so a
    stolen session cannot be used to guess the password."""
    from django.conf import settings
    from django.contrib.auth.signals import user_login_failed

    user_login_failed.send(
        sender=__name__,
        credentials={settings.AXES_USERNAME_FORM_FIELD: email, "stage": "password_change"},
        request=request,
    )


@login_required
@require_POST
def regenerate_recovery_codes(request: HttpRequest) -> HttpResponse:
    user = request.user
    if is_locked_out(request, user.email):
        return lockout_response(request)
    form = ConfirmPasswordForm(request.POST)
    if form.is_valid():
        if user.check_password(form.cleaned_data["password"]):
            codes = twofactor.regenerate_recovery_codes(user=user, ip=client_ip(request))
            return render(
                request,
                "liaison/security/recovery_codes.html",
                {"codes": codes, "next": reverse("security"), "fresh_enrolment": False},
            )
        _count_password_failure(request, user.email)
        form.add_error("password", _("That password is not correct."))
    return render(
        request,
        "liaison/security/page.html",
        _security_context(request, codes_form=form),
        status=400,
    )


@login_required
@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest) -> HttpResponse:
    """Set up the authenticator: QR code and secret, then a code to confirm; recovery codes
    are shown once on success."""
    user = request.user
    next_url = safe_next(request)
    if twofactor.has_two_factor(user):
        return redirect(next_url if request.user.is_verified() else "login-otp")
    device = twofactor.begin_enrolment(user=user)
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                device, codes = twofactor.confirm_enrolment(
                    user=user, token=form.cleaned_data["code"], ip=client_ip(request)
                )
            except Invalid as error:
                form.add_error("code", error.detail)
            else:
                old_key = request.session.session_key
                request.session.cycle_key()
                sessions.rekey_session(old_key=old_key, new_key=request.session.session_key)
                otp_login(request, device)
                clear_failures(request, user.email)
                return render(
                    request,
                    "liaison/security/recovery_codes.html",
                    {"codes": codes, "next": next_url, "fresh_enrolment": True},
                )
    return render(
        request,
        "liaison/security/enrol.html",
        {
            "form": form,
            "qr_code": twofactor.qr_code_data_uri(device),
            "secret": twofactor.secret_base32(device),
            "secret_groups": _groups(twofactor.secret_base32(device)),
            "next": next_url,
            "issuer": "Liaison",
        },
        status=status,
    )


def _groups(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A refused cross-site request (``CSRF_FAILURE_VIEW``): JSON under /api/, a page elsewhere."""
    detail = (
        "The request was refused: the page was open too long or came from another site. "
        "Reload the page and try again."
    )
    if request.path.startswith("/api/"):
        return json_error(
            "csrf_failed",
            _(
                "Missing or wrong CSRF token: GET /api/v1/session first and send its csrf_token "
                "in the X-CSRFToken header."
            ),
            403,
        )
    return render(
        request, "liaison/error.html", {"title": "Request refused", "detail": detail}, status=403
    )
