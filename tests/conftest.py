"""Shared fixtures: named actors that read like a story, real services, a real server.

The world: HMRC and UK Border Force (Felixstowe) and GACC Guangzhou Customs (Nansha) run the
exercise ``CFE-TEST-WASTE``. ``uk_officer`` and ``gz_officer`` are members, ``gz_observer``
observes, ``outsider`` belongs to another exercise, ``admin`` provisions, ``auditor`` reads.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections

from liaison.models import Agency, Exercise, GroupRole, Role, Room, User
from tests.factories import (
    DEFAULT_PASSWORD,
    AgencyFactory,
    ExerciseFactory,
    MembershipFactory,
    RoomFactory,
    UserFactory,
)

# Real daphne worker processes (the ``workers`` fixture) for the real-time tests.
pytest_plugins = ["tests.realtime_support"]

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
# Persistent connections outlive a test in the database-access threads of async code, and then
# hold the test database open at teardown. Tests close every connection after use.
settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Presence changes are told at most once per window, doubling while they keep coming (1 s to
# 8 s in production). Tests open and close sockets in quick succession and expect each change
# in turn, so here every change is told at once (a window of 0);
# ``test_realtime_presence_deltas.py`` tests the windows with its own.
os.environ["LIAISON_WS_PRESENCE_WINDOW_MS"] = "0"
settings.LIAISON_WS_PRESENCE_WINDOW_MS = 0
# A parallel run (``pytest -n``) gives each worker its own database, where ids repeat: each
# also needs its own Redis channel and counter prefix, or one worker's room events reach
# another's sockets. The daphne workers the tests start inherit it from the environment.
if os.environ.get("PYTEST_XDIST_WORKER") and settings.REDIS_URL:
    _prefix = f"{settings.CHANNEL_LAYER_PREFIX}-{os.environ['PYTEST_XDIST_WORKER']}"
    os.environ["LIAISON_CHANNEL_PREFIX"] = _prefix
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = _prefix
    if "KEY_PREFIX" in settings.CACHES["ratelimit"]:
        settings.CACHES["ratelimit"]["KEY_PREFIX"] = f"{_prefix}:limits"


# --- services: what the suite runs against, and no silent skips in CI ---------------------------


def pytest_report_header(config: pytest.Config) -> list[str]:
    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    return [
        f"liaison: database={database} channel_layer={layer} "
        f"chromium={CHROMIUM or 'missing'} require_services={REQUIRE_SERVICES}"
    ]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_SERVICES and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"REQUIRE_SERVICES=1 turns this skip into a failure: {reason}"


@pytest.fixture(scope="session", autouse=True)
def _flush_lifts_the_sqlite_audit_trigger() -> None:
    """Transactional tests empty every table between tests with DELETE on SQLite, which the
    append-only trigger refuses: lift it for the flush only. (PostgreSQL flushes with
    TRUNCATE, which the row triggers do not see but the statement-level TRUNCATE triggers of
    migration 0005 refuse: those are disabled for the flush, by the owner the tests run as.)"""
    import importlib

    if connection.vendor == "postgresql":
        from django.db.backends.postgresql.operations import DatabaseOperations as PgOperations

        guard = importlib.import_module("liaison.migrations.0005_audit_no_truncate_and_app_role")
        pg_original = PgOperations.sql_flush

        def pg_sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
            statements = pg_original(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
            guarded = [t for t in guard.GUARDED_TABLES if t in tables]
            if not guarded:
                return statements
            return [
                *(f"ALTER TABLE {t} DISABLE TRIGGER {guard.trigger_name(t)};" for t in guarded),
                *statements,
                *(f"ALTER TABLE {t} ENABLE TRIGGER {guard.trigger_name(t)};" for t in guarded),
            ]

        PgOperations.sql_flush = pg_sql_flush
        return
    if connection.vendor != "sqlite":
        return
    from django.db.backends.sqlite3.base import DatabaseOperations

    migration = importlib.import_module("liaison.migrations.0002_audit_append_only")
    original = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        statements = original(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        if "liaison_auditevent" not in tables:
            return statements
        return [*migration.SQLITE_REMOVE, *statements, *migration.SQLITE_INSTALL]

    DatabaseOperations.sql_flush = sql_flush


@pytest.fixture(autouse=True)
def _quick_password_hashing(request: pytest.FixtureRequest, settings: Any) -> None:
    """Argon2 is deliberately slow (about a second per account on this machine), which is not
    what tests are about. The test of the production hasher opts out with ``@pytest.mark.argon2``."""
    if request.node.get_closest_marker("argon2") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _english_outside_requests() -> Iterator[None]:
    """Django leaves a request's language active in its thread, so a page read in Chinese would
    make the next test's direct service calls speak Chinese: each test starts in English."""
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _fresh_keys_cache() -> Iterator[None]:
    """Each test starts with no unwrapped data keys cached (the database is rolled back)."""
    from liaison.crypto import roomkeys

    roomkeys.clear_cache()
    yield
    roomkeys.clear_cache()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Each test starts with no rate-limit counts (user ids repeat across rolled-back tests)."""
    from liaison import ratelimits
    from liaison.realtime.limits import frame_rate

    ratelimits.reset()
    frame_rate.reset()


def point_storage(settings: Any, alias: str, location: Path) -> Path:
    """Point ``storages[alias]`` at ``location``, a directory of the test's own."""
    settings.STORAGES = {
        **settings.STORAGES,
        alias: {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location


@pytest.fixture(autouse=True)
def checkpoint_dir(settings: Any, tmp_path: Path) -> Path:
    """Each test signs its audit checkpoints into its own directory (returned). In the shared
    var directory a checkpoint left by an earlier test or run (whose database is gone) named
    rooms whose chains this test's database does not hold, and verification rightly called
    them altered: a second run over the same directory failed where a fresh one passed."""
    return point_storage(settings, "audit_checkpoints", tmp_path / "checkpoints")


@pytest.fixture
def store(settings: Any, tmp_path: Path) -> Path:
    """An attachment store of the test's own (its directory)."""
    return point_storage(settings, "attachments", tmp_path / "attachments")


@pytest.fixture
def export_dir(settings: Any, tmp_path: Path) -> Path:
    """Auditor exports' encrypted files go to the test's own directory (returned)."""
    return point_storage(settings, "exports", tmp_path / "exports")


@pytest.fixture(autouse=True)
def _database_threads_let_go() -> Iterator[None]:
    """The threads that reach the database for async code close their connections after each
    test, as a stopping worker's do, so none is left open on the test database when it is
    dropped: the real-time pool's, and the one thread Channels' ``database_sync_to_async``
    runs on (a test's own setup calls go there, and connections live a minute)."""
    yield
    from asgiref.sync import SyncToAsync

    from liaison.realtime import db

    db.shutdown(wait=True)
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


# --- the cast ---------------------------------------------------------------------------------


@pytest.fixture
def hmrc(db: None) -> Agency:
    return AgencyFactory(code="hmrc", name="HM Revenue & Customs", country="GB")


@pytest.fixture
def ukbf(db: None) -> Agency:
    return AgencyFactory(code="ukbf", name="UK Border Force", country="GB")


@pytest.fixture
def gacc(db: None) -> Agency:
    return AgencyFactory(
        code="gacc-gz", name="GACC Guangzhou Customs", country="CN", time_zone="Asia/Shanghai"
    )


@pytest.fixture
def admin(hmrc: Agency) -> User:
    return UserFactory(
        email="admin@hmrc.example", display_name="Alex Admin", agency=hmrc, role=Role.ADMIN
    )


@pytest.fixture
def auditor(hmrc: Agency) -> User:
    return UserFactory(
        email="auditor@hmrc.example", display_name="Avery Auditor", agency=hmrc, role=Role.AUDITOR
    )


@pytest.fixture
def exercise(admin: User, hmrc: Agency, ukbf: Agency, gacc: Agency) -> Exercise:
    return ExerciseFactory(
        code="CFE-TEST-WASTE",
        title="Solid waste CFE",
        created_by=admin,
        agencies=[hmrc, ukbf, gacc],
    )


@pytest.fixture
def room(exercise: Exercise) -> Room:
    return RoomFactory(exercise=exercise, name="general", title="General")


@pytest.fixture
def lane_room(exercise: Exercise) -> Room:
    return RoomFactory(exercise=exercise, name="felixstowe-nansha", title="Felixstowe–Nansha")


@pytest.fixture
def uk_officer(exercise: Exercise, hmrc: Agency) -> User:
    user = UserFactory(email="olivia@hmrc.example", display_name="Olivia Hughes", agency=hmrc)
    MembershipFactory(exercise=exercise, user=user, role=GroupRole.MEMBER)
    return user


@pytest.fixture
def uk_coordinator(exercise: Exercise, ukbf: Agency) -> User:
    user = UserFactory(email="james@ukbf.example", display_name="James Carter", agency=ukbf)
    MembershipFactory(exercise=exercise, user=user, role=GroupRole.COORDINATOR)
    return user


@pytest.fixture
def gz_officer(exercise: Exercise, gacc: Agency) -> User:
    user = UserFactory(
        email="li.wei@gz.example", display_name="Li Wei", agency=gacc, time_zone="Asia/Shanghai"
    )
    MembershipFactory(exercise=exercise, user=user, role=GroupRole.MEMBER)
    return user


@pytest.fixture
def gz_observer(exercise: Exercise, gacc: Agency) -> User:
    user = UserFactory(
        email="chen@gz.example", display_name="Chen Jing", agency=gacc, time_zone="Asia/Shanghai"
    )
    MembershipFactory(exercise=exercise, user=user, role=GroupRole.OBSERVER)
    return user


@pytest.fixture
def removed_coordinator(exercise: Exercise, hmrc: Agency) -> User:
    """Once coordinated ``exercise``; removed since, so now refused everything."""
    from tests.groups_support import make_removed_coordinator

    return make_removed_coordinator(exercise, hmrc)


@pytest.fixture
def other_exercise(admin: User, ukbf: Agency) -> Exercise:
    return ExerciseFactory(
        code="CFE-TEST-OTHER", title="Another exercise", created_by=admin, agencies=[ukbf]
    )


@pytest.fixture
def outsider(other_exercise: Exercise, ukbf: Agency) -> User:
    """An officer of another exercise: must see nothing of ``exercise``."""
    user = UserFactory(email="sam@ukbf.example", display_name="Sam Outsider", agency=ukbf)
    MembershipFactory(exercise=other_exercise, user=user, role=GroupRole.MEMBER)
    return user


@pytest.fixture
def password() -> str:
    return DEFAULT_PASSWORD


# --- observing side effects -------------------------------------------------------------------


@dataclass
class CapturedEvents:
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def to_group(self, group: str) -> list[dict[str, Any]]:
        return [event for name, event in self.sent if name == group]

    def types(self) -> list[str]:
        return [event["type"] for _, event in self.sent]


@pytest.fixture
def captured_events(monkeypatch: pytest.MonkeyPatch) -> CapturedEvents:
    """Records every event published to the channel layer (and still delivers it)."""
    from liaison import events

    captured = CapturedEvents()
    original = events.publish

    def recording_publish(group: str, event: dict[str, Any]) -> None:
        captured.sent.append((group, event))
        original(group, event)

    monkeypatch.setattr(events, "publish", recording_publish)
    return captured


# --- a real server ----------------------------------------------------------------------------


@dataclass
class LiveServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"


def _get_asgi_application() -> Any:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from config.asgi import application

    return ASGIStaticFilesHandler(application)


def _child_setup() -> None:
    # The forked server must open its own database connections.
    for conn in connections.all(initialized_only=True):
        conn.inc_thread_sharing()
        conn.close()
    # ...and its own thread for thread-sensitive sync code (database_sync_to_async): an
    # executor inherited from a parent that already ran async tests has a worker thread that
    # did not survive the fork, and every consumer's database call would wait forever.
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import SyncToAsync

    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)


@pytest.fixture
def asgi_server(transactional_db: None) -> Iterator[LiveServer]:
    """A real daphne process serving the app on a free port, over the test database."""
    from daphne.testing import DaphneProcess

    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.fail("asgi_server needs a file-based test database")
    connections.close_all()
    process = DaphneProcess(
        "127.0.0.1",
        _get_asgi_application,
        kwargs={
            "websocket_max_message_size": settings.LIAISON_WS_MAX_FRAME_BYTES,
            "websocket_max_frame_size": settings.LIAISON_WS_MAX_FRAME_BYTES,
        },
        setup=_child_setup,
    )
    process.start()
    if not process.ready.wait(20):
        process.terminate()
        error = "" if process.errors.empty() else process.errors.get(False)[1]
        pytest.fail(f"daphne did not start: {error}")
    try:
        yield LiveServer("127.0.0.1", process.port.value)
    finally:
        process.terminate()
        process.join(10)
        connections.close_all()


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright (its own browser download is not used)."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    # While Playwright runs, asyncio reports a running loop in this thread and Django keeps
    # database connections in a per-context store instead of the thread-local one. Close them
    # on both sides of the browser's life, so that no open connection is left behind for a
    # forked asgi_server to inherit and shut (which kills it for this process too, on
    # PostgreSQL) or to hold the test database open at the end of the session.
    connections.close_all()
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        try:
            yield instance
        finally:
            connections.close_all()
            instance.close()


# --- signing in -------------------------------------------------------------------------------


def sign_in(client: Any, user: User) -> Any:
    """Log ``user`` in on a test client with a fully verified session (password and second
    factor done), as the login pages would leave it."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.fixture
def login_as() -> Any:
    """``login_as(client, user)``: a verified session on that client."""
    return sign_in


def session_cookie_header(user: User) -> tuple[bytes, bytes]:
    """A ``Cookie`` header carrying a verified session for ``user`` (for WebSocket tests)."""
    from django.test import Client

    client = sign_in(Client(), user)
    name = settings.SESSION_COOKIE_NAME
    return (b"cookie", f"{name}={client.cookies[name].value}".encode())


@pytest.fixture
def ws_headers() -> Any:
    """``ws_headers(user)``: headers for a WebSocket handshake as ``user`` from our own origin."""

    def headers(
        user: User | None, origin: str = "http://127.0.0.1:8000"
    ) -> list[tuple[bytes, bytes]]:
        result = [(b"origin", origin.encode())]
        if user is not None:
            result.append(session_cookie_header(user))
        return result

    return headers
