"""Audit hooks on Django's authentication signals (login ok/failed, logout, lockout)."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from liaison import audit
from liaison.models import User


def _ip(request: Any) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


@receiver(user_logged_in)
def audit_login(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    with transaction.atomic():
        audit.record(actor=user, action="auth.login", target=user, ip=_ip(request))


@receiver(user_logged_out)
def audit_logout(sender: Any, request: Any, user: User | None, **kwargs: Any) -> None:
    if user is None:
        return
    with transaction.atomic():
        audit.record(actor=user, action="auth.logout", target=user, ip=_ip(request))


@receiver(user_login_failed)
def audit_login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    label = str(credentials.get("username") or credentials.get("email") or "")[:254]
    with transaction.atomic():
        audit.record(actor=None, actor_label=label, action="auth.login_failed", ip=_ip(request))


@receiver(user_locked_out)
def audit_locked_out(
    sender: Any, request: Any, username: str | None, ip_address: str | None, **kwargs: Any
) -> None:
    with transaction.atomic():
        audit.record(
            actor=None, actor_label=(username or "")[:254], action="auth.locked_out", ip=ip_address
        )
