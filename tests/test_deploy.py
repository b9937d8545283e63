"""The deployment as shipped: the image recipe, docker-compose.yml, the hashed locks, the
container entry point, and the production settings they run with."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from liaison.crypto.keyring import new_keyring_json

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
# major.minor.patch, or major.minor for PostgreSQL (whose releases have two numbers since 10).
EXACT_TAG = re.compile(
    r"^(postgres:\d+\.\d+|[a-z0-9./-]+:\d+\.\d+\.\d+)(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$"
)
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|KEYRING|SIGNING_KEY", re.IGNORECASE)
PUBLIC_HOST = "liaison.example.org"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


# --- docker-compose.yml ---------------------------------------------------------------------------


def test_docker_compose_config_passes() -> None:
    """The compose CLI validates the file (it needs no Docker engine for that)."""
    cli = compose_cli()
    if cli is None:
        pytest.skip(
            "no compose CLI (docker compose plugin or docker-compose) to validate with; "
            ".ci/run installs Debian's docker-compose"
        )
    env = {**os.environ, "LIAISON_HOSTNAME": PUBLIC_HOST}
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE), "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert {"postgres", "redis", "migrate", "web", "checkpoint", "proxy"} <= set(
        rendered["services"]
    )
    web = rendered["services"]["web"]
    assert web["environment"]["ALLOWED_HOSTS"] == f"{PUBLIC_HOST},web"
    assert web["environment"]["CSRF_TRUSTED_ORIGINS"] == f"https://{PUBLIC_HOST}"


def test_the_public_hostname_is_required() -> None:
    cli = compose_cli()
    if cli is None:
        pytest.skip("no compose CLI (docker compose plugin or docker-compose) to validate with")
    env = {k: v for k, v in os.environ.items() if k != "LIAISON_HOSTNAME"}
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE), "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert "LIAISON_HOSTNAME" in result.stderr


def test_every_image_is_pinned_to_an_exact_version() -> None:
    services = compose()["services"]
    for name, service in services.items():
        if "build" in service:
            assert service["build"]["dockerfile"] == "Dockerfile", name
            continue
        assert EXACT_TAG.match(service["image"]), f"{name}: {service['image']} is not exact"
    bases = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert len(bases) == 1
    assert EXACT_TAG.match(bases[0]), bases[0]
    for line in re.findall(r"^FROM (\S+)", DOCKERFILE.read_text(), re.MULTILINE):
        assert line == "${PYTHON_IMAGE}", line


def test_the_app_services_build_the_image_and_run_the_workers() -> None:
    services = compose()["services"]
    for name in ("migrate", "web", "checkpoint"):
        assert services[name]["build"]["context"] == ".", name
        assert services[name]["read_only"] is True, name
        assert services[name]["cap_drop"] == ["ALL"], name
    assert services["migrate"]["command"][-2:] == ["migrate", "--noinput"]
    # web: scalable (no fixed container name or host port), reachable as web:8000 inside.
    assert "container_name" not in services["web"]
    assert "ports" not in services["web"]
    assert services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["proxy"]["depends_on"]["web"]["condition"] == "service_healthy"
    assert "audit" in services["checkpoint"]["command"]


def test_secrets_come_from_files_never_from_the_compose_file() -> None:
    data = compose()
    declared = data["secrets"]
    assert all(set(spec) == {"file"} for spec in declared.values())
    assert all(spec["file"].startswith("./secrets/") for spec in declared.values())
    for name, service in data["services"].items():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            if SECRET_NAME.search(key):
                assert key.endswith("_FILE"), f"{name}: {key} holds a secret inline"
                assert str(value).startswith("/run/secrets/"), f"{name}: {key}={value}"
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in service["secrets"], f"{name}: {secret} is not mounted"
        for key in ("DATABASE_URL", "DATABASE_MIGRATE_URL", "REDIS_URL"):
            if key in environment:
                assert urlsplit(environment[key]).password is None, f"{name}: {key} has one"


def test_redis_requires_the_password_the_workers_use() -> None:
    services = compose()["services"]
    redis = services["redis"]
    command = " ".join(redis["command"])
    assert "requirepass" in command
    assert "/run/secrets/redis_password" in command
    assert redis["secrets"] == ["redis_password"]
    assert "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])
    web_env = services["web"]["environment"]
    assert web_env["REDIS_URL"] == "redis://redis:6379/0"
    assert web_env["REDIS_PASSWORD_FILE"] == "/run/secrets/redis_password"
    assert "redis_password" in services["web"]["secrets"]
    postgres = services["postgres"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert web_env["DATABASE_PASSWORD_FILE"] == "/run/secrets/postgres_app_password"


def test_the_servers_connect_as_the_application_role_and_only_migrate_holds_the_owners() -> None:
    """The owner role (POSTGRES_USER) owns the tables; web and checkpoint connect as the
    application role, which may only INSERT and SELECT on the audit log (docs/security.md)."""
    services = compose()["services"]
    owner = services["postgres"]["environment"]["POSTGRES_USER"]
    for name in ("web", "checkpoint"):
        env = services[name]["environment"]
        assert urlsplit(env["DATABASE_URL"]).username == env["LIAISON_DB_APP_ROLE"] != owner
        assert "DATABASE_MIGRATE_URL" not in env, name
        assert "postgres_password" not in services[name]["secrets"], name
    migrate = services["migrate"]["environment"]
    assert urlsplit(migrate["DATABASE_MIGRATE_URL"]).username == owner
    assert migrate["DATABASE_MIGRATE_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert migrate["LIAISON_DB_APP_PASSWORD_FILE"] == "/run/secrets/postgres_app_password"


# --- the image ----------------------------------------------------------------------------------


def dockerfile_stages() -> dict[str, str]:
    text = DOCKERFILE.read_text()
    parts = re.split(r"^FROM \S+ AS (\w+)$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_image_is_multi_stage_non_root_without_a_compiler() -> None:
    stages = dockerfile_stages()
    assert list(stages) == ["build", "runtime"]
    build, runtime = stages["build"], stages["runtime"]
    assert "--require-hashes" in build
    assert "--only-binary=:all:" in build
    assert "-r /tmp/requirements.lock" in build
    assert "collectstatic --noinput" in build
    assert "manage.py compilecatalogues" in build
    for compiler in ("build-essential", "gcc", "g++", "clang", "-dev "):
        assert compiler not in runtime, compiler
    assert re.search(r"^USER liaison:liaison$", runtime, re.MULTILINE)
    assert "COPY --from=build /venv /venv" in runtime
    healthcheck = re.search(r"^HEALTHCHECK .*\n.*$", runtime, re.MULTILINE)
    assert healthcheck is not None
    assert "healthcheck.py" in healthcheck.group(0)
    assert "/healthz" in (ROOT / "docker" / "healthcheck.py").read_text()


def test_the_build_context_leaves_out_secrets_and_local_state() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    for name in (".git", ".venv", "var", "secrets", "backups", ".env", "tests"):
        assert name in ignored, name


# --- the locks ------------------------------------------------------------------------------------


def pins(path: Path) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)", path.read_text(), re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in found}


@pytest.mark.parametrize(
    ("source", "lock"),
    [
        ("requirements.txt", "requirements.lock"),
        ("requirements-dev.txt", "requirements-dev.lock"),
        ("requirements-tools.txt", "requirements-tools.lock"),
    ],
)
def test_each_lock_pins_its_requirements_with_hashes(source: str, lock: str) -> None:
    """Adding a requirement without `make lock` fails here (and so in CI)."""
    wanted, locked = pins(ROOT / source), pins(ROOT / lock)
    stale = {n: (v, locked.get(n)) for n, v in wanted.items() if locked.get(n) != v}
    assert not stale, f"run `make lock`: {lock} does not pin {stale}"
    entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text().split("\n\n")[-1])
    for entry in entries:
        if "==" in entry:
            assert "--hash=sha256:" in entry, entry.splitlines()[0]
    assert "--index-url" not in (ROOT / lock).read_text()
    assert "--find-links" not in (ROOT / lock).read_text()


def test_the_dev_lock_installs_the_runtime_lock_unchanged() -> None:
    runtime, dev = pins(ROOT / "requirements.lock"), pins(ROOT / "requirements-dev.lock")
    assert {n: dev.get(n) for n in runtime} == runtime


def test_make_installs_from_the_locks_only() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = re.findall(r"pip install[^\n]*", makefile)
    assert installs
    for line in installs:
        if "--upgrade pip" in line:
            continue
        assert "--require-hashes" in line, line
        assert ".lock" in line, line
    assert "pip-compile" in makefile
    assert "--generate-hashes" in makefile
    assert "could not be audited" in makefile
    assert 'CI_VENV="$PWD/var/ci-venv"' in (ROOT / ".ci" / "run").read_text()


# --- the container entry point ------------------------------------------------------------------


def run_entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ["PATH"], **env}
    return subprocess.run(
        [sys.executable, str(ROOT / "docker" / "entrypoint.py"), *command],
        env=clean,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_entrypoint_turns_secret_files_into_settings(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("p@ss:word/1\n")
    (tmp_path / "redis").write_text("r3dis#pw")
    (tmp_path / "key").write_text("k" * 60)
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    (multiproc / "counter_1.db").write_bytes(b"stale")
    names = ["DATABASE_URL", "REDIS_URL", "SECRET_KEY"]
    show = f"import json, os; print(json.dumps({{k: os.environ.get(k) for k in {names!r}}}))"
    result = run_entrypoint(
        {
            "DATABASE_URL": "postgres://liaison@postgres:5432/liaison",
            "DATABASE_PASSWORD_FILE": str(tmp_path / "db"),
            "REDIS_URL": "redis://redis:6379/0",
            "REDIS_PASSWORD_FILE": str(tmp_path / "redis"),
            "SECRET_KEY_FILE": str(tmp_path / "key"),
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        },
        sys.executable,
        "-c",
        show,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "DATABASE_URL": "postgres://liaison:p%40ss%3Aword%2F1@postgres:5432/liaison",
        "REDIS_URL": "redis://:r3dis%23pw@redis:6379/0",
        "SECRET_KEY": "k" * 60,
    }
    assert list(multiproc.iterdir()) == []


def test_the_entrypoint_puts_the_owner_password_into_the_migrate_url(tmp_path: Path) -> None:
    (tmp_path / "owner").write_text("own/er\n")
    show = "import os; print(os.environ['DATABASE_MIGRATE_URL'])"
    result = run_entrypoint(
        {
            "DATABASE_MIGRATE_URL": "postgres://liaison@postgres:5432/liaison",
            "DATABASE_MIGRATE_PASSWORD_FILE": str(tmp_path / "owner"),
        },
        sys.executable,
        "-c",
        show,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "postgres://liaison:own%2Fer@postgres:5432/liaison"


def test_the_entrypoint_can_allow_the_containers_own_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("entrypoint", ROOT / "docker" / "entrypoint.py")
    assert spec is not None
    assert spec.loader is not None
    entrypoint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entrypoint)
    monkeypatch.setattr(entrypoint, "own_addresses", lambda: ["172.18.0.5", "web"])
    env = {"ALLOWED_HOSTS": f"{PUBLIC_HOST},web"}
    assert entrypoint.resolve(env)["ALLOWED_HOSTS"] == f"{PUBLIC_HOST},web"
    env["LIAISON_ALLOW_OWN_ADDRESSES"] = "1"
    assert entrypoint.resolve(env)["ALLOWED_HOSTS"] == f"{PUBLIC_HOST},web,172.18.0.5"


def test_the_entrypoint_refuses_a_secret_given_twice_or_unreadable(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("k" * 60)
    twice = run_entrypoint(
        {"SECRET_KEY": "x" * 60, "SECRET_KEY_FILE": str(tmp_path / "key")}, "true"
    )
    assert twice.returncode != 0
    assert "set SECRET_KEY or SECRET_KEY_FILE, not both" in twice.stderr
    missing = run_entrypoint({"SECRET_KEY_FILE": str(tmp_path / "absent")}, "true")
    assert missing.returncode != 0
    assert "SECRET_KEY_FILE" in missing.stderr


# --- production settings ---------------------------------------------------------------------------


def production(code: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIAISON_", "DJANGO_"))}
    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "REDIS_URL"):
        env.pop(name, None)
    env.update(
        {
            "LIAISON_ENV": "production",
            "SECRET_KEY": "s" * 20 + "production-secret-key-for-deploy-tests-0123456789",
            "ALLOWED_HOSTS": PUBLIC_HOST,
            "CSRF_TRUSTED_ORIGINS": f"https://{PUBLIC_HOST}",
            "LIAISON_KEYRING": new_keyring_json("prod-1"),
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/liaison",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    for name, value in overrides.items():
        if value == "":
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_is_https_only_with_hsts_behind_the_proxy() -> None:
    names = [
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SESSION_COOKIE_NAME",
        "CSRF_COOKIE_NAME",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_REDIRECT_EXEMPT",
        "AXES_IPWARE_PROXY_COUNT",
        "LIAISON_LOG_FORMAT",
    ]
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    result = production(code, LIAISON_PROXY_COUNT="1")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert values["CSRF_COOKIE_NAME"].startswith("__Host-")
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    # The proxy terminates TLS and says so in X-Forwarded-Proto; one proxy hop is trusted for
    # the client address (lockouts count per real client, not per proxy).
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["AXES_IPWARE_PROXY_COUNT"] == 1
    # Probes and Prometheus come over plain HTTP from inside the network.
    assert set(values["SECURE_REDIRECT_EXEMPT"]) >= {r"^healthz$", r"^metrics$"}
    assert values["LIAISON_LOG_FORMAT"] == "json"


@pytest.mark.parametrize(
    ("unset", "message"),
    [
        ({"ALLOWED_HOSTS": ""}, "set ALLOWED_HOSTS"),
        ({"CSRF_TRUSTED_ORIGINS": ""}, "set CSRF_TRUSTED_ORIGINS"),
        ({"CSRF_TRUSTED_ORIGINS": f"http://{PUBLIC_HOST}"}, "set CSRF_TRUSTED_ORIGINS"),
        ({"LIAISON_METRICS_TOKEN": "short"}, "LIAISON_METRICS_TOKEN must be at least"),
    ],
    ids=["no-hosts", "no-origins", "plain-http-origin", "weak-metrics-token"],
)
def test_production_refuses_to_start_without(unset: dict[str, str], message: str) -> None:
    result = production("print('started')", **unset)
    assert result.returncode != 0
    assert message in result.stderr
    assert "started" not in result.stdout


def test_check_deploy_is_clean_with_the_compose_environment() -> None:
    result = production(
        "from django.core.management import call_command; "
        "call_command('check', deploy=True, fail_level='WARNING')",
        LIAISON_METRICS_TOKEN="m" * 40,
        LIAISON_LOG_FORMAT="json",
        LIAISON_PROXY_COUNT="1",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_migrations_run_on_the_owner_connection_when_one_is_configured() -> None:
    code = (
        "from django.conf import settings; "
        "from django.core.management import load_command_class; "
        "parser = load_command_class('liaison', 'migrate').create_parser('manage.py', 'migrate'); "
        "owner = settings.DATABASES['owner']; "
        "print(owner['USER'], owner['NAME'], settings.DATABASES['default']['USER'], "
        "parser.parse_args([]).database)"
    )
    result = production(
        code,
        DATABASE_URL="postgres://liaison_app@db:5432/liaison",
        DATABASE_MIGRATE_URL="postgres://liaison@db:5432/liaison",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["liaison", "liaison", "liaison_app", "owner"]
    without = production(
        "from django.conf import settings; "
        "from django.core.management import load_command_class; "
        "parser = load_command_class('liaison', 'migrate').create_parser('manage.py', 'migrate'); "
        "print(sorted(settings.DATABASES), parser.parse_args([]).database)"
    )
    assert without.returncode == 0, without.stderr
    assert without.stdout.strip() == "['default'] default"
