"""Account actions: the profile (name, time zone, language, e-mail notifications), password
changes and an administrator's two-factor reset."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from liaison import audit
from liaison.errors import Invalid, PermissionDenied
from liaison.models import RecoveryCode, User
from liaison.models.accounts import validate_time_zone
from liaison.services import sessions

# Longest display name a profile accepts (the column's width).
DISPLAY_NAME_MAX = User._meta.get_field("display_name").max_length


def interface_languages() -> dict[str, str]:
    """The languages an officer may save: code → the language's own name."""
    return dict(settings.LANGUAGES)


def set_language(*, user: User, language: str, ip: str | None) -> bool:
    """Save the user's interface language ("" follows the browser); audited when it changes.
    Returns whether it changed."""
    if language and language not in interface_languages():
        raise Invalid(_("Choose one of the offered languages."), field="language")
    if user.language == language:
        return False
    with transaction.atomic():
        previous = user.language
        user.language = language
        user.save(update_fields=["language"])
        audit.record(
            actor=user,
            action="account.language_changed",
            target=user,
            ip=ip,
            old=previous,
            new=language,
        )
    return True


def update_profile(
    *,
    user: User,
    display_name: str,
    time_zone: str,
    language: str,
    email_notifications: bool,
    ip: str | None,
) -> list[str]:
    """Change what the officer controls about their own account. One audit event names every
    changed field with its old and new value; returns the changed field names."""
    display_name = " ".join((display_name or "").split())
    if not display_name:
        raise Invalid(_("Enter the name other officers will see."), field="display_name")
    if len(display_name) > DISPLAY_NAME_MAX:
        raise Invalid(
            _("A display name has at most %(limit)d characters.") % {"limit": DISPLAY_NAME_MAX},
            field="display_name",
        )
    time_zone = (time_zone or "").strip()
    try:
        validate_time_zone(time_zone)
    except ValidationError:
        raise Invalid(
            _(
                "“%(name)s” is not a time zone Liaison knows. Pick one from the list, "
                "for example Europe/London or Asia/Shanghai."
            )
            % {"name": time_zone},
            field="time_zone",
        ) from None
    if language and language not in interface_languages():
        raise Invalid(_("Choose one of the offered languages."), field="language")
    wanted = {
        "display_name": display_name,
        "time_zone": time_zone,
        "language": language,
        "email_notifications": bool(email_notifications),
    }
    changes = {
        name: {"old": getattr(user, name), "new": value}
        for name, value in wanted.items()
        if getattr(user, name) != value
    }
    if not changes:
        return []
    with transaction.atomic():
        for name, change in changes.items():
            setattr(user, name, change["new"])
        user.save(update_fields=list(changes))
        audit.record(
            actor=user, action="account.profile_changed", target=user, ip=ip, changes=changes
        )
    return list(changes)


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
        raise Invalid(_("Your current password is not correct."), field="current_password")
    if current_password == new_password:
        raise Invalid(_("Choose a password different from the current one."), field="new_password")
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
        raise PermissionDenied(_("Only administrators can reset two-factor authentication."))
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
