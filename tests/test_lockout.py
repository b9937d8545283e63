"""Brute-force protection: five failures per account or per address within 15 minutes lock
sign-in, for the password and the code alike, on the pages and the API; the lock lifts after
the window."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from liaison.models import AuditEvent, User
from tests.factories import UserFactory
from tests.security_support import (
    api_client,
    api_post_session,
    authenticator,
    code_step,
    current_code,
    password_step,
    wrong_code,
)

pytestmark = pytest.mark.django_db


WINDOW_SECONDS = 15 * 60


@pytest.fixture
def clock(time_machine: Any) -> Any:
    time_machine.move_to("2026-03-02 09:00:00+00:00", tick=False)
    return time_machine


def wrong_password(client: Client, user: User, **extra: Any) -> Any:
    return client.post(
        "/login/", {"username": user.email, "password": "not-the-password-1"}, **extra
    )


def test_five_wrong_passwords_lock_the_account_with_a_clear_message(
    client: Client, uk_officer: User, password: str, clock: Any
) -> None:
    authenticator(uk_officer)
    for _ in range(4):
        assert wrong_password(client, uk_officer).status_code == 400
    locked = wrong_password(client, uk_officer)
    assert locked.status_code == 429
    assert b"Too many failed sign-in attempts" in locked.content
    assert b"15 minutes" in locked.content
    # Even the right password is refused now.
    assert password_step(client, uk_officer, password).status_code == 429
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(
        action="auth.locked_out", actor_label=uk_officer.email
    ).exists()


def test_the_lock_lifts_after_fifteen_minutes(
    client: Client, uk_officer: User, password: str, clock: Any
) -> None:
    device = authenticator(uk_officer)
    for _ in range(5):
        wrong_password(client, uk_officer)
    clock.shift(WINDOW_SECONDS - 60)
    assert password_step(client, uk_officer, password).status_code == 429
    clock.shift(61)
    response = password_step(client, uk_officer, password)
    assert response.status_code == 302
    assert code_step(client, current_code(device)).status_code == 302
    assert client.session["_auth_user_id"] == str(uk_officer.pk)


def test_failures_spread_over_more_than_the_window_do_not_lock(
    client: Client, uk_officer: User, password: str, clock: Any
) -> None:
    authenticator(uk_officer)
    for _ in range(4):
        wrong_password(client, uk_officer)
    clock.shift(WINDOW_SECONDS + 1)
    for _ in range(4):
        assert wrong_password(client, uk_officer).status_code == 400
    assert password_step(client, uk_officer, password).status_code == 302


def test_the_account_is_locked_whatever_address_the_guesses_come_from(
    uk_officer: User, password: str, clock: Any
) -> None:
    authenticator(uk_officer)
    for n in range(5):
        wrong_password(Client(), uk_officer, REMOTE_ADDR=f"203.0.113.{n + 1}")
    response = password_step(Client(), uk_officer, password, REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 429


def test_an_address_is_locked_whatever_accounts_it_tries(
    client: Client, gz_officer: User, password: str, clock: Any
) -> None:
    authenticator(gz_officer)
    for n in range(5):
        client.post("/login/", {"username": f"guess{n}@hmrc.example", "password": "x" * 14})
    assert password_step(client, gz_officer, password).status_code == 429
    elsewhere = password_step(Client(), gz_officer, password, REMOTE_ADDR="198.51.100.7")
    assert elsewhere.status_code == 302


def test_wrong_codes_count_toward_the_same_lockout(
    client: Client, uk_officer: User, password: str, clock: Any
) -> None:
    device = authenticator(uk_officer)
    assert password_step(client, uk_officer, password).status_code == 302
    for _ in range(4):
        assert code_step(client, wrong_code(device)).status_code == 400
        clock.shift(20)  # past django-otp's own growing delay between guesses
    locked = code_step(client, wrong_code(device))
    assert locked.status_code == 429
    assert b"Too many failed sign-in attempts" in locked.content
    assert AuditEvent.objects.filter(action="auth.otp_failed", actor=uk_officer).count() == 5
    assert AuditEvent.objects.filter(action="auth.locked_out").exists()
    # Neither step works while locked, not even with the right code or password.
    clock.shift(20)
    assert code_step(client, current_code(device)).status_code == 429
    assert password_step(Client(), uk_officer, password).status_code == 429
    assert "_auth_user_id" not in client.session

    clock.shift(WINDOW_SECONDS)
    assert password_step(client, uk_officer, password).status_code == 302
    assert code_step(client, current_code(device)).status_code == 302
    assert client.session["_auth_user_id"] == str(uk_officer.pk)


def test_passing_the_password_again_does_not_reset_the_code_failures(
    client: Client, uk_officer: User, password: str, clock: Any
) -> None:
    device = authenticator(uk_officer)
    statuses = []
    for _ in range(5):
        assert password_step(client, uk_officer, password).status_code == 302
        statuses.append(code_step(client, wrong_code(device)).status_code)
        clock.shift(20)
    assert statuses == [400, 400, 400, 400, 429]
    assert password_step(client, uk_officer, password).status_code == 429


def test_a_successful_sign_in_clears_earlier_failures(
    client: Client, uk_officer: User, password: str, clock: Any
) -> None:
    device = authenticator(uk_officer)
    for _ in range(4):
        wrong_password(client, uk_officer)
    password_step(client, uk_officer, password)
    code_step(client, current_code(device))
    client.post("/logout/")
    for _ in range(4):
        assert wrong_password(client, uk_officer).status_code == 400


# --- the JSON sign-in ---------------------------------------------------------------------------


def test_the_api_locks_after_five_wrong_passwords_and_lifts_after_the_window(
    uk_officer: User, password: str, clock: Any
) -> None:
    device = authenticator(uk_officer)
    client = api_client()
    body = {"email": uk_officer.email, "password": "wrong-password-99", "otp": "123456"}
    for _ in range(4):
        assert api_post_session(client, body).status_code == 401
    locked = api_post_session(client, body)
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "locked_out"
    good = {"email": uk_officer.email, "password": password, "otp": current_code(device)}
    assert api_post_session(client, good).status_code == 429

    clock.shift(WINDOW_SECONDS + 1)
    good["otp"] = current_code(device)
    response = api_post_session(client, good)
    assert response.status_code == 200
    assert response.json()["user"]["email"] == uk_officer.email


def test_the_api_counts_wrong_codes_toward_the_lockout(
    uk_officer: User, password: str, clock: Any
) -> None:
    device = authenticator(uk_officer)
    client = api_client()
    for _ in range(4):
        body = {"email": uk_officer.email, "password": password, "otp": wrong_code(device)}
        response = api_post_session(client, body)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "otp_invalid"
        clock.shift(20)
    body = {"email": uk_officer.email, "password": password, "otp": wrong_code(device)}
    assert api_post_session(client, body).status_code == 429
    clock.shift(20)
    good = {"email": uk_officer.email, "password": password, "otp": current_code(device)}
    assert api_post_session(client, good).status_code == 429
    # The pages share the lock.
    assert password_step(Client(), uk_officer, password).status_code == 429

    clock.shift(WINDOW_SECONDS)
    good["otp"] = current_code(device)
    assert api_post_session(client, good).status_code == 200


def test_failures_on_the_page_and_the_api_add_up(
    uk_officer: User, password: str, clock: Any
) -> None:
    authenticator(uk_officer)
    page = Client()
    for _ in range(3):
        wrong_password(page, uk_officer)
    client = api_client()
    body = {"email": uk_officer.email, "password": "wrong-password-99", "otp": "123456"}
    assert api_post_session(client, body).status_code == 401
    assert api_post_session(client, body).status_code == 429


def test_unknown_accounts_are_locked_the_same_way(clock: Any) -> None:
    UserFactory(email="someone@hmrc.example")
    client = Client()
    for _ in range(4):
        response = client.post("/login/", {"username": "nobody@hmrc.example", "password": "x" * 14})
        assert response.status_code == 400
    response = client.post("/login/", {"username": "nobody@hmrc.example", "password": "x" * 14})
    assert response.status_code == 429


def test_a_password_only_sign_in_elsewhere_does_not_clear_wrong_codes(
    password: str, clock: Any
) -> None:
    """Django's admin sign-in takes the password alone (the second step still follows): it must
    not wipe the count of wrong codes."""
    staff = UserFactory(email="ops@hmrc.example", is_staff=True)
    device = authenticator(staff)
    client = Client()
    password_step(client, staff, password)
    for _ in range(4):
        assert code_step(client, wrong_code(device)).status_code == 400
        clock.shift(20)
    admin_sign_in = client.post(
        "/django-admin/login/", {"username": staff.email, "password": password}
    )
    assert admin_sign_in.status_code == 302
    assert client.get("/django-admin/")["Location"].startswith("/login/otp/")
    assert code_step(client, wrong_code(device)).status_code == 429
