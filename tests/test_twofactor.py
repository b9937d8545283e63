"""Two-factor authentication: every account needs an authenticator, the second sign-in step
refuses wrong and reused codes, recovery codes work once, and an administrator can reset it."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from liaison import events
from liaison.errors import Invalid, PermissionDenied
from liaison.models import AuditEvent, RecoveryCode, User, UserSession
from liaison.services import accounts, twofactor
from tests.security_support import (
    authenticator,
    code_step,
    current_code,
    password_step,
    sign_in_with_both_factors,
    wrong_code,
)

pytestmark = pytest.mark.django_db


def signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def recovery_codes_for(user: User) -> list[str]:
    return twofactor.regenerate_recovery_codes(user=user, ip=None)


# --- the second step ----------------------------------------------------------------------------


def test_a_password_alone_does_not_sign_in_an_officer_with_an_authenticator(
    client: Client, uk_officer: User, password: str
) -> None:
    authenticator(uk_officer)
    response = password_step(client, uk_officer, password)
    assert response.status_code == 302
    assert response["Location"] == "/login/otp/"
    assert signed_in_user_id(client) is None
    assert client.get("/").status_code == 302
    assert client.get("/api/v1/session").json()["authenticated"] is False
    assert not AuditEvent.objects.filter(action="auth.login", actor=uk_officer).exists()


def test_the_right_code_completes_the_sign_in(
    client: Client, uk_officer: User, password: str
) -> None:
    device = authenticator(uk_officer)
    password_step(client, uk_officer, password)
    page = client.get("/login/otp/")
    assert page.status_code == 200
    assert uk_officer.email in page.content.decode()
    response = code_step(client, current_code(device))
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert signed_in_user_id(client) == str(uk_officer.pk)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.login", actor=uk_officer).count() == 1


def test_a_wrong_code_is_refused_and_audited(
    client: Client, uk_officer: User, password: str
) -> None:
    device = authenticator(uk_officer)
    password_step(client, uk_officer, password)
    response = code_step(client, wrong_code(device))
    assert response.status_code == 400
    assert b"not valid" in response.content
    assert signed_in_user_id(client) is None
    failure = AuditEvent.objects.get(action="auth.otp_failed")
    assert failure.actor == uk_officer
    assert failure.details["reason"] == "wrong_code"
    assert failure.ip == "127.0.0.1"


def test_an_empty_code_is_a_form_error(client: Client, uk_officer: User, password: str) -> None:
    authenticator(uk_officer)
    password_step(client, uk_officer, password)
    response = code_step(client, "")
    assert response.status_code == 400
    assert signed_in_user_id(client) is None


def test_a_replayed_code_is_refused(
    client: Client, uk_officer: User, password: str, time_machine: Any
) -> None:
    time_machine.move_to("2026-03-02 09:00:05+00:00", tick=False)
    device = authenticator(uk_officer)
    password_step(client, uk_officer, password)
    used = current_code(device)
    assert code_step(client, used).status_code == 302
    client.post("/logout/")

    password_step(client, uk_officer, password)
    response = code_step(client, used)
    assert response.status_code == 400
    assert signed_in_user_id(client) is None
    assert AuditEvent.objects.filter(action="auth.otp_failed", actor=uk_officer).exists()
    # The next code is still good (once the throttle after the failure has passed).
    time_machine.shift(3)
    assert code_step(client, current_code(device)).status_code == 302


def test_the_second_step_needs_the_password_step_first(client: Client) -> None:
    response = client.get("/login/otp/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    response = code_step(client, "123456")
    assert response.status_code == 302
    assert signed_in_user_id(client) is None


def test_the_second_step_must_follow_the_password_within_minutes(
    client: Client, uk_officer: User, password: str, time_machine: Any
) -> None:
    time_machine.move_to("2026-03-02 09:00:00+00:00", tick=False)
    device = authenticator(uk_officer)
    password_step(client, uk_officer, password)
    time_machine.shift(301)
    response = code_step(client, current_code(device))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert signed_in_user_id(client) is None


def test_the_session_key_is_rotated_when_the_sign_in_completes(
    client: Client, uk_officer: User, password: str
) -> None:
    device = authenticator(uk_officer)
    password_step(client, uk_officer, password)
    before = client.session.session_key
    assert before
    code_step(client, current_code(device))
    after = client.session.session_key
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()
    assert UserSession.objects.filter(session_key=after, user=uk_officer).exists()


# --- recovery codes -----------------------------------------------------------------------------


def test_a_recovery_code_signs_in_once(client: Client, uk_officer: User, password: str) -> None:
    authenticator(uk_officer)
    codes = recovery_codes_for(uk_officer)
    password_step(client, uk_officer, password)
    response = code_step(client, codes[3].upper())
    assert response.status_code == 302
    assert signed_in_user_id(client) == str(uk_officer.pk)
    used = AuditEvent.objects.get(action="auth.recovery_code_used")
    assert used.actor == uk_officer
    assert used.details["remaining"] == 9
    assert twofactor.recovery_codes_left(uk_officer) == 9
    client.post("/logout/")

    password_step(client, uk_officer, password)
    response = code_step(client, codes[3])
    assert response.status_code == 400
    assert signed_in_user_id(client) is None
    assert (
        AuditEvent.objects.get(action="auth.otp_failed").details["reason"] == "wrong_recovery_code"
    )


def test_recovery_codes_are_stored_only_as_salted_hashes(uk_officer: User) -> None:
    authenticator(uk_officer)
    codes = recovery_codes_for(uk_officer)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    stored = list(RecoveryCode.objects.filter(user=uk_officer).values_list("code_hash", flat=True))
    assert len(stored) == 10
    for code in codes:
        assert re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", code)
        compact = code.replace("-", "")
        assert all(code not in value and compact not in value for value in stored)
    salts = {value.split("$")[1] for value in stored}
    assert len(salts) == 10


def test_new_recovery_codes_void_the_old_ones(
    client: Client, uk_officer: User, password: str, login_as: Any
) -> None:
    authenticator(uk_officer)
    old = recovery_codes_for(uk_officer)
    login_as(client, uk_officer)
    response = client.post("/account/security/recovery-codes/", {"password": password})
    assert response.status_code == 200
    new = re.findall(r"<code>([a-z2-9-]{14})</code>", response.content.decode())
    assert len(new) == 10
    assert not set(new) & set(old)
    assert AuditEvent.objects.filter(
        action="auth.recovery_codes_regenerated", actor=uk_officer
    ).exists()
    client.post("/logout/")
    password_step(client, uk_officer, password)
    assert code_step(client, old[0]).status_code == 400


def test_making_new_recovery_codes_needs_the_password(
    client: Client, uk_officer: User, login_as: Any
) -> None:
    authenticator(uk_officer)
    old = recovery_codes_for(uk_officer)
    login_as(client, uk_officer)
    response = client.post("/account/security/recovery-codes/", {"password": "not-my-password"})
    assert response.status_code == 400
    assert b"not correct" in response.content
    stored = RecoveryCode.objects.filter(user=uk_officer, used_at__isnull=True)
    assert stored.count() == len(old)


# --- enrolment ----------------------------------------------------------------------------------


def test_a_new_officer_must_set_up_two_factor_before_anything_else(
    client: Client, uk_officer: User, password: str
) -> None:
    response = password_step(client, uk_officer, password)
    assert response.status_code == 302
    assert response["Location"] == "/account/2fa/setup/"
    home = client.get("/")
    assert home.status_code == 302
    assert home["Location"] == "/account/2fa/setup/"
    security = client.get("/account/security/")
    assert security["Location"] == "/account/2fa/setup/?next=%2Faccount%2Fsecurity%2F"
    api = client.get("/api/v1/unread")
    assert api.status_code == 403
    assert api.json()["error"]["code"] == "otp_required"
    assert client.get("/account/2fa/setup/").status_code == 200


def test_enrolment_shows_a_server_drawn_qr_code_and_the_secret(
    client: Client, uk_officer: User, password: str
) -> None:
    password_step(client, uk_officer, password)
    page = client.get("/account/2fa/setup/").content.decode()
    device = TOTPDevice.objects.get(user=uk_officer, confirmed=False)
    secret = twofactor.secret_base32(device)
    assert f'data-secret="{secret}"' in page
    image = re.search(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', page)
    assert image is not None
    svg = base64.b64decode(image.group(1)).decode()
    assert svg.startswith("<svg")
    assert "<script" not in svg
    # Reloading keeps the same secret (the phone may already have it).
    client.get("/account/2fa/setup/")
    assert TOTPDevice.objects.filter(user=uk_officer).count() == 1


def test_enrolment_is_confirmed_with_a_code_and_shows_ten_recovery_codes(
    client: Client, uk_officer: User, password: str
) -> None:
    password_step(client, uk_officer, password)
    client.get("/account/2fa/setup/")
    device = TOTPDevice.objects.get(user=uk_officer, confirmed=False)
    key_before = client.session.session_key

    refused = client.post("/account/2fa/setup/", {"code": wrong_code(device)})
    assert refused.status_code == 400
    assert b"does not match" in refused.content
    assert not TOTPDevice.objects.filter(user=uk_officer, confirmed=True).exists()

    device.throttle_reset()
    response = client.post("/account/2fa/setup/", {"code": current_code(device)})
    assert response.status_code == 200
    codes = re.findall(r"<code>([a-z2-9-]{14})</code>", response.content.decode())
    assert len(codes) == 10
    device.refresh_from_db()
    assert device.confirmed
    assert RecoveryCode.objects.filter(user=uk_officer).count() == 10
    enrolled = AuditEvent.objects.get(action="auth.2fa_enrolled")
    assert enrolled.actor == uk_officer
    assert client.session.session_key != key_before
    assert client.get("/").status_code == 200
    # Set up once: the page now leads on.
    assert client.get("/account/2fa/setup/").status_code == 302


def test_a_right_code_just_after_a_wrong_one_is_told_to_wait_not_that_it_does_not_match(
    client: Client, uk_officer: User, password: str, time_machine: Any
) -> None:
    time_machine.move_to("2026-03-02 09:00:05+00:00", tick=False)
    password_step(client, uk_officer, password)
    page = client.get("/account/2fa/setup/").content.decode()
    assert "After a wrong one, Liaison waits a moment" in page
    device = TOTPDevice.objects.get(user=uk_officer, confirmed=False)
    assert client.post("/account/2fa/setup/", {"code": wrong_code(device)}).status_code == 400

    # Within the second django-otp waits after a failure, the right code is not checked at all:
    # the officer is told to wait (and the wait does not grow).
    time_machine.shift(0.5)
    refused = client.post("/account/2fa/setup/", {"code": current_code(device)})
    assert refused.status_code == 400
    text = refused.content.decode()
    assert "wait 1 second, then enter the code the app shows" in text
    assert "does not match" not in text
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    assert not device.confirmed

    time_machine.shift(1)
    response = client.post("/account/2fa/setup/", {"code": current_code(device)})
    assert response.status_code == 200
    device.refresh_from_db()
    assert device.confirmed


def test_the_wait_after_several_wrong_codes_is_counted_in_seconds(
    uk_officer: User, time_machine: Any
) -> None:
    time_machine.move_to("2026-03-02 09:00:05+00:00", tick=False)
    device = twofactor.begin_enrolment(user=uk_officer)
    for _ in range(3):
        with pytest.raises(Invalid):
            twofactor.confirm_enrolment(user=uk_officer, token=wrong_code(device), ip=None)
        time_machine.shift(10)
    device.refresh_from_db()
    assert twofactor.seconds_to_wait(device) == 0
    with pytest.raises(Invalid):
        twofactor.confirm_enrolment(user=uk_officer, token=wrong_code(device), ip=None)
    device.refresh_from_db()
    # Four failures in a row: 8 seconds from the last one.
    assert twofactor.seconds_to_wait(device) == 8
    time_machine.shift(5.5)
    with pytest.raises(Invalid, match="wait 3 seconds"):
        twofactor.confirm_enrolment(user=uk_officer, token=current_code(device), ip=None)


def test_an_unverified_session_is_sent_to_the_second_step(client: Client, uk_officer: User) -> None:
    device = authenticator(uk_officer)
    client.force_login(uk_officer)
    response = client.get("/account/security/")
    assert response.status_code == 302
    assert response["Location"] == "/login/otp/?next=%2Faccount%2Fsecurity%2F"
    api = client.get("/api/v1/unread")
    assert api.status_code == 401
    assert api.json()["error"]["code"] == "otp_required"

    before = client.session.session_key
    response = client.post("/login/otp/?next=/account/security/", {"code": current_code(device)})
    assert response.status_code == 302
    assert response["Location"] == "/account/security/"
    after = client.session.session_key
    assert after != before
    assert UserSession.objects.filter(session_key=after, ended_at__isnull=True).exists()
    assert client.get("/account/security/").status_code == 200


def test_sign_in_pages_stay_reachable_before_the_second_factor(
    client: Client, uk_officer: User
) -> None:
    client.force_login(uk_officer)
    assert client.get("/healthz").status_code in {200, 503}
    assert client.get("/login/otp/").status_code == 302  # no device yet: to enrolment
    assert client.get("/account/2fa/setup/").status_code == 200
    assert client.get("/api/v1/session").status_code == 200
    assert client.post("/logout/").status_code == 302


# --- the administrator's reset ------------------------------------------------------------------


def test_an_admin_reset_removes_the_authenticator_and_ends_every_session(
    client: Client,
    admin: User,
    uk_officer: User,
    password: str,
    login_as: Any,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    authenticator(uk_officer)
    recovery_codes_for(uk_officer)
    login_as(client, uk_officer)
    session_key = client.session.session_key

    with django_capture_on_commit_callbacks(execute=True):
        accounts.reset_two_factor(actor=admin, user=uk_officer)

    assert not TOTPDevice.objects.filter(user=uk_officer).exists()
    assert not RecoveryCode.objects.filter(user=uk_officer).exists()
    assert not Session.objects.filter(session_key=session_key).exists()
    row = UserSession.objects.get(session_key=session_key)
    assert row.end_reason == "2fa_reset"
    uk_officer.refresh_from_db()
    assert uk_officer.sessions_valid_after is not None
    reset = AuditEvent.objects.get(action="auth.2fa_reset")
    assert reset.actor == admin
    assert reset.target_id == str(uk_officer.pk)
    assert reset.details["sessions_ended"] == 1
    sent = captured_events.to_group(events.user_group(uk_officer.pk))
    assert events.session_ended(session_key=None) in sent
    assert events.session_ended(session_key=session_key) in sent

    assert client.get("/").status_code == 302
    response = password_step(Client(), uk_officer, password)
    assert response["Location"] == "/account/2fa/setup/"


def test_only_admins_reset_two_factor(gz_officer: User, uk_officer: User) -> None:
    authenticator(uk_officer)
    with pytest.raises(PermissionDenied):
        accounts.reset_two_factor(actor=gz_officer, user=uk_officer)
    assert TOTPDevice.objects.filter(user=uk_officer).exists()
    assert not AuditEvent.objects.filter(action="auth.2fa_reset").exists()


def test_the_test_sign_in_helper_gives_a_fully_valid_session(
    client: Client, uk_officer: User, login_as: Any
) -> None:
    from liaison.services.sessions import socket_session_problem

    login_as(client, uk_officer)
    assert client.get("/").status_code == 200
    assert (
        socket_session_problem(user_id=uk_officer.pk, session_key=client.session.session_key)
        is None
    )


def test_signing_in_with_both_factors_through_the_pages(
    client: Client, gz_officer: User, password: str
) -> None:
    sign_in_with_both_factors(client, gz_officer, password)
    assert client.get("/account/security/").status_code == 200
