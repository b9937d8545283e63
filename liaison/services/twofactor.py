"""Two-factor authentication: TOTP enrolment, the second sign-in step, recovery codes.

Every account needs a confirmed TOTP device (django-otp) before it can do anything else.
``TOTPDevice.verify_token`` refuses a code whose time step is not newer than the last one
accepted, so a code works once, and throttles guesses on the device. Recovery codes are ten
random single-use codes, shown once and stored only as salted SHA-256 hashes; they are random
enough (about 59 bits each) that a slow password hash adds nothing.

Failed second steps are audited here; counting them toward the sign-in lockout (django-axes)
happens where the request is, in the sign-in views.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import math
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import segno
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, ngettext
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from liaison import audit
from liaison.errors import Invalid, LiaisonError
from liaison.models import RecoveryCode, User

RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
RECOVERY_CODE_LENGTH = 12
DEVICE_NAME = "Authenticator app"
TOTP_PATTERN = re.compile(r"\d{6}")


class OtpRequired(LiaisonError):
    """Two-factor authentication is required."""

    code = "otp_required"
    http_status = 401
    default_detail = gettext_lazy("Two-factor authentication is required.")


class OtpInvalid(LiaisonError):
    """That code is not valid."""

    code = "otp_invalid"
    http_status = 401
    default_detail = gettext_lazy("That code is not valid.")


@dataclass(frozen=True)
class SecondFactor:
    """A passed second step: the device that now verifies the session, and how it was passed."""

    device: TOTPDevice
    method: str  # "totp" or "recovery_code"
    recovery_codes_left: int | None = None


# --- devices ----------------------------------------------------------------------------------


def confirmed_device(user: User) -> TOTPDevice | None:
    if user is None or not user.pk:
        return None
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def has_two_factor(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def session_is_verified(
    *, user: User, session_data: dict[str, Any], confirmed_totp_ids: set[int] | None = None
) -> bool:
    """Whether a session's data shows a passed second factor with a current device of ``user``.
    ``confirmed_totp_ids``: the person's confirmed authenticators, when the caller has read them
    already (a socket's admission); otherwise the device is read."""
    persistent_id = session_data.get(DEVICE_ID_SESSION_KEY)
    if not persistent_id:
        return False
    label, _, ident = str(persistent_id).rpartition("/")
    if confirmed_totp_ids is not None and label == TOTPDevice.model_label() and ident.isdigit():
        return int(ident) in confirmed_totp_ids
    device = Device.from_persistent_id(str(persistent_id))
    return device is not None and device.user_id == user.pk and bool(device.confirmed)


def secret_base32(device: TOTPDevice) -> str:
    """The shared secret as authenticator apps expect it to be typed in."""
    return base64.b32encode(device.bin_key).decode("ascii").rstrip("=")


def qr_code_data_uri(device: TOTPDevice) -> str:
    """The ``otpauth://`` URL as a QR code: an SVG image in a data URI, drawn on the server
    (the Content-Security-Policy allows ``data:`` images and no inline script)."""
    qr = segno.make(device.config_url, error="m")
    buffer = io.BytesIO()
    qr.save(buffer, kind="svg", scale=5, border=2, xmldecl=False)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def code_for(device: TOTPDevice, *, at: float | None = None) -> str | None:
    """A code ``device`` accepts at time ``at`` (now by default): the current one, or the next
    one if the current one was already used. ``None`` if both are used.

    What an authenticator app computes; used by ``demo --otp`` and by tests.
    """
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() if at is None else at
    now_t = totp.t()
    target = max(now_t, device.last_t + 1)
    if target > now_t + device.tolerance:
        return None
    totp.drift = device.drift + (target - now_t)
    return f"{totp.token():0{device.digits}d}"


# --- enrolment --------------------------------------------------------------------------------


def _device_being_set_up(user: User) -> TOTPDevice | None:
    """The user's unconfirmed device, row-locked; refused once a device is confirmed.
    Call inside a transaction."""
    if has_two_factor(user):
        raise Invalid(gettext("Two-factor authentication is already set up for this account."))
    return (
        TOTPDevice.objects.select_for_update()
        .filter(user=user, confirmed=False)
        .order_by("pk")
        .first()
    )


def begin_enrolment(*, user: User) -> TOTPDevice:
    """The unconfirmed device the user is setting up (made once, so reloading the page keeps
    the same secret). Refused when the user already has a confirmed device."""
    with transaction.atomic():
        device = _device_being_set_up(user)
        if device is None:
            device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def seconds_to_wait(device: TOTPDevice) -> int:
    """How long the device still refuses to check a code after a wrong one (django-otp waits
    1 s after the first failure, then 2, 4, 8…); 0 when it checks codes now."""
    allowed, details = device.verify_is_allowed()
    if allowed or not details or "locked_until" not in details:
        return 0
    remaining = (details["locked_until"] - timezone.now()).total_seconds()
    return max(1, math.ceil(remaining))


def confirm_enrolment(*, user: User, token: str, ip: str | None) -> tuple[TOTPDevice, list[str]]:
    """Confirm the device being set up with a code from the app; returns the device and the
    ten new recovery codes (in clear, to show once).

    After a wrong code the device refuses to check codes for a moment, and checking one then
    would fail even when it is right (and lengthen the wait): the officer is told to wait.
    """
    token = (token or "").strip().replace(" ", "")
    if not TOTP_PATTERN.fullmatch(token):
        raise Invalid(gettext("Enter the 6-digit code your authenticator app shows."), field="code")
    wait = 0
    with transaction.atomic():
        device = _device_being_set_up(user)
        if device is None:
            raise Invalid(gettext("Start the set-up again: no authenticator is being set up."))
        wait = seconds_to_wait(device)
        if wait or not device.verify_token(token):
            verified = False
        else:
            verified = True
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user=user, confirmed=False).delete()
            codes = _replace_recovery_codes(user)
            audit.record(
                actor=user, action="auth.2fa_enrolled", target=user, ip=ip, device=device.pk
            )
    if wait:
        raise Invalid(
            ngettext(
                "After a wrong code Liaison waits a moment before checking the next one: wait "
                "%(seconds)s second, then enter the code the app shows.",
                "After a wrong code Liaison waits a moment before checking the next one: wait "
                "%(seconds)s seconds, then enter the code the app shows.",
                wait,
            )
            % {"seconds": wait},
            field="code",
        )
    if not verified:
        raise Invalid(
            gettext(
                "That code does not match. Check the time on your phone and enter the current "
                "code (wait a second or two before trying again)."
            ),
            field="code",
        )
    return device, codes


