"""Load test of the room WebSocket with real clients, beside a bare Channels broadcast server.

    python manage.py loadtest [options]        (or: python -m bench loadtest [options])
    python manage.py loadtest --suite          what ``make bench`` runs; writes docs/benchmarks.md

Officers of one throwaway exercise (created on first use, reused after) sign in through the
HTTP API with their password and TOTP code, open ``ws://.../ws/rooms/<id>/`` with the session
cookie and an Origin header, and send 64-byte messages at a paced rate or unthrottled (each
sender keeps ``--window`` sends in flight: sent, and not yet both acknowledged and back on the
sender's own socket). Each body carries a unique id and the send time, so
every delivery to every socket is timed. An ``error`` frame with ``retry_after`` (backpressure)
is waited out and the same ``client_id`` sent again.

Reported: messages/s delivered to every member, deliveries/s, latency send → each recipient
(p50/p95/p99), ack latency, lost (acknowledged but not delivered to every member before the
drain time ran out) and duplicated (one seq twice on one socket) — both must be 0 —, time to
connect every socket, server CPU per 1,000 deliveries (utime + stime of the server processes),
server RSS, and the load generator's own CPU (near 100 % means it, not the server, was the cap).

By default the test starts its own daphne workers on the configured DATABASE_URL and REDIS_URL
with the per-user frame limit raised; ``--url`` targets a running server instead (its frame
limit must be raised too). ``--baseline`` runs the same load, interleaved, against
``bench/baseline_asgi.py`` on the same settings and daphne, and prints Liaison/baseline ratios.
Loopback addresses only; every wait has a deadline. It writes benchmark data (an exercise, its
officers, their messages, audit events) into the configured database and refuses to run in
production. Session cookies are kept under ``LIAISON_VAR_DIR/loadtest/`` (a sign-in costs a
second of Argon2 on the server) and reused while they are valid.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import http.cookiejar
import importlib.util
import itertools
import json
import math
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, connections

from liaison.realtime import presence_deltas
from liaison.realtime.server import SWEEP_SECONDS

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
EMAIL_DOMAIN = "loadtest.invalid"
EXERCISE_PREFIX = "LOADTEST"
ROOM_PREFIX = "load-"
LIAISON_APP = "config.asgi:application"
BASELINE_APP = "bench.baseline_asgi:application"
# The per-user frame limit of the workers this test starts: a load-test officer sends far
# faster than a person, and the limit is not what is measured.
RATE_PER_10S = "1000000"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
DOCS_PATH = Path(settings.BASE_DIR) / "docs" / "benchmarks.md"


class LoadTestError(CommandError):
    pass


# --- what a run is ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One load: ``kind`` is ``load`` (send messages), ``connect`` (open sockets, then close)
    or ``idle`` (open sockets and let them sit for ``idle_seconds``)."""

    name: str
    rooms: int = 10
    per_room: int = 10
    kind: str = "load"
    rate: float | None = 200.0  # messages/s over all senders; None: unthrottled
    window: int = 1  # unthrottled: sends each sender keeps in flight
    duration: float = 10.0  # seconds of sending
    messages: int | None = None  # stop after this many (default: rate x duration)
    drain: float = 10.0  # seconds to wait for acks and deliveries once sending stops
    body_bytes: int = 64
    sockets_per_officer: int = 1  # one officer may hold several sockets (tabs)
    idle_seconds: float = 30.0
    connect_timeout: float = 120.0
    connect_concurrency: int = 100  # handshakes at a time

    @property
    def sockets(self) -> int:
        return self.rooms * self.per_room

    @property
    def officers(self) -> int:
        return math.ceil(self.sockets / self.sockets_per_officer)

    @property
    def offered(self) -> str:
        if self.kind != "load":
            return "-"
        return "max" if self.rate is None else f"{self.rate:g}"


@dataclass
class Result:
    scenario: str
    server: str  # "liaison" or "baseline"
    workers: int
    kind: str
    rooms: int
    per_room: int
    sockets: int
    offered_per_s: float | None
    window: int
    connected: int = 0
    connect_failed: dict[str, int] = field(default_factory=dict)
    handshake_failures: dict[str, int] = field(default_factory=dict)  # tried again after
    connect_s: float = 0.0
    connect_cpu_ms: float = 0.0
    sent: int = 0
    acked: int = 0
    unacked: int = 0
    refused: int = 0
    backpressure: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    closed: dict[str, int] = field(default_factory=dict)
    expected_deliveries: int = 0
    deliveries: int = 0
    delivered_pct: float = 0.0
    lost: int = 0
    duplicated: int = 0
    foreign: int = 0
    send_s: float = 0.0
    messages_per_s: float = 0.0  # delivered to every member
    deliveries_per_s: float = 0.0
    stored_per_s: float = 0.0  # acknowledged
    latency_ms: dict[str, float] = field(default_factory=dict)
    ack_ms: dict[str, float] = field(default_factory=dict)
    server_cpu_ms: float = 0.0
    cpu_ms_per_1000: float | None = None
    server_cpu_pct: float = 0.0
    idle_cpu_pct: float | None = None
    rss_mib: float = 0.0
    rss_peak_mib: float = 0.0
    client_cpu_pct: float = 0.0
    # Every process on the machine (server, load generator, database, Redis, the rest), in % of
    # one core: near 100 × cores, the machine, not the server, is the cap.
    machine_cpu_pct: float = 0.0
    busy_after_s: float = 0.0  # the server kept working this long after the sockets closed

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms_summary(values_ns: Sequence[int], fractions: Sequence[float]) -> dict[str, float]:
    summary = {f"p{round(f * 100)}": percentile(values_ns, f) / 1e6 for f in fractions}
    summary["max"] = max(values_ns) / 1e6 if values_ns else float("nan")
    return {name: round(value, 2) for name, value in summary.items()}


# --- the world: officers of one exercise ----------------------------------------------------------


@dataclass(frozen=True)
class Officer:
    user_id: int
    email: str


@dataclass(frozen=True)
class World:
    exercise_code: str
    room_ids: list[int]
    officers: list[Officer]
    password: str


def ensure_world(*, officers: int, rooms: int, password: str) -> World:
    """The load-test exercise with at least ``rooms`` rooms and ``officers`` member officers
    with a confirmed authenticator, made through the provisioning services and reused on the
    next run. Every officer gets ``password`` (one hash for all: Argon2 costs a second)."""
    from django.contrib.auth.hashers import check_password, make_password
    from django.utils import timezone

    from liaison.models import Agency, Exercise, ExerciseStatus, Membership, Role, Room, User
    from liaison.services import exercises, memberships, twofactor
    from liaison.services import rooms as room_service

    agency, _ = Agency.objects.get_or_create(
        code="loadtest", defaults={"name": "Load Test Agency", "country": "GB"}
    )
    admin = User.objects.filter(email=f"admin@{EMAIL_DOMAIN}").first()
    if admin is None:
        admin = User.objects.create_user(
            f"admin@{EMAIL_DOMAIN}", None, display_name="Load Test Admin", role=Role.ADMIN
        )
    now = timezone.now()
    exercise = (
        Exercise.objects.filter(
            code__startswith=EXERCISE_PREFIX,
            status=ExerciseStatus.ACTIVE,
            ends_at__gt=now + dt.timedelta(days=1),
            agencies=agency,
        )
        .order_by("-pk")
        .first()
    )
    if exercise is None:
        exercise = exercises.create_exercise(
            actor=admin,
            code=f"{EXERCISE_PREFIX}-{now:%Y%m%d-%H%M%S}",
            title="WebSocket load test",
            agencies=[agency],
            starts_at=now - dt.timedelta(hours=1),
            ends_at=now + dt.timedelta(days=365),
        )
        exercise = exercises.activate_exercise(actor=admin, exercise=exercise)
    room_list = list(
        Room.objects.filter(exercise=exercise, name__startswith=ROOM_PREFIX).order_by("name")
    )
    for index in range(len(room_list), rooms):
        room_list.append(
            room_service.add_room(actor=admin, exercise=exercise, name=f"{ROOM_PREFIX}{index:02d}")
        )
    by_email = {
        user.email: user
        for user in User.objects.filter(email__startswith="officer-", agency=agency)
    }
    encoded = None
    sample = next(iter(by_email.values()), None)
    if sample is not None and not check_password(password, sample.password):
        encoded = make_password(password)
        User.objects.filter(pk__in=[user.pk for user in by_email.values()]).update(password=encoded)
    members = set(
        Membership.objects.filter(exercise=exercise, removed_at__isnull=True).values_list(
            "user_id", flat=True
        )
    )
    result = []
    for index in range(officers):
        email = f"officer-{index:04d}@{EMAIL_DOMAIN}"
        user = by_email.get(email)
        if user is None:
            user = User.objects.create_user(
                email, None, display_name=f"Load Officer {index:04d}", agency=agency
            )
            encoded = encoded or make_password(password)
            User.objects.filter(pk=user.pk).update(password=encoded)
        if not twofactor.has_two_factor(user):
            twofactor.create_demo_device(user=user)
        if user.pk not in members:
            memberships.add_member(actor=admin, exercise=exercise, user=user)
        result.append(Officer(user.pk, email))
    return World(exercise.code, [room.pk for room in room_list[:rooms]], result, password)


