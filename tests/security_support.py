"""Small helpers for the account security tests: an authenticator, its codes, the two sign-in
steps as a browser would take them."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from liaison.models import User
from liaison.services.twofactor import code_for


def authenticator(user: User) -> TOTPDevice:
    """The officer's phone: a confirmed TOTP device."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def current_code(device: TOTPDevice) -> str:
    """What the phone shows now (or the next code if this one was used already)."""
    device.refresh_from_db()
    code = code_for(device)
    assert code is not None, "both the current and the next code were used"
    return code


def wrong_code(device: TOTPDevice) -> str:
    """A 6-digit code the device does not accept now (none of the codes in its window)."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    window = set()
    for offset in range(-device.tolerance, device.tolerance + 1):
        totp.drift = device.drift + offset
        window.add(f"{totp.token():06d}")
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in window)


def password_step(client: Client, user: User, password: str, **extra: Any) -> Any:
    return client.post("/login/", {"username": user.email, "password": password}, **extra)


def code_step(client: Client, code: str, **extra: Any) -> Any:
    return client.post("/login/otp/", {"code": code}, **extra)


def sign_in_with_both_factors(client: Client, user: User, password: str, **extra: Any) -> Any:
    device = authenticator(user)
    response = password_step(client, user, password, **extra)
    assert response.status_code == 302, response.content
    assert response["Location"].startswith("/login/otp/")
    response = code_step(client, current_code(device), **extra)
    assert response.status_code == 302, response.content
    return response


def api_client() -> Client:
    """A client that enforces CSRF like a browser does, primed with the token."""
    client = Client(enforce_csrf_checks=True)
    client.get("/api/v1/session")
    return client


def api_post_session(client: Client, body: dict[str, Any], **extra: Any) -> Any:
    from django.conf import settings

    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    return client.post(
        "/api/v1/session",
        body,
        content_type="application/json",
        headers={"X-CSRFToken": token},
        **extra,
    )
