"""Hooks on Django's authentication signals: the audit log (login ok/failed, logout, lockout) and
session tracking (every signed-in session gets a ``UserSession`` row)."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.hashers import is_password_usable
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models.signals import post_init, post_save
from django.dispatch import receiver

from liaison import audit
from liaison.models import User
from liaison.services import revocation, sessions

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


# --- account changes that narrow rights reach open sockets ------------------------------------
# Whatever path changes an account (a service, the Django admin, ``changepassword``, a shell),
# a disabled account, a new password or a new global role makes the person's sockets read
# their grant again, and moves the epochs of their rooms so nothing newer reaches them first.
_RIGHTS_FIELDS = ("password", "is_active", "role")


def _rights(user: User) -> tuple[object, ...]:
    return tuple(user.__dict__.get(name) for name in _RIGHTS_FIELDS)


@receiver(post_init, sender=User)
def remember_rights(sender: Any, instance: User, **kwargs: Any) -> None:
    instance._rights_as_loaded = _rights(instance)


@receiver(post_save, sender=User)
def announce_narrowed_rights(sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
    before = getattr(instance, "_rights_as_loaded", None)
    now = _rights(instance)
    instance._rights_as_loaded = now
    if created or before is None or not _narrowed(before, now):
        return
    with transaction.atomic():
        revocation.narrow_person(user_id=instance.pk)


def _narrowed(before: tuple[object, ...], now: tuple[object, ...]) -> bool:
    (old_password, was_active, old_role), (new_password, is_active, new_role) = before, now
    # A first password on an account that had none cannot end a session: there was none.
    password_changed = (
        old_password != new_password
        and bool(old_password)
        and is_password_usable(str(old_password))
    )
    return password_changed or (was_active and not is_active) or old_role != new_role
