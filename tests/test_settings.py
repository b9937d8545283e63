"""Settings come from the environment, and production refuses unsafe defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from liaison.crypto.keyring import new_keyring_json

ROOT = Path(__file__).resolve().parent.parent
GOOD_SECRET = "x" * 20 + "production-secret-key-for-tests-only-0123456789"


def run_django(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LIAISON_", "DJANGO_"))}
    clean.pop("SECRET_KEY", None)
    clean.pop("ALLOWED_HOSTS", None)
    clean.pop("CSRF_TRUSTED_ORIGINS", None)
    clean.update(env)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup(); {code}",
        ],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        "LIAISON_ENV": "production",
        "SECRET_KEY": GOOD_SECRET,
        "ALLOWED_HOSTS": "liaison.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://liaison.example.org",
        "LIAISON_KEYRING": new_keyring_json("prod-1"),
    }
    env.update(overrides)
    return env


def test_production_refuses_the_default_secret_key() -> None:
    env = production_env()
    del env["SECRET_KEY"]
    result = run_django("print('started')", **env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    assert "started" not in result.stdout


def test_production_refuses_to_start_without_a_keyring() -> None:
    env = production_env()
    del env["LIAISON_KEYRING"]
    result = run_django("print('started')", **env)
    assert result.returncode != 0
    assert "no keyring" in result.stderr


def test_production_refuses_a_keyring_file_that_does_not_exist(tmp_path: Path) -> None:
    env = production_env(LIAISON_KEYRING_FILE=str(tmp_path / "missing.json"))
    del env["LIAISON_KEYRING"]
    result = run_django("print('started')", **env)
    assert result.returncode != 0
    assert "does not exist" in result.stderr


def test_production_refuses_debug() -> None:
    result = run_django("print('started')", **production_env(DJANGO_DEBUG="true"))
    assert result.returncode != 0
    assert "DJANGO_DEBUG" in result.stderr


def test_a_malformed_boolean_is_named_in_the_error() -> None:
    result = run_django("print('started')", DJANGO_DEBUG="maybe")
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be a boolean" in result.stderr


def test_database_and_channel_layer_follow_the_environment() -> None:
    code = (
        "from django.conf import settings; import json; "
        "print(json.dumps([settings.DATABASES['default']['ENGINE'], "
        "settings.CHANNEL_LAYERS['default']['BACKEND'], settings.DEBUG]))"
    )
    embedded = run_django(code, DATABASE_URL="", REDIS_URL="")
    assert embedded.returncode == 0, embedded.stderr
    assert json.loads(embedded.stdout) == [
        "django.db.backends.sqlite3",
        "channels.layers.InMemoryChannelLayer",
        True,
    ]
    served = run_django(
        code,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/liaison",
        REDIS_URL="redis://127.0.0.1:6379/0",
        **production_env(),
    )
    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout) == [
        "django.db.backends.postgresql",
        "liaison.realtime.layer.RedisPubSubChannelLayer",
        False,
    ]


@pytest.mark.parametrize("level", ["--deploy"])
def test_check_deploy_is_clean_in_production_mode(level: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LIAISON_", "DJANGO_"))}
    clean.update(production_env(DATABASE_URL="postgres://postgres@127.0.0.1:5432/liaison"))
    result = subprocess.run(
        [sys.executable, "manage.py", "check", level, "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
