"""Signing in and out through the HTML pages."""

from __future__ import annotations

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from liaison.models import AuditEvent, User
from liaison.services.twofactor import code_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_login_page_is_served_to_anonymous_visitors(client: Client) -> None:
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"Sign in" in response.content


def test_home_sends_anonymous_visitors_to_login(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_an_officer_signs_in_with_email_password_and_code(client: Client, password: str) -> None:
    user = UserFactory(email="olivia@hmrc.example")
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    response = client.post("/login/", {"username": "Olivia@HMRC.example", "password": password})
    assert response.status_code == 302
    assert response["Location"] == "/login/otp/"
    assert "_auth_user_id" not in client.session
    response = client.post("/login/otp/", {"code": code_for(device)})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
    assert AuditEvent.objects.filter(action="auth.login", actor=user).count() == 1


def test_a_wrong_password_is_a_form_error_not_a_server_error(client: Client) -> None:
    UserFactory(email="olivia@hmrc.example")
    response = client.post(
        "/login/", {"username": "olivia@hmrc.example", "password": "wrong-password-123"}
    )
    assert response.status_code == 400
    assert b"do not match an account" in response.content
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(
        action="auth.login_failed", actor_label="olivia@hmrc.example"
    ).exists()


def test_a_malformed_email_is_named(client: Client) -> None:
    response = client.post("/login/", {"username": "not-an-email", "password": "x"})
    assert response.status_code == 400
    assert b"valid email" in response.content


def test_logout_requires_post_and_ends_the_session(client: Client, password: str) -> None:
    user = UserFactory()
    client.force_login(user)
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.logout", actor=user).exists()


def test_an_open_redirect_after_login_is_refused(client: Client, password: str) -> None:
    user = UserFactory(email="olivia@hmrc.example")
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    evil = "https://evil.example/"
    response = client.post(
        "/login/", {"username": "olivia@hmrc.example", "password": password, "next": evil}
    )
    assert response.status_code == 302
    assert response["Location"] == "/login/otp/"
    response = client.post("/login/otp/", {"code": code_for(device), "next": evil})
    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.argon2
def test_passwords_are_hashed_with_argon2(password: str) -> None:
    user = UserFactory()
    assert User.objects.get(pk=user.pk).password.startswith("argon2$")
