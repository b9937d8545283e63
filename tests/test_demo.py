"""The demo command: a living example for ``make run``; idempotent; never in production."""

from __future__ import annotations

import base64
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django_otp.oath import totp

from liaison.models import Agency, User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def run_demo(*args: str) -> str:
    out = StringIO()
    call_command("demo", *args, stdout=out)
    return out.getvalue()


def test_demo_json_lists_every_account_with_its_password() -> None:
    world = json.loads(run_demo("--json"))
    assert world["base_url"] == "http://127.0.0.1:8000"
    roles = sorted(user["role"] for user in world["users"])
    assert roles.count("officer") >= 4
    assert "admin" in roles
    assert "auditor" in roles
    for user in world["users"]:
        assert set(user) >= {"email", "password", "role", "agency", "display_name", "totp_secret"}
    assert {a.name for a in Agency.objects.all()} >= {
        "HM Revenue & Customs",
        "UK Border Force",
        "GACC Guangzhou Customs",
    }


def test_demo_is_idempotent() -> None:
    first = json.loads(run_demo("--json"))
    users_before = User.objects.count()
    second = json.loads(run_demo("--json"))
    assert User.objects.count() == users_before
    assert [u["email"] for u in first["users"]] == [u["email"] for u in second["users"]]


def test_a_demo_user_can_sign_in_with_the_printed_password_and_code(client: Client) -> None:
    world = json.loads(run_demo("--json"))
    officer = next(u for u in world["users"] if u["role"] == "officer")
    response = client.post(
        "/login/", {"username": officer["email"], "password": officer["password"]}
    )
    assert response.status_code == 302
    assert response["Location"] == "/login/otp/"
    code = run_demo("--otp", officer["email"]).strip()
    assert code.isdigit()
    assert len(code) == 6
    response = client.post("/login/otp/", {"code": code})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_demo_json_prints_each_users_totp_secret_that_yields_their_codes() -> None:
    world = json.loads(run_demo("--json"))
    officer = next(u for u in world["users"] if u["role"] == "officer")
    assert all(user["totp_secret"] for user in world["users"])
    key = base64.b32decode(officer["totp_secret"] + "=" * (-len(officer["totp_secret"]) % 8))
    assert run_demo("--otp", officer["email"]).strip() == f"{totp(key):06d}"


def test_demo_otp_refuses_accounts_outside_the_demo() -> None:
    run_demo("--json")
    UserFactory(email="real.officer@hmrc.example")
    with pytest.raises(CommandError, match="not a demo account"):
        run_demo("--otp", "real.officer@hmrc.example")


@override_settings(PRODUCTION=True)
def test_demo_otp_is_refused_in_production_mode_even_with_force() -> None:
    with pytest.raises(CommandError, match="production"):
        run_demo("--otp", "olivia.hughes@hmrc.example", "--force")


@override_settings(PRODUCTION=True)
def test_demo_is_refused_in_production_mode() -> None:
    with pytest.raises(CommandError, match="production"):
        run_demo()
    assert not User.objects.exists()
