"""Hooks on Django's authentication signals: the audit log (login ok/failed, logout, lockout) and
session tracking (every signed-in session gets a ``UserSession`` row)."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from liaison import audit
from liaison.models import User
from liaison.services import sessions

# ``credentials["stage"]`` of a failure reported by the second sign-in step: it is counted toward
# the lockout like a wrong password, and audited as ``auth.otp_failed`` by the step itself.
OTP_STAGE = "otp"


def _ip(request: Any) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


@receiver(user_logged_in)
def audit_login(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    with transaction.atomic():
        audit.record(actor=user, action="auth.login", target=user, ip=_ip(request))


@receiver(user_logged_in)
def track_session(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if session is None:
        return
    if session.session_key is None:
        # login() flushed a session that belonged to someone else: give this one its key now.
        session.save()
    sessions.start_session(
        user=user,
        session_key=session.session_key,
        ip=_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )


@receiver(user_logged_out)
def audit_logout(sender: Any, request: Any, user: User | None, **kwargs: Any) -> None:
    if user is None:
        return
    with transaction.atomic():
        audit.record(actor=user, action="auth.logout", target=user, ip=_ip(request))


@receiver(user_login_failed)
def audit_login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    stage = credentials.get("stage")
    if stage == OTP_STAGE:
        return
    label = str(credentials.get("username") or credentials.get("email") or "")[:254]
    details = {"stage": stage} if stage else {}
    with transaction.atomic():
        audit.record(
            actor=None, actor_label=label, action="auth.login_failed", ip=_ip(request), **details
        )


@receiver(user_locked_out)
def audit_locked_out(
    sender: Any, request: Any, username: str | None, ip_address: str | None, **kwargs: Any
) -> None:
    with transaction.atomic():
        audit.record(
            actor=None, actor_label=(username or "")[:254], action="auth.locked_out", ip=ip_address
        )