# --- signing in through the API -----------------------------------------------------------------


class SessionCache:
    """Session keys of the load-test officers, per database, and their shared password."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        database = settings.DATABASES["default"]
        self.key = f"{database['ENGINE'].rsplit('.', 1)[-1]}:{database.get('HOST') or ''}:"
        self.key += f"{database.get('PORT') or ''}:{database['NAME']}"
        self.data: dict[str, Any] = {}
        if path is not None and path.is_file():
            with contextlib.suppress(ValueError, OSError):
                self.data = json.loads(path.read_text()).get(self.key, {})

    @property
    def password(self) -> str:
        if "password" not in self.data:
            self.data["password"] = "load-" + secrets.token_urlsafe(18)
            self.save()
        return self.data["password"]

    @property
    def sessions(self) -> dict[str, str]:
        return self.data.setdefault("sessions", {})

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        everything: dict[str, Any] = {}
        with contextlib.suppress(ValueError, OSError):
            everything = json.loads(self.path.read_text())
        everything[self.key] = self.data
        self.path.touch(mode=0o600, exist_ok=True)
        self.path.write_text(json.dumps(everything, indent=1))


def _http(
    opener: urllib.request.OpenerDirector,
    url: str,
    *,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="GET" if body is None else "POST",
    )
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        with contextlib.suppress(ValueError):
            return error.code, json.loads(error.read() or b"{}")
        return error.code, {}


def _session_is_good(base_url: str, session_key: str) -> bool:
    opener = urllib.request.build_opener()
    opener.addheaders = [("Cookie", f"{settings.SESSION_COOKIE_NAME}={session_key}")]
    status, body = _http(opener, f"{base_url}/api/v1/session")
    return status == 200 and body.get("authenticated") is True


def _totp_code(officer: Officer, deadline: float) -> str:
    """What the officer's authenticator shows now; waits for the next step if both the
    current and the next code were used already."""
    from liaison.models import User
    from liaison.services import twofactor

    try:
        while True:
            device = twofactor.confirmed_device(User.objects.get(pk=officer.user_id))
            if device is None:
                raise LoadTestError(f"{officer.email} has no authenticator")
            code = twofactor.code_for(device)
            if code is not None:
                return code
            wait = device.step - time.time() % device.step + 0.2
            if time.monotonic() + wait > deadline:
                raise LoadTestError(f"no unused TOTP code for {officer.email} before the deadline")
            time.sleep(wait)
    finally:
        connection.close()


def _sign_in(base_url: str, officer: Officer, password: str, deadline: float) -> str:
    """POST /api/v1/session with the password and a TOTP code; the new session key."""
    for attempt in range(3):
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        status, state = _http(opener, f"{base_url}/api/v1/session")
        if status != 200:
            raise LoadTestError(f"GET /api/v1/session answered {status}")
        status, body = _http(
            opener,
            f"{base_url}/api/v1/session",
            body={
                "email": officer.email,
                "password": password,
                "otp": _totp_code(officer, deadline),
            },
            headers={"X-CSRFToken": state["csrf_token"]},
        )
        if status == 200:
            for cookie in jar:
                if cookie.name == settings.SESSION_COOKIE_NAME:
                    return str(cookie.value)
            raise LoadTestError("the sign-in set no session cookie")
        code = (body.get("error") or {}).get("code", status)
        # A code another sign-in used a moment ago: the next step brings a fresh one.
        if code != "otp_invalid" or attempt == 2 or time.monotonic() > deadline:
            raise LoadTestError(f"signing in {officer.email} failed: {status} {code}")
    raise AssertionError("unreachable")


def sign_in_all(
    world: World,
    officers: Sequence[Officer],
    base_urls: Sequence[str],
    cache: SessionCache,
    *,
    timeout: float = 600.0,
) -> dict[str, str]:
    """A valid session key for each officer: the cached one if the server still takes it, or a
    fresh sign-in (spread over the workers, two at a time per worker)."""
    deadline = time.monotonic() + timeout
    keys: dict[str, str] = {}

    def one(index_officer: tuple[int, Officer]) -> tuple[str, str]:
        index, officer = index_officer
        base_url = base_urls[index % len(base_urls)]
        cached = cache.sessions.get(officer.email)
        if cached and _session_is_good(base_url, cached):
            return officer.email, cached
        return officer.email, _sign_in(base_url, officer, world.password, deadline)

    with ThreadPoolExecutor(max_workers=2 * len(base_urls)) as pool:
        for email, key in pool.map(one, enumerate(officers), timeout=timeout):
            keys[email] = key
            cache.sessions[email] = key
    cache.save()
    return keys


# --- the servers under test -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of these processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy since boot, over all cores (``/proc/stat``)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        # user, nice, system, (idle, iowait,) irq, softirq, steal; guest time is within user.
        return (sum(fields[0:3]) + sum(fields[5:8])) / CLOCK_TICKS
    return 0.0


def rss_mib(pids: Sequence[int]) -> tuple[float, float]:
    """Resident and peak resident memory (VmRSS, VmHWM) of these processes, summed, in MiB."""
    now = peak = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    now += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    peak += int(line.split()[1])
    return now / 1024, peak / 1024


def pids_listening_on(port: int) -> list[int]:
    """The processes (of this user) with a listening TCP socket on ``port``: the server of a
    ``--url`` target, so its CPU can be read too."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{parts[9]}]")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                pids.append(int(entry.name))
    return pids


@dataclass
class Worker:
    url: str  # ws://127.0.0.1:port
    pid: int
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def http_url(self) -> str:
        return "http" + self.url[2:]


def worker_environment(channel_prefix: str | None = None) -> dict[str, str]:
    """What a started worker runs with: this process's environment, a frame rate limit the
    load cannot reach, a channel prefix of its own and, unless told otherwise, production's
    ``DEBUG`` off (development's default wraps every query in a timing and logging cursor)."""
    env = {
        **os.environ,
        "LIAISON_WS_RATE_PER_10S": RATE_PER_10S,
        # Redis pub/sub channels are global to the Redis server, whatever database number
        # REDIS_URL names: a prefix of its own keeps other servers' room events (room ids
        # repeat across databases) out of this test's sockets.
        "LIAISON_CHANNEL_PREFIX": channel_prefix or f"loadtest-{secrets.token_hex(4)}",
        "PYTHONUNBUFFERED": "1",
    }
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env.setdefault("DJANGO_DEBUG", "0")
    return env


