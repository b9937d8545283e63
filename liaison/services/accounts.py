"""Account security actions: password changes and an administrator's two-factor reset."""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from liaison import audit
from liaison.errors import Invalid, PermissionDenied
from liaison.models import RecoveryCode, User
from liaison.services import sessions


def validate_new_password(
    password: str, *, user: User | None = None, field: str = "password"
) -> None:
    """Run the configured password validators (length 12+, common, numeric, similar to the
    e-mail or name); ``Invalid`` names every rule the password breaks. Every form that sets a
    password goes through this or Django's ``validate_password``."""
    try:
        password_validation.validate_password(password, user)
    except ValidationError as error:
        raise Invalid(" ".join(error.messages), field=field) from None


def change_password(
    *,
    user: User,
    current_password: str,
    new_password: str,
    keep_session_key: str | None,
    ip: str | None,
) -> int:
    """Change the user's own password after checking the current one. Every other session of
    the user ends (and its sockets close); returns how many."""
    if not user.check_password(current_password or ""):
        raise Invalid("Your current password is not correct.", field="current_password")
    if current_password == new_password:
        raise Invalid("Choose a password different from the current one.", field="new_password")
    validate_new_password(new_password, user=user, field="new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        ended = sessions.end_sessions_after_password_change(
            user=user, keep_session_key=keep_session_key
        )
        audit.record(
            actor=user, action="auth.password_changed", target=user, ip=ip, sessions_ended=ended
        )
    return ended


def reset_two_factor(*, actor: User, user: User, ip: str | None = None) -> None:
    """An administrator's reset for someone who lost their authenticator: their devices and
    recovery codes go, every session of theirs ends, and they set up two-factor again at their
    next sign-in."""
    if not actor.is_admin:
        raise PermissionDenied("Only administrators can reset two-factor authentication.")
    with transaction.atomic():
        devices = TOTPDevice.objects.filter(user=user).delete()[0]
        codes = RecoveryCode.objects.filter(user=user).delete()[0]
        ended = sessions.end_all_sessions(user=user, reason="2fa_reset")
        audit.record(
            actor=actor,
            action="auth.2fa_reset",
            target=user,
            ip=ip,
            devices_removed=devices,
            recovery_codes_removed=codes,
            sessions_ended=ended,
        )