def create_demo_device(*, user: User) -> TOTPDevice:
    """A confirmed authenticator made without a phone, for the demo world only (its secret is
    printed by ``demo --json``)."""
    with transaction.atomic():
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=True)
        audit.record(
            actor=None,
            actor_label="demo",
            action="auth.2fa_enrolled",
            target=user,
            device=device.pk,
            via="demo",
        )
    return device


# --- the second step --------------------------------------------------------------------------


def _normalise_recovery_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).lower()


def _hash_recovery_code(code: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(16)
    digest = hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()
    return f"sha256${salt}${digest}"


def _recovery_code_matches(code: str, stored: str) -> bool:
    try:
        algorithm, salt, _ = stored.split("$", 2)
    except ValueError:
        return False
    if algorithm != "sha256":
        return False
    return hmac.compare_digest(_hash_recovery_code(code, salt), stored)


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, RECOVERY_CODE_LENGTH, 4))


def _replace_recovery_codes(user: User) -> list[str]:
    """Call inside a transaction."""
    RecoveryCode.objects.filter(user=user).delete()
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user=user, code_hash=_hash_recovery_code(_normalise_recovery_code(code)))
        for code in codes
    )
    return codes


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


def _use_recovery_code(user: User, code: str) -> int | None:
    """Spend a matching unused code; returns how many are left, or ``None`` if none matched.
    Call inside a transaction (the codes are locked so one code works once)."""
    normalised = _normalise_recovery_code(code)
    if len(normalised) != RECOVERY_CODE_LENGTH:
        return None
    unused = list(RecoveryCode.objects.select_for_update().filter(user=user, used_at__isnull=True))
    for candidate in unused:
        if _recovery_code_matches(normalised, candidate.code_hash):
            candidate.used_at = timezone.now()
            candidate.save(update_fields=["used_at"])
            return len(unused) - 1
    return None


def verify_second_factor(*, user: User, code: str, ip: str | None) -> SecondFactor:
    """Check a sign-in's second step: a 6-digit TOTP code or a recovery code.

    Raises ``OtpRequired`` when no code was given or the account has no authenticator yet, and
    ``OtpInvalid`` (audited as ``auth.otp_failed``) for a wrong, reused or throttled code.
    """
    code = (code or "").strip()
    if not code:
        raise OtpRequired(
            "Enter the 6-digit code from your authenticator app, or a recovery code.",
            field="otp",
        )
    device = confirmed_device(user)
    if device is None:
        raise OtpRequired(
            "Two-factor authentication is not set up for this account yet: sign in in a "
            "browser to set it up.",
            field="otp",
        )
    reason = "wrong_code"
    compact = code.replace(" ", "")
    if TOTP_PATTERN.fullmatch(compact):
        with transaction.atomic():
            device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
            allowed, _ = device.verify_is_allowed()
            if allowed and device.verify_token(compact):
                return SecondFactor(device=device, method="totp")
        if not allowed:
            reason = "throttled"
    else:
        with transaction.atomic():
            left = _use_recovery_code(user, code)
            if left is not None:
                audit.record(
                    actor=user,
                    action="auth.recovery_code_used",
                    target=user,
                    ip=ip,
                    remaining=left,
                )
                return SecondFactor(device=device, method="recovery_code", recovery_codes_left=left)
        reason = "wrong_recovery_code"
    with transaction.atomic():
        audit.record(actor=user, action="auth.otp_failed", target=user, ip=ip, reason=reason)
    if reason == "throttled":
        raise OtpInvalid(
            "Too many wrong codes in a row: wait a few seconds, then enter the current code.",
            field="otp",
        )
    raise OtpInvalid(
        "That code is not valid. Codes work once: wait for the next one, or use a recovery code.",
        field="otp",
    )


def regenerate_recovery_codes(*, user: User, ip: str | None) -> list[str]:
    """Replace all of the user's recovery codes with ten new ones (shown once)."""
    with transaction.atomic():
        if not has_two_factor(user):
            raise Invalid(gettext("Set up two-factor authentication first."))
        codes = _replace_recovery_codes(user)
        audit.record(actor=user, action="auth.recovery_codes_regenerated", target=user, ip=ip)
    return codes