class ServerPool:
    """daphne workers of one application, each a subprocess on its own port."""

    def __init__(
        self,
        name: str,
        app: str,
        count: int,
        *,
        pin: bool,
        log_dir: Path,
        channel_prefix: str | None = None,
        server: str = "daphne",
    ) -> None:
        self.name = name
        self.workers: list[Worker] = []
        self.stops: list[str] = []
        limit = str(settings.LIAISON_WS_MAX_FRAME_BYTES)
        env = worker_environment(channel_prefix)
        cpus = sorted(os.sched_getaffinity(0))
        log_dir.mkdir(parents=True, exist_ok=True)
        try:
            for index in range(count):
                port = free_port()
                command = server_command(server, port, app, limit)
                if pin and shutil.which("taskset"):
                    command = ["taskset", "-c", str(cpus[index % len(cpus)]), *command]
                log = log_dir / f"{name}-{index}.log"
                with log.open("wb") as sink:
                    process = subprocess.Popen(
                        command,
                        cwd=settings.BASE_DIR,
                        env=env,
                        stdout=sink,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                self.workers.append(Worker(f"ws://127.0.0.1:{port}", process.pid, process, log))
            for worker in self.workers:
                self._wait_ready(worker)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, worker: Worker, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        assert worker.process is not None
        while time.monotonic() < deadline:
            if worker.process.poll() is not None:
                raise LoadTestError(
                    f"{self.name} worker exited with {worker.process.returncode}:\n"
                    + tail(worker.log)
                )
            try:
                with urllib.request.urlopen(f"{worker.http_url}/healthz", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise LoadTestError(
            f"{self.name} worker not ready within {timeout:g} s:\n{tail(worker.log)}"
        )

    @property
    def pids(self) -> list[int]:
        return [worker.pid for worker in self.workers]

    @property
    def urls(self) -> list[str]:
        return [worker.url for worker in self.workers]

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; notes how long each worker took."""
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        for worker in self.workers:
            if worker.process is None:
                continue
            try:
                worker.process.wait(max(0.1, started + timeout - time.monotonic()))
                self.stops.append(f"exited in {time.monotonic() - started:.1f} s")
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.process.pid, signal.SIGKILL)
                worker.process.wait(5)
                self.stops.append(f"killed after {timeout:g} s")
            worker.process = None


SERVERS = ("daphne", "uvicorn")


def server_command(server: str, port: int, app: str, frame_limit: str) -> list[str]:
    """How a worker is started: daphne as production runs it, or uvicorn (with uvloop and
    httptools where installed) with the same frame limit and ping interval, to compare the two
    under the same load."""
    if server == "uvicorn":
        return [
            *(sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)),
            *("--ws-max-size", frame_limit, "--lifespan", "off"),
            *("--ws-ping-interval", str(settings.LIAISON_WS_PING_SECONDS), app),
        ]
    return [
        *(sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)),
        *("--websocket-max-message-size", frame_limit),
        *("--websocket-max-frame-size", frame_limit, app),
    ]


def check_server(server: str) -> str:
    if server not in SERVERS:
        raise CommandError(f"--server: one of {', '.join(SERVERS)}.")
    if server == "uvicorn" and importlib.util.find_spec("uvicorn") is None:
        raise CommandError(
            "--server uvicorn: uvicorn is not installed here (pip install 'uvicorn[standard]')."
        )
    return server


def tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# Tables every run fills and empties again (sockets, sign-ins).
CHURNED_TABLES = ("liaison_presence", "liaison_usersession", "django_session")


def vacuum_churned_tables() -> None:
    """Without autovacuum (this machine's PostgreSQL runs with it off) the dead rows of earlier
    runs pile up (84,000 in the presence table after a day of runs) and every later run reads
    past them. Each run starts from vacuumed tables, as production's autovacuum keeps them."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('autovacuum')")
        if cursor.fetchone()[0] == "on":
            return
        for table in CHURNED_TABLES:
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(table)}")


def wait_quiet(
    pids: Sequence[int], *, timeout: float = 15.0, busy_pct: float = 5.0, calm_seconds: float = 1.0
) -> float:
    """Until the servers have been nearly idle for ``calm_seconds`` (the work of the previous
    phase done), at most ``timeout`` seconds; how long they stayed busy."""
    started = time.monotonic()
    calm = 0
    busy_until = started
    while time.monotonic() < started + timeout and calm < 2 * calm_seconds:
        before = cpu_seconds(pids)
        time.sleep(0.5)
        if (cpu_seconds(pids) - before) / 0.5 * 100 < busy_pct:
            calm += 1
        else:
            calm, busy_until = 0, time.monotonic()
    return busy_until - started


# --- the clients --------------------------------------------------------------------------------


@dataclass(eq=False)
class Seat:
    """One client socket: an officer's session in one room, on one worker."""

    index: int
    room: int  # index into the scenario's rooms
    url: str
    cookie: str
    origin: str
    ws: Any = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    seqs: set[Any] = field(default_factory=set)
    numbers: set[int] = field(default_factory=set)
    window: asyncio.Semaphore | None = None
    connect_ns: int = 0


class Load:
    """The bookkeeping of one phase: every message by number, every delivery by socket."""

    def __init__(self, scenario: Scenario, seats: list[Seat]) -> None:
        self.scenario = scenario
        self.seats = seats
        self.run = secrets.token_hex(4)
        self.room_size = Counter(seat.room for seat in seats)
        self.sent_ns: list[int] = []
        self.frames: list[str] = []
        self.room_of: list[int] = []
        self.sender: list[Seat] = []
        self.received: list[int] = []
        self.acked_ns: dict[int, int] = {}
        self.complete_ns: dict[int, int] = {}
        self.settled: set[int] = set()
        self.refused: set[int] = set()
        self.echoed: set[int] = set()  # came back to the sender's own socket
        self.returned: set[int] = set()  # no longer in flight for the sender's window
        self.latencies: list[int] = []
        self.ack_latencies: list[int] = []
        self.duplicated = 0
        self.foreign = 0
        self.backpressure: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.closed: Counter[str] = Counter()
        self.others: Counter[str] = Counter()
        self.handshake_failures: Counter[str] = Counter()
        self.sending_done = False
        self.all_settled = asyncio.Event()
        self.closing = False
        self.retries: set[asyncio.Task[None]] = set()
        self.listeners: list[asyncio.Task[None]] = []
        self.stop_at = 0.0

    # --- sending --------------------------------------------------------------------------------

    def new_message(self, seat: Seat) -> int | None:
        limit = self.scenario.messages
        if limit is not None and len(self.sent_ns) >= limit:
            return None
        number = len(self.sent_ns)
        now = time.perf_counter_ns()
        body = f"lt {self.run} {number} {now} "
        body += "x" * max(0, self.scenario.body_bytes - len(body))
        self.frames.append(
            json.dumps(
                {"type": "message.send", "client_id": f"lt-{self.run}-{number}", "body": body}
            )
        )
        self.sent_ns.append(now)
        self.room_of.append(seat.room)
        self.sender.append(seat)
        self.received.append(0)
        return number

    async def send(self, seat: Seat, number: int) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await seat.ws.send(self.frames[number])
        except ConnectionClosed:
            self.errors["send_on_closed"] += 1
            self.refuse(number)

    def refuse(self, number: int) -> None:
        """A message the server will not store: it is not owed to anyone."""
        self.refused.add(number)
        self.settle(number)
        self.give_back(number)

    def give_back(self, number: int) -> None:
        """Free the sender's window slot: a send is in flight until it is acknowledged and has
        come back to the sender's own socket (a server that acknowledges before it fans out
        would otherwise let an unthrottled sender queue without bound)."""
        if number in self.returned:
            return
        self.returned.add(number)
        seat = self.sender[number]
        if seat.window is not None:
            seat.window.release()

    def settle(self, number: int) -> None:
        self.settled.add(number)
        if self.sending_done and len(self.settled) >= len(self.sent_ns):
            self.all_settled.set()

    async def resend_later(self, number: int, delay: float) -> None:
        if time.monotonic() + delay > self.stop_at:
            self.errors["backpressure_gave_up"] += 1
            self.refuse(number)
            return
        await asyncio.sleep(delay)
        await self.send(self.sender[number], number)

    # --- receiving ------------------------------------------------------------------------------

    async def listen(self, seat: Seat) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for text in seat.ws:
                now = time.perf_counter_ns()
                frame = json.loads(text)
                kind = frame.get("type")
                if kind == "message.new":
                    self.delivered(seat, frame.get("message") or {}, now)
                elif kind == "message.ack":
                    self.acked(frame, now)
                elif kind == "error":
                    self.error(frame)
                elif kind == "pong":
                    seat.ready.set()
                else:
                    self.others[str(kind)] += 1
        except ConnectionClosed:
            pass
        finally:
            if not self.closing:  # closed by the server (or dropped), not by this test
                self.closed[str(seat.ws.close_code or "dropped")] += 1
            seat.ready.set()  # a socket closed while connecting stops waiting

    def number_of(self, text: object, prefix: str, separator: str) -> int | None:
        if not isinstance(text, str) or not text.startswith(prefix):
            return None
        parts = text.split(separator)
        if len(parts) < 3 or parts[1] != self.run:
            return None
        with contextlib.suppress(ValueError):
            number = int(parts[2])
            if 0 <= number < len(self.sent_ns):
                return number
        return None

    def delivered(self, seat: Seat, message: dict[str, Any], now: int) -> None:
        seq = message.get("seq")
        number = self.number_of(message.get("body"), "lt ", " ")
        if number is None:
            self.foreign += 1
            return
        if (seq is not None and seq in seat.seqs) or number in seat.numbers:
            self.duplicated += 1
            return
        seat.seqs.add(seq)
        seat.numbers.add(number)
        self.received[number] += 1
        if seat is self.sender[number]:
            self.echoed.add(number)
            if number in self.acked_ns:
                self.give_back(number)
        self.latencies.append(now - self.sent_ns[number])
        if self.received[number] == self.room_size[self.room_of[number]]:
            self.complete_ns[number] = now
            if number in self.acked_ns:
                self.settle(number)

    def acked(self, frame: dict[str, Any], now: int) -> None:
        number = self.number_of(frame.get("client_id"), "lt-", "-")
        if number is None or number in self.acked_ns or number in self.refused:
            return
        self.acked_ns[number] = now
        self.ack_latencies.append(now - self.sent_ns[number])
        if number in self.echoed:
            self.give_back(number)
        if number in self.complete_ns:
            self.settle(number)

    def error(self, frame: dict[str, Any]) -> None:
        code = str(frame.get("code"))
        number = self.number_of(frame.get("client_id"), "lt-", "-")
        retry_after = frame.get("retry_after")
        if number is None:
            self.errors[code] += 1
        elif isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
            self.backpressure[code] += 1
            task = asyncio.get_running_loop().create_task(
                self.resend_later(number, max(0.0, float(retry_after)))
            )
            self.retries.add(task)
            task.add_done_callback(self.retries.discard)
        elif number not in self.acked_ns and number not in self.refused:
            self.errors[code] += 1
            self.refuse(number)


async def open_seat(seat: Seat, load: Load, gate: asyncio.Semaphore) -> None:
    """Connect, then ping until the server answers: the socket is admitted and usable."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidHandshake
    from websockets.protocol import State

    async with gate:
        started = time.perf_counter_ns()
        for attempt in itertools.count():
            try:
                seat.ws = await connect(
                    seat.url,
                    additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={seat.cookie}"},
                    origin=seat.origin,  # type: ignore[arg-type]
                    open_timeout=60,
                    ping_interval=None,  # browsers send no protocol pings: the server's own cost
                    max_queue=None,
                    compression=None,
                )
                break
            except (InvalidHandshake, OSError, TimeoutError) as error:
                # A browser tries again after a failed handshake; so does this client (until
                # the phase's connect deadline), and the failures are reported.
                load.handshake_failures[type(error).__name__] += 1
                await asyncio.sleep(min(2.0, 0.25 * 2**attempt))
        listener = asyncio.get_running_loop().create_task(load.listen(seat))
        load.listeners.append(listener)
        wait = 0.2
        while not seat.ready.is_set():
            with contextlib.suppress(Exception):
                await seat.ws.send('{"type": "ping"}')
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(seat.ready.wait(), wait)
            wait = min(wait * 2, 2.0)
        if listener.done() or seat.ws.state is not State.OPEN:
            raise ConnectionError(f"closed with {seat.ws.close_code} while connecting")
        seat.connect_ns = time.perf_counter_ns() - started


async def run_phase(
    scenario: Scenario, seats: list[Seat], pids: Sequence[int], result: Result
) -> None:
    """Connect every seat, then send (or sit idle), drain and close; fill in ``result``."""
    load = Load(scenario, seats)
    gate = asyncio.Semaphore(scenario.connect_concurrency)
    cpu_before = cpu_seconds(pids)
    started = time.perf_counter()
    tasks = [asyncio.create_task(open_seat(seat, load, gate)) for seat in seats]
    _, pending = await asyncio.wait(tasks, timeout=scenario.connect_timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    failures: Counter[str] = Counter()
    connected = []
    for seat, task in zip(seats, tasks, strict=True):
        error = None if task in pending else task.exception()
        if task in pending:
            failures["timeout"] += 1
        elif isinstance(error, ConnectionError):
            failures[str(error)] += 1
        elif error is not None:
            failures[type(error).__name__] += 1
        else:
            connected.append(seat)
    result.connect_s = round(time.perf_counter() - started, 3)
    result.connect_cpu_ms = round(1000 * (cpu_seconds(pids) - cpu_before), 1)
    result.connected = len(connected)
    result.connect_failed = dict(failures)
    result.handshake_failures = dict(load.handshake_failures)
    load.seats = connected
    load.room_size = Counter(seat.room for seat in connected)
    try:
        if connected and scenario.kind == "load":
            await asyncio.to_thread(wait_quiet, pids)
            await send_and_drain(load, connected, pids, result)
        elif connected and scenario.kind == "idle":
            # The connects' last presence changes are told up to one (grown) presence window
            # after the last connect: part of connecting, not of sitting idle.
            presence_window = presence_deltas.MAX_WINDOWS * presence_deltas.window_seconds()
            await asyncio.to_thread(
                wait_quiet, pids, timeout=30.0 + presence_window, calm_seconds=presence_window + 1
            )
            cpu_before = cpu_seconds(pids)
            idle_started = time.perf_counter()
            await asyncio.sleep(scenario.idle_seconds)
            spent = cpu_seconds(pids) - cpu_before
            result.idle_cpu_pct = round(100 * spent / (time.perf_counter() - idle_started), 2)
        result.rss_mib, result.rss_peak_mib = (round(v, 1) for v in rss_mib(pids))
    finally:
        load.closing = True
        for task in load.retries:
            task.cancel()
        sockets = [seat.ws for seat in seats if seat.ws is not None]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True), 15
            )
        for listener in load.listeners:
            listener.cancel()
        await asyncio.gather(*load.listeners, return_exceptions=True)
    result.closed = dict(load.closed)
    result.errors.update(load.errors)
    result.foreign = load.foreign


async def send_and_drain(
    load: Load, seats: list[Seat], pids: Sequence[int], result: Result
) -> None:
    scenario = load.scenario
    # Senders take turns across rooms: consecutive messages go to different rooms.
    senders = sorted(seats, key=lambda seat: (seat.index // scenario.rooms, seat.room))
    cpu_before = cpu_seconds(pids)
    machine_before = machine_busy_seconds()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    send_deadline = started + scenario.duration
    load.stop_at = time.monotonic() + scenario.duration + scenario.drain

    if scenario.rate is not None:
        # A paced schedule over all senders: message k leaves at start + k / rate.
        number = 0
        while True:
            due = started + number / scenario.rate
            if due >= send_deadline:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            picked = load.new_message(senders[number % len(senders)])
            if picked is None:
                break
            await load.send(senders[number % len(senders)], picked)
            number += 1
    else:

        async def pump(seat: Seat) -> None:
            seat.window = asyncio.Semaphore(scenario.window)
            while True:
                remaining = send_deadline - time.perf_counter()
                if remaining <= 0:
                    return
                try:
                    await asyncio.wait_for(seat.window.acquire(), remaining)
                except TimeoutError:
                    return
                if time.perf_counter() >= send_deadline:
                    return
                picked = load.new_message(seat)
                if picked is None:
                    return
                await load.send(seat, picked)

        await asyncio.gather(*(pump(seat) for seat in senders))
    result.send_s = round(time.perf_counter() - started, 2)
    load.sending_done = True
    if len(load.settled) >= len(load.sent_ns):
        load.all_settled.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(load.all_settled.wait(), scenario.drain)
    ended = time.perf_counter()
    spent = cpu_seconds(pids) - cpu_before
    machine = machine_busy_seconds() - machine_before
    usage = resource.getrusage(resource.RUSAGE_SELF)
    client = usage.ru_utime + usage.ru_stime - usage_before.ru_utime - usage_before.ru_stime

    sent = len(load.sent_ns)
    result.sent = sent
    result.acked = len(load.acked_ns)
    result.refused = len(load.refused)
    result.unacked = sent - result.acked - len(load.refused - set(load.acked_ns))
    result.backpressure = dict(load.backpressure)
    result.errors = dict(load.errors)
    result.duplicated = load.duplicated
    owed = [n for n in range(sent) if n not in load.refused]
    result.expected_deliveries = sum(load.room_size[load.room_of[n]] for n in owed)
    result.deliveries = sum(load.received)
    result.delivered_pct = round(100 * result.deliveries / max(1, result.expected_deliveries), 2)
    result.lost = sum(
        load.room_size[load.room_of[n]] - load.received[n]
        for n in load.acked_ns
        if load.received[n] < load.room_size[load.room_of[n]]
    )
    result.messages_per_s = round(rate_of(load.complete_ns.values()), 1)
    result.stored_per_s = round(rate_of(load.acked_ns.values()), 1)
    result.deliveries_per_s = round(result.deliveries / max(1e-9, ended - started), 1)
    result.latency_ms = ms_summary(load.latencies, (0.5, 0.95, 0.99))
    result.ack_ms = ms_summary(load.ack_latencies, (0.5, 0.99))
    result.server_cpu_ms = round(1000 * spent, 1)
    result.cpu_ms_per_1000 = (
        round(1000 * spent / result.deliveries * 1000, 1) if result.deliveries else None
    )
    result.server_cpu_pct = round(100 * spent / max(1e-9, ended - started), 1)
    result.client_cpu_pct = round(100 * client / max(1e-9, ended - started), 1)
    result.machine_cpu_pct = round(100 * machine / max(1e-9, ended - started), 1)


def rate_of(times_ns: Iterable[int]) -> float:
    """Events per second from the first to the last: the offered rate when the server keeps up,
    its capacity when it does not (the backlog drains at that pace)."""
    ordered = sorted(times_ns)
    if len(ordered) < 2 or ordered[-1] == ordered[0]:
        return float(len(ordered))
    return (len(ordered) - 1) / ((ordered[-1] - ordered[0]) / 1e9)


# --- one scenario against one set of servers -----------------------------------------------------


def seats_for(
    scenario: Scenario, world: World, keys: dict[str, str], urls: Sequence[str]
) -> list[Seat]:
    """Seat i sits in room i mod R; the sockets of each room take turns over the workers, so
    deliveries cross processes whenever there are several."""
    seats = []
    for index in range(scenario.sockets):
        room = index % scenario.rooms
        place = index // scenario.rooms
        url = urls[(room + place) % len(urls)]
        officer = world.officers[index // scenario.sockets_per_officer]
        parts = urlsplit(url)
        origin = f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"
        seats.append(
            Seat(
                index=index,
                room=room,
                url=f"{url}/ws/rooms/{world.room_ids[room]}/",
                cookie=keys[officer.email],
                origin=origin,
            )
        )
    return seats


def run_scenario(
    scenario: Scenario,
    *,
    world: World,
    keys: dict[str, str],
    urls: Sequence[str],
    pids: Sequence[int],
    server: str = "liaison",
) -> Result:
    """One phase of ``scenario`` against the servers at ``urls`` (whose processes are ``pids``)."""
    if len(world.room_ids) < scenario.rooms or len(world.officers) < scenario.officers:
        raise LoadTestError("the world is smaller than the scenario")
    result = Result(
        scenario=scenario.name,
        server=server,
        workers=len(urls),
        kind=scenario.kind,
        rooms=scenario.rooms,
        per_room=scenario.per_room,
        sockets=scenario.sockets,
        offered_per_s=scenario.rate if scenario.kind == "load" else None,
        window=scenario.window,
    )
    connections.close_all()  # no database connection is held across the event loop
    asyncio.run(run_phase(scenario, seats_for(scenario, world, keys, urls), pids, result))
    if scenario.kind == "load":
        # What the server still owes must not spill into the next phase (on the same cores).
        result.busy_after_s = round(wait_quiet(pids, timeout=60.0), 1)
    return result


# --- reporting ------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def result_rows(results: Sequence[Result]) -> list[list[str]]:
    rows = [
        [
            "scenario",
            "server",
            "wk",
            "sockets",
            "offered",
            "sent",
            "acked",
            "msg/s",
            "deliv/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "ack p50",
            "ack p99",
            "lost",
            "dup",
            "backpr.",
            "connect s",
            "cpu ms/1k",
            "srv cpu %",
            "rss MiB",
            "client %",
            "machine %",
        ]
    ]
    for r in results:
        offered = (
            "-"
            if r.kind != "load"
            else ("max" if r.offered_per_s is None else f"{r.offered_per_s:g}")
        )
        idle = r.kind == "idle"
        rows.append(
            [
                r.scenario,
                r.server,
                str(r.workers),
                f"{r.connected}/{r.sockets}",
                offered,
                str(r.sent) if r.kind == "load" else "-",
                str(r.acked) if r.kind == "load" else "-",
                fmt(r.messages_per_s) if r.kind == "load" else "-",
                fmt(r.deliveries_per_s, 0) if r.kind == "load" else "-",
                fmt(r.latency_ms.get("p50")),
                fmt(r.latency_ms.get("p95")),
                fmt(r.latency_ms.get("p99")),
                fmt(r.ack_ms.get("p50")),
                fmt(r.ack_ms.get("p99")),
                str(r.lost) if r.kind == "load" else "-",
                str(r.duplicated) if r.kind == "load" else "-",
                str(sum(r.backpressure.values())) if r.kind == "load" else "-",
                fmt(r.connect_s, 2),
                fmt(r.cpu_ms_per_1000),
                fmt(r.idle_cpu_pct, 2) + " idle"
                if idle
                else (fmt(r.server_cpu_pct) if r.kind == "load" else "-"),
                fmt(r.rss_mib, 0),
                fmt(r.client_cpu_pct),
                fmt(r.machine_cpu_pct) if r.kind == "load" else "-",
            ]
        )
    return rows


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(present) if present else None


def ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom == 0:
        return None
    return top / bottom


@dataclass
class Comparison:
    scenario: str
    workers: int
    capacity: tuple[float | None, float | None, float | None]  # liaison, baseline, ratio
    cpu_per_1000: tuple[float | None, float | None, float | None]
    p99: tuple[float | None, float | None, float | None]
    connect: tuple[float | None, float | None, float | None]
    idle_cpu: tuple[float | None, float | None, float | None]

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def compare(results: Sequence[Result]) -> list[Comparison]:
    """Liaison against the baseline, per scenario and worker count (medians of repetitions)."""
    keys = list(dict.fromkeys((r.scenario, r.workers) for r in results))
    comparisons = []
    for name, workers in keys:
        mine = [r for r in results if (r.scenario, r.workers) == (name, workers)]
        liaison = [r for r in mine if r.server == "liaison"]
        baseline = [r for r in mine if r.server == "baseline"]
        if not liaison or not baseline:
            continue

        def pair(pick: Any, liaison: list[Result] = liaison, baseline: list[Result] = baseline):
            a = median([pick(r) for r in liaison])
            b = median([pick(r) for r in baseline])
            return (a, b, ratio(a, b))

        comparisons.append(
            Comparison(
                scenario=name,
                workers=workers,
                capacity=pair(lambda r: r.messages_per_s if r.kind == "load" else None),
                cpu_per_1000=pair(lambda r: r.cpu_ms_per_1000),
                p99=pair(lambda r: r.latency_ms.get("p99")),
                connect=pair(lambda r: r.connect_s),
                idle_cpu=pair(lambda r: r.idle_cpu_pct),
            )
        )
    return comparisons


def comparison_rows(comparisons: Sequence[Comparison]) -> list[list[str]]:
    rows = [
        [
            "scenario",
            "wk",
            "msg/s L",
            "msg/s R",
            "L/R",
            "cpu ms/1k L",
            "cpu ms/1k R",
            "L/R",
            "p99 ms L",
            "p99 ms R",
            "L/R",
            "connect s L",
            "connect s R",
            "L/R",
        ]
    ]
    for c in comparisons:
        row = [c.scenario, str(c.workers)]
        for triple, digits in (
            (c.capacity, 1),
            (c.cpu_per_1000, 1),
            (c.p99, 1),
            (c.connect, 2),
        ):
            row += [fmt(triple[0], digits), fmt(triple[1], digits), fmt(triple[2], 2)]
        rows.append(row)
    return rows


def check_result(result: Result) -> list[str]:
    """What must hold in any load run: nothing lost, nothing twice."""
    problems = []
    if result.kind == "load":
        if result.lost:
            problems.append(f"{result.lost} deliveries of acknowledged messages lost")
        if result.duplicated:
            problems.append(f"{result.duplicated} duplicated deliveries")
    if result.connected < result.sockets:
        problems.append(f"{result.sockets - result.connected} sockets did not connect")
    return problems


# --- running: servers, world, phases --------------------------------------------------------------


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < needed:
        raise LoadTestError(
            f"{needed} sockets need more file descriptors than this process may open ({wanted})."
        )


def check_loopback(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"ws", "wss"} or parts.hostname not in LOOPBACK:
        raise LoadTestError(f"{url}: use a ws:// address on the loopback interface.")
    return f"{parts.scheme}://{parts.netloc}"


def check_layer(workers: int) -> None:
    if workers > 1 and not settings.REDIS_URL:
        raise LoadTestError(
            "Several workers need a shared channel layer: the in-memory layer lives inside one "
            "process, so a message sent through one worker would never reach the sockets held "
            "by another. Set REDIS_URL (and DATABASE_URL for PostgreSQL)."
        )


class Runner:
    """Servers started (or targeted), officers signed in; runs phases, interleaving Liaison
    and the baseline."""

    def __init__(
        self,
        *,
        workers: int,
        pin: bool,
        urls: Sequence[str] = (),
        baseline: bool = False,
        baseline_urls: Sequence[str] = (),
        sessions_file: Path | None,
        out: Any,
        server: str = "daphne",
    ) -> None:
        self.out = out
        self.server = server
        self.affinity = os.sched_getaffinity(0)
        self.pools: list[ServerPool] = []
        self.log_dir = Path(settings.VAR_DIR) / "loadtest" / "logs"
        self.cache = SessionCache(sessions_file)
        self.world: World | None = None
        self.keys: dict[str, str] = {}
        self.workers = len(urls) or workers
        self.pin = pin
        self.channel_prefix = f"loadtest-{secrets.token_hex(4)}"
        try:
            self.liaison = self._servers("liaison", LIAISON_APP, workers, urls)
            self.baseline = (
                self._servers("baseline", BASELINE_APP, workers, baseline_urls)
                if baseline
                else None
            )
        except BaseException:
            self.close()
            raise
        if pin and not urls and len(os.sched_getaffinity(0)) > self.workers:
            # The load generator keeps off the cores the workers are pinned to.
            cpus = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(0, cpus[self.workers :])

    def _servers(
        self, name: str, app: str, count: int, urls: Sequence[str]
    ) -> tuple[list[str], list[int]]:
        if urls:
            targets = [check_loopback(url) for url in urls]
            pids = [pid for url in targets for pid in pids_listening_on(urlsplit(url).port or 80)]
            if not pids:
                self.out(f"  (the {name} server's processes are not readable: no CPU figures)")
            return targets, pids
        started = time.monotonic()
        pool = ServerPool(
            name,
            app,
            count,
            pin=self.pin,
            log_dir=self.log_dir,
            channel_prefix=self.channel_prefix,
            server=self.server,
        )
        self.pools.append(pool)
        self.out(
            f"  started {count} {name} {self.server} worker(s) in {time.monotonic() - started:.1f} s"
            f"{' (pinned)' if self.pin else ''}: {', '.join(pool.urls)}"
        )
        return pool.urls, pool.pids

    def prepare(self, scenarios: Sequence[Scenario]) -> None:
        rooms = max(s.rooms for s in scenarios)
        officers = max(s.officers for s in scenarios)
        raise_fd_limit(max(s.sockets for s in scenarios) * 2 + 256)
        started = time.monotonic()
        self.world = ensure_world(officers=officers, rooms=rooms, password=self.cache.password)
        self.out(
            f"  world: exercise {self.world.exercise_code}, {rooms} rooms, {officers} officers "
            f"({time.monotonic() - started:.1f} s)"
        )
        started = time.monotonic()
        urls = [("http" + url[2:]) for url in self.liaison[0]]
        self.keys = sign_in_all(self.world, self.world.officers[:officers], urls, self.cache)
        self.out(f"  signed in {officers} officers ({time.monotonic() - started:.1f} s)")
        connections.close_all()

    def run(self, scenario: Scenario, *, repeat: int = 1) -> list[Result]:
        assert self.world is not None
        results = []
        for _ in range(repeat):
            targets = [("liaison", self.liaison)]
            if self.baseline is not None:
                targets.append(("baseline", self.baseline))
            for server, (urls, pids) in targets:
                vacuum_churned_tables()
                result = run_scenario(
                    scenario, world=self.world, keys=self.keys, urls=urls, pids=pids, server=server
                )
                results.append(result)
                self.out(f"  {describe(result)}")
        return results

    def close(self) -> list[str]:
        """Stop the workers started here; how long each took to stop."""
        stopped = []
        for pool in self.pools:
            pool.stop()
            stopped.append(f"{pool.name} worker(s) on SIGTERM: {', '.join(pool.stops)}")
            self.out(f"  {stopped[-1]}")
        self.pools = []
        os.sched_setaffinity(0, self.affinity)
        return stopped


def describe(r: Result) -> str:
    head = f"{r.scenario} [{r.server}, {r.workers} wk]: {r.connected}/{r.sockets} sockets in "
    head += f"{r.connect_s:.2f} s"
    if r.connect_failed or r.handshake_failures:
        head += f" (failed {r.connect_failed}, handshakes tried again {r.handshake_failures})"
    if r.kind == "idle":
        return head + f"; idle CPU {fmt(r.idle_cpu_pct, 2)} %, RSS {fmt(r.rss_mib, 0)} MiB"
    if r.kind == "connect":
        return head + f" ({fmt(r.connect_cpu_ms, 0)} ms server CPU)"
    extra = ""
    if r.busy_after_s >= 1:
        extra += f"; server busy {r.busy_after_s:g} s after the sockets closed"
    if r.backpressure or r.errors or r.closed:
        extra += f"; backpressure {r.backpressure} errors {r.errors} closes {r.closed}"
    return (
        head
        + f"; sent {r.sent}, acked {r.acked}, {fmt(r.messages_per_s)} msg/s, p99 "
        + f"{fmt(r.latency_ms.get('p99'))} ms, delivered {r.delivered_pct:g} %, lost {r.lost}, "
        + f"dup {r.duplicated}{extra}"
    )


# --- the suite (make bench) -----------------------------------------------------------------------


def suite_scenarios(duration: float) -> list[Scenario]:
    # Setting up a load phase opens its sockets 20 at a time: how fast sockets connect is
    # the connect scenario's question, not these.
    common = {"duration": duration, "connect_concurrency": 20, "connect_timeout": 60.0}
    return [
        Scenario("light", rooms=10, per_room=10, rate=50.0, **common),
        Scenario("base", rooms=10, per_room=10, rate=200.0, **common),
        Scenario("max", rooms=10, per_room=10, rate=None, **common),
        Scenario("fan-out", rooms=2, per_room=50, rate=50.0, **common),
    ]


# Each load and connect scenario runs this often, interleaved with the baseline (L, R, L, R),
# and the goals are judged on medians: on a shared machine whose speed drifts from minute to
# minute, one 10-second run of each made CPU per delivery read 1.06 x in one suite and 1.58 x
# in the next. The idle scenario (a minute per run, a steady state) runs once.
SUITE_REPEAT = 2

CONNECT = Scenario(
    "connect", rooms=10, per_room=100, kind="connect", sockets_per_officer=10, connect_timeout=60
)


def idle_seconds() -> float:
    """One ping interval and one sweep (daphne pings a socket at the first sweep after its
    interval): every socket is pinged once in the window, as in a steady state. A shorter
    window that starts soon after the connects ends before their first pings."""
    return float(settings.LIAISON_WS_PING_SECONDS + SWEEP_SECONDS)


# Idle sockets open 20 at a time: their memory and idle CPU is the question here.
IDLE = Scenario(
    "idle",
    rooms=10,
    per_room=200,
    kind="idle",
    sockets_per_officer=20,
    connect_concurrency=20,
    connect_timeout=120,
    idle_seconds=idle_seconds(),
)


def python_speed_ms(rounds: int = 3) -> float:
    """A fixed pure-Python workload, timed (the best of ``rounds``): shared machines run at
    different speeds from hour to hour, and this says how fast this one ran at the start."""
    best = math.inf
    for _ in range(rounds):
        started = time.perf_counter()
        sum(i * i for i in range(3_000_000))
        best = min(best, time.perf_counter() - started)
    return round(1000 * best, 0)


def machine() -> dict[str, str]:
    info = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}
    info["python speed"] = f"{python_speed_ms():g} ms for a fixed loop (lower is faster)"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    info["cores"] = str(os.cpu_count())
    # Other work on the machine shows up here: the figures are only as quiet as the machine was.
    info["load average at the start"] = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    with contextlib.suppress(OSError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        info["memory"] = f"{kib / 1024 / 1024:.1f} GiB"
    info["os"] = f"{platform.system()} {platform.release()}"
    info["python"] = platform.python_version()
    versions = []
    packages = ("django", "channels", "channels-redis", "daphne", "twisted", "websockets")
    for package in (*packages, "uvicorn", "uvloop", "httptools"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    info["packages"] = ", ".join(versions)
    info["database"] = connection.vendor
    if connection.vendor == "postgresql":
        with contextlib.suppress(Exception):
            version = connection.cursor().connection.info.server_version
            info["database"] = f"PostgreSQL {version // 10000}.{version % 10000}"
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    info["channel layer"] = layer
    if settings.REDIS_URL:
        with contextlib.suppress(Exception):
            import redis

            version = redis.Redis.from_url(settings.REDIS_URL).info("server")["redis_version"]
            info["channel layer"] = f"{layer} on Redis {version}"
    with contextlib.suppress(Exception):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        info["commit"] = (commit or "unknown") + (" (with uncommitted changes)" if dirty else "")
    connections.close_all()
    return info


def machine_ceiling(one_worker: Result, cores: int | None = None) -> str:
    """How far more workers could go on this machine at all: the one-worker run's CPU per
    message, over every process, set against the machine's cores."""
    cores = cores or os.cpu_count() or 1
    machine = one_worker.machine_cpu_pct
    if machine <= 0:
        return "the machine's CPU was not measured"
    rest = max(0.0, machine - one_worker.server_cpu_pct - one_worker.client_cpu_pct)
    return (
        f"the one-worker run kept {fmt(machine, 0)} % of the machine's {100 * cores} % busy "
        f"(worker {fmt(one_worker.server_cpu_pct, 0)} %, load generator "
        f"{fmt(one_worker.client_cpu_pct, 0)} %, database, Redis and the rest {fmt(rest, 0)} %): "
        f"at that CPU per message the machine is full at {fmt(100 * cores / machine, 2)} × one "
        "worker"
    )


def goals(results: Sequence[Result], comparisons: Sequence[Comparison]) -> list[list[str]]:
    """The acceptance figures of the real-time core, measured, against their goals: medians of
    the repetitions, and every repetition for what must never happen (a lost message)."""

    def runs(name: str, workers: int = 1) -> list[Result]:
        return [
            r for r in results if (r.scenario, r.workers, r.server) == (name, workers, "liaison")
        ]

    def mid(found: list[Result], pick: Callable[[Result], float | None]) -> float | None:
        return median([pick(r) for r in found])

    def cmp(name: str, workers: int = 1) -> Comparison | None:
        found = [c for c in comparisons if (c.scenario, c.workers) == (name, workers)]
        return found[0] if found else None

    rows = [["goal", "measured", "met"]]

    def add(goal: str, measured: str, met: bool | None) -> None:
        rows.append([goal, measured, "-" if met is None else ("yes" if met else "**no**")])

    def repetitions(found: list[Result]) -> str:
        return f" (median of {len(found)})" if len(found) > 1 else ""

    base = runs("base")
    if base:
        delivered = min(r.delivered_pct for r in base)
        lost, duplicated = sum(r.lost for r in base), sum(r.duplicated for r in base)
        add(
            "base load, one worker: 100 % delivered, 0 lost, 0 duplicated",
            f"{delivered:g} %, {lost} lost, {duplicated} duplicated"
            + (f" (all {len(base)} runs)" if len(base) > 1 else ""),
            delivered >= 100 and not lost and not duplicated,
        )
        p99 = mid(base, lambda r: r.latency_ms.get("p99"))
        add(
            "base load, one worker: p99 ≤ 100 ms",
            f"{fmt(p99)} ms{repetitions(base)}",
            p99 is not None and p99 <= 100,
        )
    c = cmp("base")
    if c is not None:
        add(
            "base load: CPU per delivery ≤ 1.5 × baseline",
            f"{fmt(c.cpu_per_1000[2], 2)} × ({fmt(c.cpu_per_1000[0])} vs "
            f"{fmt(c.cpu_per_1000[1])} ms per 1,000){repetitions(base)}",
            c.cpu_per_1000[2] is not None and c.cpu_per_1000[2] <= 1.5,
        )
    top = runs("max")
    top_rate = mid(top, lambda r: r.messages_per_s)
    if top and base:
        base_rate = mid(base, lambda r: r.messages_per_s)
        share = ratio(top_rate, base_rate)
        lost = sum(r.lost for r in top)
        add(
            "unthrottled: msg/s ≥ 0.8 × base load's, none lost (backpressure instead)",
            f"{fmt(share, 2)} × ({fmt(top_rate)} vs {fmt(base_rate)} msg/s){repetitions(top)}, "
            f"{sum(sum(r.backpressure.values()) for r in top)} backpressure answers, {lost} lost",
            share is not None and share >= 0.8 and not lost,
        )
    two = runs("max", 2)
    if top and two:
        two_rate = mid(two, lambda r: r.messages_per_s)
        share = ratio(two_rate, top_rate)
        add(
            "two workers ≥ 1.8 × one (unthrottled)",
            f"{fmt(share, 2)} × ({fmt(two_rate)} vs {fmt(top_rate)} msg/s){repetitions(top)}; "
            f"{machine_ceiling(top[0])}",
            share is not None and share >= 1.8,
        )
    connect = runs("connect")
    if connect:
        seconds = mid(connect, lambda r: r.connect_s)
        everyone = all(r.connected == r.sockets for r in connect)
        add(
            "1,000 sockets connect in under 5 s",
            f"{connect[0].sockets} in {fmt(seconds)} s{repetitions(connect)}"
            + ("" if everyone else "; some did not connect"),
            everyone and seconds is not None and seconds < 5,
        )
    idle = runs("idle")
    if idle:
        quiet = idle[0]
        add(
            "2,000 idle sockets on one worker: RSS < 1 GiB, idle CPU ≤ 1 %",
            f"{quiet.connected} sockets, {fmt(quiet.rss_mib, 0)} MiB, "
            f"{fmt(quiet.idle_cpu_pct, 2)} % of a core",
            quiet.connected == quiet.sockets
            and quiet.rss_mib < 1024
            and quiet.idle_cpu_pct is not None
            and quiet.idle_cpu_pct <= 1,
        )
    return rows


def write_docs(
    path: Path,
    *,
    info: dict[str, str],
    results: Sequence[Result],
    comparisons: Sequence[Comparison],
    command: str,
    notes: Sequence[str],
) -> None:
    lines = [
        "# Benchmarks: the room WebSocket under load",
        "",
        f"Written by `{command}` (`make bench`); run it again to refresh.",
        "",
        "Liaison (L) beside a bare Channels broadcast server (R, `bench/baseline_asgi.py`: acks",
        "and group-sends, no database) on the same settings (`DJANGO_DEBUG` off, as in",
        "production), channel layer and daphne, interleaved in the same run. Officers sign in",
        "through `POST /api/v1/session` with password and TOTP code and hold real `websockets`",
        "clients; messages are 64 bytes.",
        "Latency is from send to each recipient (the sender's own socket included); *msg/s*",
        "counts messages delivered to every member of their room, from the first to the last;",
        "*lost* are deliveries of acknowledged messages that had not arrived when the drain time",
        "ran out; *cpu ms/1k* is server CPU (user + system, all worker processes) per 1,000",
        "deliveries; *client %* is the load generator's own CPU (near 100 % it, not the server,",
        "is the cap); *machine %* is every process on the machine (server, load generator,",
        "PostgreSQL, Redis and the rest) in % of one core, at most 100 × cores.",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {name}: {value}" for name, value in info.items()]
    lines += [
        "",
        "## Scenarios",
        "",
        "- light: 50 msg/s offered; base: 200 msg/s; max: unthrottled (each sender sends its",
        "  next message once the last is acknowledged and back on its own socket); all 10 rooms",
        "  × 10 officers, 10 s of sending and at most 10 s of drain. Sockets open 20 at a time.",
        "- fan-out: 2 rooms × 50 officers, 50 msg/s (2,500 deliveries/s offered).",
        f"- Each load and connect scenario runs {SUITE_REPEAT} times, interleaved with the",
        "  baseline (L, R, L, R); the goals and the L/R table take medians, *Every run* lists",
        "  each run.",
        "- One worker: the worker pinned to one core, the load generator on the other; two",
        "  workers: not pinned, the sockets of every room spread over both.",
        "- connect: 1,000 sockets (100 officers with 10 each, 10 rooms), 100 handshakes at a",
        "  time, until each socket answers a `ping`; a failed handshake is tried again (at most",
        f"  {CONNECT.connect_timeout:g} s in all).",
        "- idle: 2,000 sockets (100 officers with 20 each, opened 20 at a time) on one fresh",
        f"  worker, idle for {IDLE.idle_seconds:g} s (one ping interval and one sweep, so every",
        "  socket is pinged once, as in a steady state; the baseline keeps daphne's 20 s pings):",
        "  server RSS and CPU.",
        "",
        "## Against the goals",
        "",
        markdown_table(goals(results, comparisons)),
        "",
        "## Liaison against the baseline (L/R)",
        "",
        markdown_table(comparison_rows(comparisons)),
        "",
        "## Every run",
        "",
        markdown_table(result_rows(results)),
        "",
    ]
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    path.write_text("\n".join(lines))


# --- the command ------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = (
        "Load test of the room WebSocket with real clients (websockets): officers sign in "
        "through the API, send messages at a rate or unthrottled; prints throughput, latency, "
        "loss, duplicates, connect time, server CPU per 1,000 deliveries. --baseline beside a "
        "bare Channels broadcast server; --suite is what make bench runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rooms", type=positive_int, default=10)
        parser.add_argument("--per-room", type=positive_int, default=10, help="sockets per room")
        parser.add_argument(
            "--rate", type=float, default=200.0, help="messages/s over all senders (default 200)"
        )
        parser.add_argument(
            "--unthrottled",
            action="store_true",
            help="no rate: each sender sends its next message as soon as the last one is "
            "acknowledged and back on its own socket (see --window)",
        )
        parser.add_argument(
            "--window", type=positive_int, default=1, help="unthrottled: sends in flight per sender"
        )
        parser.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
        parser.add_argument(
            "--messages", type=positive_int, default=None, help="stop after this many messages"
        )
        parser.add_argument(
            "--drain", type=float, default=10.0, help="seconds to wait for deliveries after"
        )
        parser.add_argument("--body-bytes", type=positive_int, default=64)
        parser.add_argument(
            "--sockets-per-officer",
            type=positive_int,
            default=1,
            help="sockets each officer opens (fewer sign-ins for large socket counts)",
        )
        parser.add_argument(
            "--connect-only", action="store_true", help="open every socket, report, close"
        )
        parser.add_argument(
            "--idle", type=float, default=None, metavar="SECONDS", help="open sockets, sit idle"
        )
        parser.add_argument("--connect-concurrency", type=positive_int, default=100)
        parser.add_argument("--connect-timeout", type=float, default=120.0)
        parser.add_argument(
            "--workers", type=positive_int, default=1, help="daphne workers to start (default 1)"
        )
        parser.add_argument(
            "--pin", action="store_true", help="pin worker i to core i (taskset -c)"
        )
        parser.add_argument(
            "--url",
            action="append",
            default=[],
            help="target a running server (ws://127.0.0.1:8000) instead; repeat for several. "
            "Start it with LIAISON_WS_RATE_PER_10S raised and a LIAISON_CHANNEL_PREFIX of its own",
        )
        parser.add_argument(
            "--baseline",
            action="store_true",
            help="run the same load against a bare Channels broadcast server too, interleaved",
        )
        parser.add_argument(
            "--baseline-url", action="append", default=[], help="a running baseline server"
        )
        parser.add_argument(
            "--repeat",
            type=positive_int,
            default=None,
            help=f"repetitions, interleaved with the baseline's (default 1; --suite: "
            f"{SUITE_REPEAT} of each load and connect scenario)",
        )
        parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
        parser.add_argument(
            "--server",
            default="daphne",
            help="the server the workers started here run under: daphne (as production) or "
            "uvicorn (to compare)",
        )
        parser.add_argument(
            "--suite",
            action="store_true",
            help="light, base, max, fan-out with one and two workers, connect, idle; "
            "writes docs/benchmarks.md",
        )
        parser.add_argument(
            "--docs", default=str(DOCS_PATH), help="--suite: where to write the figures"
        )
        parser.add_argument(
            "--no-docs", action="store_true", help="--suite: do not write the docs page"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "The load test writes benchmark data; it does not run in production."
            )
        say = self.stderr.write if options["json"] else self.stdout.write
        if options["suite"]:
            results, comparisons, notes = self.suite(options, say)
        else:
            results, comparisons, notes = self.single(options, say)
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "results": [r.summary() for r in results],
                        "comparisons": [c.summary() for c in comparisons],
                        "notes": list(notes),
                    },
                    indent=1,
                )
            )
        else:
            self.stdout.write("\n" + text_table(result_rows(results)))
            if comparisons:
                self.stdout.write("\nLiaison (L) / baseline (R):\n")
                self.stdout.write(text_table(comparison_rows(comparisons)))
            for note in notes:
                self.stdout.write(f"note: {note}")
        problems = [f"{r.scenario} [{r.server}]: {p}" for r in results for p in check_result(r)]
        for problem in problems:
            say(self.style.WARNING(f"check: {problem}"))
        if problems and not options["suite"]:
            raise CommandError(f"The load test failed its checks: {problems[0]}", returncode=2)

    def scenario(self, options: dict[str, Any]) -> Scenario:
        kind = "connect" if options["connect_only"] else "idle" if options["idle"] else "load"
        rate = None if options["unthrottled"] else options["rate"]
        if rate is not None and not 0 < rate <= 20000:
            raise CommandError("--rate: more than 0 and at most 20,000 messages/s.")
        if not 0 < options["duration"] <= 600 or not 0 <= options["drain"] <= 120:
            raise CommandError("--duration at most 600 s, --drain at most 120 s.")
        if options["rooms"] * options["per_room"] > 20000:
            raise CommandError("At most 20,000 sockets.")
        if not 20 <= options["body_bytes"] <= 8000:
            raise CommandError("--body-bytes: 20 to 8,000.")
        return Scenario(
            name=kind if kind != "load" else ("max" if rate is None else f"{rate:g}/s"),
            rooms=options["rooms"],
            per_room=options["per_room"],
            kind=kind,
            rate=rate,
            window=options["window"],
            duration=options["duration"],
            messages=options["messages"],
            drain=options["drain"],
            body_bytes=options["body_bytes"],
            sockets_per_officer=options["sockets_per_officer"],
            idle_seconds=min(600.0, options["idle"] or 30.0),
            connect_timeout=min(600.0, options["connect_timeout"]),
            connect_concurrency=options["connect_concurrency"],
        )

    def single(
        self, options: dict[str, Any], say: Any
    ) -> tuple[list[Result], list[Comparison], list[str]]:
        scenario = self.scenario(options)
        check_layer(len(options["url"]) or options["workers"])
        server = check_server(options["server"])
        say(self.intro(scenario, options))
        runner = Runner(
            workers=options["workers"],
            pin=options["pin"],
            urls=options["url"],
            baseline=options["baseline"],
            baseline_urls=options["baseline_url"],
            sessions_file=Path(settings.VAR_DIR) / "loadtest" / "sessions.json",
            out=say,
            server=server,
        )
        try:
            runner.prepare([scenario])
            results = runner.run(scenario, repeat=options["repeat"] or 1)
        finally:
            runner.close()
        return results, compare(results), []

    def intro(self, scenario: Scenario, options: dict[str, Any]) -> str:
        layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
        target = ", ".join(options["url"]) or f"{options['workers']} worker(s) started here"
        return (
            f"loadtest {scenario.name}: {scenario.rooms} rooms x {scenario.per_room} sockets, "
            f"offered {scenario.offered} msg/s for {scenario.duration:g} s; "
            f"database={connection.vendor} layer={layer}; server: {target}"
            + ("; with the baseline" if options["baseline"] else "")
        )

    def suite(
        self, options: dict[str, Any], say: Any
    ) -> tuple[list[Result], list[Comparison], list[str]]:
        if options["url"]:
            raise CommandError("--suite starts its own workers; it takes no --url.")
        server = check_server(options["server"])
        notes = []
        worker_counts = [1, 2]
        if not settings.REDIS_URL:
            worker_counts = [1]
            notes.append(
                "Two workers skipped: no REDIS_URL (the in-memory channel layer is per process)."
            )
        if connection.vendor != "postgresql":
            notes.append(f"Database: {connection.vendor}; PostgreSQL is what production runs.")
        duration = min(options["duration"], 10.0)
        scenarios = suite_scenarios(duration)
        sessions_file = Path(settings.VAR_DIR) / "loadtest" / "sessions.json"
        results: list[Result] = []
        started = time.monotonic()
        info = machine()
        info["server"] = server
        # Connect and idle run on fresh workers: what the load phases left behind (peak memory,
        # a backlog) is not theirs.
        groups = [(workers, scenarios) for workers in worker_counts]
        groups += [(1, [CONNECT]), (1, [IDLE])]
        for workers, group in groups:
            names = ", ".join(scenario.name for scenario in group)
            say(self.style.MIGRATE_HEADING(f"-- {names}: {workers} worker(s)"))
            runner = Runner(
                workers=workers,
                pin=workers == 1,
                baseline=True,
                sessions_file=sessions_file,
                out=say,
                server=server,
            )
            try:
                runner.prepare(group)
                for scenario in group:
                    repeat = 1 if scenario.kind == "idle" else options["repeat"] or SUITE_REPEAT
                    results += runner.run(scenario, repeat=repeat)
            finally:
                notes += [f"{names}, {workers} worker(s): {line}" for line in runner.close()]
        say(f"  suite took {time.monotonic() - started:.0f} s")
        info["load average at the end"] = " / ".join(f"{v:.1f}" for v in os.getloadavg())
        info["duration"] = f"{time.monotonic() - started:.0f} s"
        comparisons = compare(results)
        raw = Path(settings.VAR_DIR) / "loadtest" / "last-suite.json"
        raw.write_text(
            json.dumps(
                {
                    "machine": info,
                    "results": [r.summary() for r in results],
                    "notes": notes,
                },
                indent=1,
            )
        )
        if not options["no_docs"]:
            path = Path(options["docs"])
            write_docs(
                path,
                info=info,
                results=results,
                comparisons=comparisons,
                command="python -m bench loadtest --suite",
                notes=notes,
            )
            say(f"  wrote {path}")
        return results, comparisons, notes


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m bench.loadtest [options]``."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    Command().run_from_argv(["loadtest", "loadtest", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
