"""A new officer's first day, in real headless Chromium against a real server: she accepts her
invitation, sets up her authenticator from the QR page (the test plays the phone, computing codes
from the secret the page shows), signs out, and signs back in with her password and a code."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from liaison.models import Agency, AuditEvent, Exercise, User, UserSession
from liaison.services.invitations import create_invitation
from tests.conftest import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.live_server]

EMAIL = "nadia.rahman@hmrc.example"
PASSWORD = "felixstowe-quay-lantern-27"


class Phone:
    """An authenticator app holding the secret typed in from the set-up page."""

    def __init__(self, secret: str) -> None:
        padded = secret + "=" * (-len(secret) % 8)
        self.key = base64.b32decode(padded)

    def code(self, *, steps_ahead: int = 0) -> str:
        totp = TOTP(self.key)
        totp.time = time.time() + 30 * steps_ahead
        return f"{totp.token():06d}"


def signed_in_at_home(page: Any) -> None:
    expect(page).to_have_url(re.compile(r"^http://[^/]+/$"))
    expect(page.locator(".whoami")).to_contain_text("Nadia Rahman")


def test_a_new_officer_accepts_an_invitation_sets_up_two_factor_and_signs_in_again(
    browser: Any,
    asgi_server: LiveServer,
    admin: User,
    exercise: Exercise,
    hmrc: Agency,
) -> None:
    issued = create_invitation(actor=admin, exercise=exercise, email=EMAIL, agency=hmrc)
    context = browser.new_context(base_url=asgi_server.url, locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda entry: (
            problems.append(entry.text)
            if entry.type == "error" and not entry.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}")
            if response.status >= 400 and not response.url.endswith("/favicon.ico")
            else None
        ),
    )

    # The invitation: a name and a password.
    page.goto(f"/invite/{issued.token}/")
    page.locator("#id_display_name").fill("Nadia Rahman")
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.get_by_role("button", name="Create my account and join").click()

    # Nothing else before two-factor: straight to the set-up page.
    expect(page).to_have_url(re.compile(r"/account/2fa/setup/"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/account/2fa/setup/"))
    qr = page.locator(".qr img")
    expect(qr).to_be_visible()
    assert qr.get_attribute("src").startswith("data:image/svg+xml;base64,")
    assert qr.evaluate("image => image.naturalWidth") > 0  # drawn, not blocked by the CSP
    phone = Phone(page.locator(".totp-secret").inner_text().replace(" ", ""))
    page.locator("#id_code").fill(phone.code())
    page.get_by_role("button", name="Confirm").click()

    expect(page.get_by_role("heading", name="Two-factor authentication is on")).to_be_visible()
    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    page.get_by_role("link", name=re.compile("I have saved them")).click()
    signed_in_at_home(page)

    # Sign out, then back in: password first, then a fresh code (the first one is spent).
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login/"))
    page.locator("#id_username").fill(EMAIL)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/login/otp/"))
    expect(page.get_by_text(EMAIL, exact=True)).to_be_visible()
    page.locator("#id_code").fill(phone.code(steps_ahead=1))
    page.get_by_role("button", name="Verify").click()
    signed_in_at_home(page)

    page.goto("/account/security/")
    expect(page.locator("tr.session.current")).to_have_count(1)
    expect(page.locator(".recovery-codes-left")).to_have_text("10")
    assert problems == []
    context.close()

    nadia = User.objects.get(email=EMAIL)
    assert TOTPDevice.objects.get(user=nadia).confirmed
    actions = list(
        AuditEvent.objects.filter(actor=nadia).order_by("seq").values_list("action", flat=True)
    )
    assert actions[:2] == ["auth.login", "invitation.accepted"] or actions[:2] == [
        "invitation.accepted",
        "auth.login",
    ]
    assert actions.count("auth.2fa_enrolled") == 1
    assert actions.count("auth.login") == 2
    assert actions.count("auth.logout") == 1
    assert UserSession.objects.filter(user=nadia, end_reason="logout").count() == 1
    assert UserSession.objects.filter(user=nadia, ended_at__isnull=True).count() == 1
