"""Security headers and cookies in production mode: HSTS, a strict Content-Security-Policy,
X-Frame-Options, Referrer-Policy, Permissions-Policy, COOP, nosniff, on every HTML page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver

from liaison.crypto.keyring import new_keyring_json
from liaison.models import Exercise, Room, User

ROOT = Path(__file__).resolve().parent.parent
HOST = "liaison.example.org"
SECURITY_SETTINGS = (
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "X_FRAME_OPTIONS",
    "CONTENT_SECURITY_POLICY",
    "LIAISON_PERMISSIONS_POLICY",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_NAME",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE",
    "CSRF_COOKIE_NAME",
)


def production_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIAISON_", "DJANGO_"))}
    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    env.update(
        {
            "LIAISON_ENV": "production",
            "SECRET_KEY": "p" * 20 + "production-secret-key-for-header-tests-0123456789",
            "ALLOWED_HOSTS": HOST,
            "CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
            "LIAISON_KEYRING": new_keyring_json("prod-1"),
            "LIAISON_VAR_DIR": str(tmp_path),
            "LIAISON_STATIC_ROOT": str(tmp_path / "static"),
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    return env


def run_production(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def production_security_settings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The security settings exactly as production mode computes them."""
    names = json.dumps(SECURITY_SETTINGS)
    result = run_production(
        "from django.conf import settings; import json; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names}}}))",
        tmp_path_factory.mktemp("prod-settings"),
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    if values["SECURE_PROXY_SSL_HEADER"] is not None:
        values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"])
    return values


def assert_hardened(response: Any, path: str) -> None:
    where = f"{path} ({response.status_code})"
    csp = response.get("Content-Security-Policy", "")
    directives = dict(
        [*part.strip().split(" ", 1), ""][:2] for part in csp.split(";") if part.strip()
    )
    assert directives.get("script-src") == "'self'", where
    assert directives.get("object-src") == "'none'", where
    assert directives.get("frame-ancestors") == "'none'", where
    assert directives.get("base-uri") == "'none'", where
    assert "unsafe-inline" not in csp, where
    assert "unsafe-eval" not in csp, where
    assert response.get("X-Frame-Options") == "DENY", where
    assert response.get("Referrer-Policy") == "same-origin", where
    assert response.get("Cross-Origin-Opener-Policy") == "same-origin", where
    assert response.get("X-Content-Type-Options") == "nosniff", where
    assert "camera=()" in response.get("Permissions-Policy", ""), where
    hsts = response.get("Strict-Transport-Security", "")
    assert "max-age=31536000" in hsts, where
    assert "includeSubDomains" in hsts, where


def page_paths(ids: dict[str, int]) -> Iterator[str]:
    """Every HTML route of the site (API and admin aside), its parameters filled in."""

    def walk(patterns: list[Any], prefix: str = "") -> Iterator[str]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern)

    for route in walk(get_resolver().url_patterns):
        if route.startswith(("api/", "django-admin", "^api/")):
            continue
        route = route.lstrip("^").rstrip("$")
        route = re.sub(r"\(\?P<action>[^)]*\)", "close", route)
        route = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(ids.get(m.group(1), 1)), route)
        route = re.sub(r"<int:(\w+)>", lambda m: str(ids.get(m.group(1), 1)), route)
        route = re.sub(r"<str:(\w+)>", "not-a-token", route)
        yield "/" + route


@pytest.mark.django_db
def test_every_html_page_carries_the_security_headers_in_production_mode(
    production_security_settings: dict[str, Any],
    uk_officer: User,
    admin: User,
    auditor: User,
    exercise: Exercise,
    room: Room,
    login_as: Any,
) -> None:
    ids = {"exercise_id": exercise.pk, "room_id": room.pk, "session_id": 1}
    with override_settings(ALLOWED_HOSTS=[HOST], **production_security_settings):
        clients = {"anonymous": Client()}
        for name, user in (("officer", uk_officer), ("admin", admin), ("auditor", auditor)):
            clients[name] = login_as(Client(), user)
        checked = 0
        for path in [*page_paths(ids), "/no-such-page/"]:
            for client in clients.values():
                response = client.get(path, secure=True, HTTP_HOST=HOST)
                if response.get("Content-Type", "").startswith("text/html"):
                    assert_hardened(response, path)
                    checked += 1
        assert checked > 40


@pytest.mark.django_db
def test_plain_http_is_sent_to_https_in_production_mode(
    production_security_settings: dict[str, Any],
) -> None:
    with override_settings(ALLOWED_HOSTS=[HOST], **production_security_settings):
        response = Client().get("/login/", HTTP_HOST=HOST)
    assert response.status_code == 301
    assert response["Location"] == f"https://{HOST}/login/"


def test_production_cookies_are_secure_httponly_and_samesite(
    production_security_settings: dict[str, Any],
) -> None:
    values = production_security_settings
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SESSION_COOKIE_SAMESITE"] in {"Lax", "Strict"}
    assert values["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_HTTPONLY"] is True
    assert values["CSRF_COOKIE_SAMESITE"] in {"Lax", "Strict"}
    assert values["CSRF_COOKIE_NAME"].startswith("__Host-")
    assert values["DEBUG"] is False


def test_a_real_production_process_sends_the_headers_and_secure_cookies(tmp_path: Path) -> None:
    """Not a settings override: the production settings module itself, collectstatic and all,
    answering a request for the sign-in page."""
    code = """
from django.core.management import call_command
call_command("collectstatic", interactive=False, verbosity=0)
from django.test import Client
import json
response = Client().get("/login/", secure=True, HTTP_HOST="HOST_NAME")
cookie = response.cookies["__Host-csrftoken"]
print(json.dumps({
    "status": response.status_code,
    "headers": dict(response.items()),
    "cookie": {k: cookie[k] for k in ("secure", "httponly", "samesite", "path")},
    "development_hint": "manage.py demo" in response.content.decode(),
}))
""".replace("HOST_NAME", HOST)
    result = run_production(f"exec({code!r})", tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["status"] == 200
    headers = {name.lower(): value for name, value in seen["headers"].items()}
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["strict-transport-security"].startswith("max-age=31536000")
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert "permissions-policy" in headers
    assert seen["cookie"] == {"secure": True, "httponly": True, "samesite": "Lax", "path": "/"}
    # The sign-in page never mentions the demo accounts or their codes in production.
    assert seen["development_hint"] is False
