"""The JSON session: GET gives the state and the CSRF token, POST signs in with the e-mail, the
password and the second factor, DELETE signs out."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from liaison.models import AuditEvent, User, UserSession
from liaison.services import twofactor
from tests.security_support import (
    api_client,
    api_post_session,
    authenticator,
    current_code,
    wrong_code,
)

pytestmark = pytest.mark.django_db


def credentials(user: User, password: str, otp: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"email": user.email, "password": password}
    if otp is not None:
        body["otp"] = otp
    return body


def test_get_says_who_is_signed_in_and_sets_the_csrf_cookie(
    client: Client, uk_officer: User, login_as: Any
) -> None:
    anonymous = client.get("/api/v1/session")
    assert anonymous.status_code == 200
    assert anonymous.json()["authenticated"] is False
    assert anonymous.json()["user"] is None
    assert anonymous.json()["csrf_token"]
    assert settings.CSRF_COOKIE_NAME in anonymous.cookies
    assert anonymous["Cache-Control"] == "no-store"

    login_as(client, uk_officer)
    signed_in = client.get("/api/v1/session").json()
    assert signed_in["authenticated"] is True
    assert signed_in["user"]["email"] == uk_officer.email


def test_post_signs_in_with_password_and_code(uk_officer: User, password: str) -> None:
    device = authenticator(uk_officer)
    client = api_client()
    key_before = client.session.session_key
    response = api_post_session(client, credentials(uk_officer, password, current_code(device)))
    assert response.status_code == 200
    assert response.json() == {
        "user": {
            "id": uk_officer.pk,
            "email": uk_officer.email,
            "display_name": "Olivia Hughes",
            "role": "officer",
            "agency": {
                "id": uk_officer.agency.pk,
                "code": "hmrc",
                "name": "HM Revenue & Customs",
            },
        }
    }
    assert settings.SESSION_COOKIE_NAME in response.cookies
    session_key = client.session.session_key
    assert session_key != key_before
    assert UserSession.objects.filter(session_key=session_key, user=uk_officer).exists()
    assert AuditEvent.objects.filter(action="auth.login", actor=uk_officer).count() == 1
    assert client.get("/api/v1/session").json()["authenticated"] is True


def test_post_without_a_code_is_refused_before_the_password_is_tried(
    uk_officer: User, password: str
) -> None:
    authenticator(uk_officer)
    client = api_client()
    for body in (credentials(uk_officer, password, None), credentials(uk_officer, password, "")):
        response = api_post_session(client, body)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "otp_required"
        assert response.json()["error"]["field"] == "otp"
    assert "_auth_user_id" not in client.session
    assert not AuditEvent.objects.filter(action="auth.login").exists()


def test_post_with_a_wrong_code_is_refused(uk_officer: User, password: str) -> None:
    device = authenticator(uk_officer)
    client = api_client()
    response = api_post_session(client, credentials(uk_officer, password, wrong_code(device)))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "otp_invalid"
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.otp_failed", actor=uk_officer).exists()


def test_post_with_a_replayed_code_is_refused(
    uk_officer: User, password: str, time_machine: Any
) -> None:
    time_machine.move_to("2026-03-02 09:00:05+00:00", tick=False)
    device = authenticator(uk_officer)
    code = current_code(device)
    assert (
        api_post_session(api_client(), credentials(uk_officer, password, code)).status_code == 200
    )
    again = api_post_session(api_client(), credentials(uk_officer, password, code))
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "otp_invalid"


def test_post_with_a_wrong_password_says_so_without_naming_which_part(
    uk_officer: User, password: str
) -> None:
    device = authenticator(uk_officer)
    client = api_client()
    response = api_post_session(
        client, credentials(uk_officer, "wrong-password-99", current_code(device))
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"
    assert AuditEvent.objects.filter(
        action="auth.login_failed", actor_label=uk_officer.email
    ).exists()


def test_post_accepts_a_recovery_code_once(uk_officer: User, password: str) -> None:
    authenticator(uk_officer)
    codes = twofactor.regenerate_recovery_codes(user=uk_officer, ip=None)
    first = api_post_session(api_client(), credentials(uk_officer, password, codes[0]))
    assert first.status_code == 200
    assert first.json()["recovery_codes_left"] == 9
    again = api_post_session(api_client(), credentials(uk_officer, password, codes[0]))
    assert again.status_code == 401


def test_post_for_an_account_without_an_authenticator_asks_to_set_one_up(
    uk_officer: User, password: str
) -> None:
    client = api_client()
    response = api_post_session(client, credentials(uk_officer, password, "123456"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "otp_required"
    assert "browser" in response.json()["error"]["detail"]
    assert "_auth_user_id" not in client.session


def test_post_needs_the_csrf_token(uk_officer: User, password: str) -> None:
    device = authenticator(uk_officer)
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/v1/session",
        credentials(uk_officer, password, current_code(device)),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "x" * 14, "otp": "123456"}, "email"),
        ({"email": "olivia@hmrc.example", "otp": "123456"}, "password"),
        ({"email": 5, "password": "x" * 14, "otp": "123456"}, "email"),
        ({"email": "olivia@hmrc.example", "password": "x" * 14, "otp": 123456}, "otp"),
    ],
)
def test_malformed_sign_ins_name_the_field(body: dict[str, Any], field: str) -> None:
    response = api_post_session(api_client(), body)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_a_body_that_is_not_json_is_refused() -> None:
    client = api_client()
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(
        "/api/v1/session", "{nope", content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["detail"]


def test_delete_signs_out_and_ends_the_session(
    uk_officer: User, login_as: Any, captured_events: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = api_client()
    login_as(client, uk_officer)
    client.get("/api/v1/session")
    session_key = client.session.session_key
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete("/api/v1/session", headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert response.json() == {"authenticated": False}
    assert UserSession.objects.get(session_key=session_key).end_reason == "logout"
    assert client.get("/api/v1/session").json()["authenticated"] is False
    assert AuditEvent.objects.filter(action="auth.logout", actor=uk_officer).exists()
    assert {"type": "user.session.ended", "session_key": session_key, "code": 4401} in (
        captured_events.to_group(f"user.{uk_officer.pk}")
    )


def test_other_methods_are_refused() -> None:
    client = api_client()
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.put("/api/v1/session", headers={"X-CSRFToken": token})
    assert response.status_code == 405
