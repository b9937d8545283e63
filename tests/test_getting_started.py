"""Getting started: the commands the README and the pages print work as printed (`make otp`),
`make run` refuses a taken port before it announces anything, the demo banner gives the address
really served, every page has a favicon, and the security page names the zone of its times."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from liaison.models import User
from liaison.services.demo import load_demo
from tests.security_support import authenticator, password_step

ROOT = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MAKE or "make", "--no-print-directory", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something already listens on, as another server would."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def database_url_of_the_tests() -> str:
    """The test database, for a command run outside the test process."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


# --- make otp -------------------------------------------------------------------------------------


@needs_make
@pytest.mark.django_db(transaction=True)
def test_make_otp_prints_a_code_the_second_sign_in_step_accepts() -> None:
    world = load_demo()
    officer = next(user for user in world["users"] if user["role"] == "officer")
    env = {"LIAISON_VAR_DIR": str(settings.VAR_DIR), "DATABASE_URL": database_url_of_the_tests()}

    printed = make("otp", f"EMAIL={officer['email']}", env=env)

    assert printed.returncode == 0, printed.stderr
    code = printed.stdout.strip()
    assert re.fullmatch(r"\d{6}", code), printed.stdout
    client = Client()
    client.post("/login/", {"username": officer["email"], "password": officer["password"]})
    response = client.post("/login/otp/", {"code": code})
    assert response.status_code == 302
    assert response["Location"] == "/"


@needs_make
def test_make_otp_without_an_address_says_how_to_give_one() -> None:
    result = make("otp")

    assert result.returncode != 0
    assert "make otp EMAIL=admin@liaison.example" in result.stderr


@needs_make
def test_make_otp_runs_the_demo_command_of_the_projects_virtualenv() -> None:
    dry = make("-n", "otp", "EMAIL=olivia.hughes@hmrc.example")

    # The project's virtualenv: .venv, or the one CI names with VENV=.
    assert re.search(
        r"\S*(\.venv|ci-venv)/bin/python manage\.py demo --otp 'olivia\.hughes@hmrc\.example'",
        dry.stdout,
    ), dry.stdout
    assert "pip install" not in dry.stdout  # nothing is installed to print a code


# --- make run and the port ------------------------------------------------------------------------


@needs_make
@pytest.mark.parametrize("target", ["run", "serve"])
def test_make_run_refuses_a_taken_port_before_announcing_anything(
    listening: int, target: str
) -> None:
    result = make(target, f"PORT={listening}")

    assert result.returncode != 0
    assert f"port {listening} on 127.0.0.1 is already in use" in result.stderr
    assert f"make {target} PORT={listening + 1}" in result.stderr
    assert "serving" not in result.stdout
    assert "pip install" not in result.stdout + result.stderr
    assert "migrate" not in result.stdout


@needs_make
def test_the_port_check_passes_a_free_port() -> None:
    result = make("port-free", f"PORT={free_port()}")

    assert result.returncode == 0, result.stderr


@pytest.fixture
def stand_ins(tmp_path: Path) -> dict[str, str]:
    """`make run` with the virtualenv's programs replaced by scripts that say how they were
    called and with which LIAISON_BASE_URL (nothing is installed, migrated or served)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "venv").mkdir()
    for name in ("python", "pip", "daphne"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $* LIAISON_BASE_URL=$LIAISON_BASE_URL"\n')
        script.chmod(0o755)
    return {"VENV": str(tmp_path / "venv"), "BIN": str(bin_dir)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@needs_make
def test_make_run_gives_the_demo_and_the_banner_the_address_it_serves(
    stand_ins: dict[str, str],
) -> None:
    port = free_port()
    overrides = [f"{name}={value}" for name, value in stand_ins.items()]

    result = make("run", f"PORT={port}", "HOST=0.0.0.0", *overrides)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    address = f"http://127.0.0.1:{port}"
    demo = next(line for line in lines if line.startswith("python manage.py demo"))
    assert demo.endswith(f"LIAISON_BASE_URL={address}")
    serving = lines.index(f"Liaison is serving on {address}/ (Ctrl-C to stop)")
    assert lines.index(demo) < serving
    daphne = next(line for line in lines if line.startswith(f"daphne -b 0.0.0.0 -p {port} "))
    assert lines.index(daphne) > serving


@needs_make
def test_make_run_keeps_an_address_set_for_a_proxy(stand_ins: dict[str, str]) -> None:
    overrides = [f"{name}={value}" for name, value in stand_ins.items()]

    result = make(
        "run",
        f"PORT={free_port()}",
        *overrides,
        env={"LIAISON_BASE_URL": "https://liaison.example"},
    )

    assert "Liaison is serving on https://liaison.example/ (Ctrl-C to stop)" in result.stdout
    assert "demo LIAISON_BASE_URL=https://liaison.example" in result.stdout


@pytest.mark.django_db
def test_the_demo_banner_prints_the_configured_address(settings: Any) -> None:
    from io import StringIO

    from django.core.management import call_command

    settings.LIAISON_BASE_URL = "http://127.0.0.1:8123"
    out = StringIO()
    call_command("demo", stdout=out)

    assert out.getvalue().startswith("Liaison demo at http://127.0.0.1:8123\n")
    assert "make otp EMAIL=" in out.getvalue()


# --- pages ----------------------------------------------------------------------------------------


def test_every_page_links_the_favicon(client: Client) -> None:
    html = client.get("/login/").content.decode()

    assert '<link rel="icon" href="/static/liaison/favicon.svg" type="image/svg+xml">' in html
    svg = (ROOT / "static" / "liaison" / "favicon.svg").read_text()
    assert svg.startswith("<svg")
    assert "<script" not in svg


@pytest.mark.django_db
def test_the_demo_second_step_prints_a_command_that_works(client: Client, settings: Any) -> None:
    world = load_demo()
    officer = next(user for user in world["users"] if user["role"] == "officer")
    client.post("/login/", {"username": officer["email"], "password": officer["password"]})

    html = client.get("/login/otp/").content.decode()

    assert f"<code>make otp EMAIL={officer['email']}</code>" in html
    assert "python manage.py demo --otp" not in html


@pytest.mark.django_db
def test_the_security_page_names_the_zone_of_its_times(
    gz_officer: User, password: str, login_as: Any
) -> None:
    client = Client()
    authenticator(gz_officer)
    password_step(client, gz_officer, password)  # a sign-in to list
    html = login_as(Client(), gz_officer).get("/account/security/").content.decode()

    assert "Signed in (Asia/Shanghai)" in html
    assert "Last seen (Asia/Shanghai)" in html
    assert "When (Asia/Shanghai)" in html
