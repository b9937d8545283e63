"""Benchmark attachments through the real server: upload and download of a large file over HTTP.

Goal (issue 6): the server process's peak memory growth while it takes and serves a 100 MiB
file stays under 64 MiB. Prints MB/s both ways and the growth (VmHWM after ``clear_refs``,
cross-checked by sampling VmRSS of the server process); it is not a test.

By default it builds a throwaway installation in a temporary folder (SQLite database, keyring,
attachment store), starts daphne on it, signs a member in, streams a generated multipart body
(never held whole in this process either), streams the download back and checks the SHA-256.
``--url`` points it at a running server instead (then give ``--session``, ``--room`` and, to
measure memory, ``--pid``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from bench.memory import PeakRss

MB = 1_000_000
MIB = 1024 * 1024
MEMORY_GOAL_MIB = 64
BOUNDARY = "liaison-bench-5b2c0d"
BLOCK = 1 * MIB


class GeneratedFile:
    """``size`` bytes that sniff as PDF: a header, then a random block repeated. Hashed as
    they are produced, so neither side ever holds the file."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.header = b"%PDF-1.7\n% liaison attachment benchmark\n"
        self.block = os.urandom(BLOCK)
        self.sha256 = ""

    def pieces(self) -> Iterator[bytes]:
        digest = hashlib.sha256()
        first = self.header[: self.size]
        digest.update(first)
        yield first
        remaining = self.size - len(first)
        while remaining > 0:
            piece = self.block[: min(BLOCK, remaining)]
            digest.update(piece)
            remaining -= len(piece)
            yield piece
        self.sha256 = digest.hexdigest()


def _multipart(file: GeneratedFile) -> tuple[int, Iterator[bytes]]:
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="benchmark.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        yield from file.pieces()
        yield tail

    return len(head) + file.size + len(tail), body()


def start_daphne(folder: Path, env: dict[str, str]) -> tuple[int, subprocess.Popen, Any]:
    """A daphne worker on a free loopback port, logging to ``folder/daphne.log`` (the caller
    closes the returned log file and stops the server)."""
    port = _free_port()
    log = open(folder / "daphne.log", "wb")  # noqa: SIM115 - the caller closes it
    command = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
    server = subprocess.Popen(
        [sys.executable, *command],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return port, server, log


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rate(size: int, seconds: float) -> str:
    return f"{size / MB / seconds:8.1f} MB/s ({seconds:.2f} s)"


class Command(BaseCommand):
    help = "Upload and download a large attachment through a real daphne server (prints MB/s)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--size-mib", type=int, default=100, help="file size (default 100)")
        parser.add_argument("--url", help="a running server, e.g. http://127.0.0.1:8000")
        parser.add_argument("--session", help="with --url: a signed-in session cookie value")
        parser.add_argument("--room", type=int, help="with --url: a room the session may post in")
        parser.add_argument("--pid", type=int, help="with --url: the server's process id")
        parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
        parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["prepare"]:
            self._prepare()
            return
        size = options["size_mib"] * MIB
        if options["in_process"]:
            asyncio.run(self._in_process(options["session"], options["room"], size))
            return
        if size > settings.LIAISON_ATTACHMENT_MAX_BYTES and not options["url"]:
            size = settings.LIAISON_ATTACHMENT_MAX_BYTES
        if options["url"]:
            if not (options["session"] and options["room"]):
                raise CommandError("--url needs --session and --room (and --pid for memory).")
            self._run(options["url"], options["session"], options["room"], options["pid"], size)
            return
        with tempfile.TemporaryDirectory(prefix="liaison-bench-") as folder:
            self._run_local(Path(folder), size)

    # -- a throwaway installation --

    def _run_local(self, folder: Path, size: int) -> None:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "REDIS_URL", "LIAISON_KEYRING", "LIAISON_KEYRING_FILE"}
        }
        env.update(
            {
                "LIAISON_VAR_DIR": str(folder),
                "LIAISON_ATTACHMENT_DIR": str(folder / "attachments"),
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "LIAISON_LOG_LEVEL": "WARNING",
                "TMPDIR": str(folder),
            }
        )
        env.pop("LIAISON_ENV", None)
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        this = [sys.executable, "-m", "bench", "attachments"]
        self.stdout.write("Preparing a throwaway installation (SQLite, fresh keyring)…")
        subprocess.run(
            [*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=settings.BASE_DIR
        )
        prepared = subprocess.run(
            [*this, "--prepare"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            cwd=settings.BASE_DIR,
        )
        world = json.loads(prepared.stdout.strip().splitlines()[-1])
        port, server, log = start_daphne(folder, env)
        try:
            self._wait_for(port, server)
            self._run(f"http://127.0.0.1:{port}", world["session"], world["room"], server.pid, size)
            self.stdout.write(
                "\nThe same through the ASGI application alone, in a fresh process (the body fed "
                "in 64 KiB messages as a streaming server would, no daphne buffering):"
            )
            alone = subprocess.run(
                [
                    *this,
                    "--in-process",
                    "--session",
                    world["session"],
                    "--room",
                    str(world["room"]),
                    "--size-mib",
                    str(size // MIB),
                ],
                env=env,
                capture_output=True,
                text=True,
                cwd=settings.BASE_DIR,
            )
            self.stdout.write(alone.stdout.rstrip())
            if alone.returncode:
                raise CommandError(f"the in-process run failed:\n{alone.stderr[-3000:]}")
            shutil.rmtree(folder / "attachments", ignore_errors=True)
        except CommandError:
            log.flush()
            tail = (folder / "daphne.log").read_text(errors="replace")[-3000:]
            self.stderr.write(f"--- end of the server log ---\n{tail}")
            raise
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()

    def _wait_for(self, port: int, server: subprocess.Popen) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise CommandError("daphne exited before it was ready.")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise CommandError("daphne did not start within 30 s.")

    def _prepare(self) -> None:
        """In the throwaway installation: one exercise, one room, one signed-in member."""
        from django.contrib.sessions.backends.db import SessionStore
        from django.utils import timezone
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from liaison.models import (
            Agency,
            Exercise,
            ExerciseStatus,
            GroupRole,
            Membership,
            Role,
            Room,
            User,
        )

        agency = Agency.objects.create(code="bench", name="Benchmark Agency", country="GB")
        user = User.objects.create_user(
            email="bench@example.invalid",
            password=secrets.token_urlsafe(24),
            display_name="Benchmark Officer",
            agency=agency,
            role=Role.OFFICER,
        )
        now = timezone.now()
        exercise = Exercise.objects.create(
            code="CFE-BENCH",
            title="Benchmark",
            created_by=user,
            starts_at=now - dt.timedelta(hours=1),
            ends_at=now + dt.timedelta(days=1),
            status=ExerciseStatus.ACTIVE,
        )
        room = Room.objects.create(exercise=exercise, name="general", title="General")
        Membership.objects.create(exercise=exercise, user=user, role=GroupRole.MEMBER)
        device = TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = next(  # the backend that loads users, not the lockout
            path for path in settings.AUTHENTICATION_BACKENDS if "axes" not in path
        )
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.create()
        from liaison.services import sessions

        sessions.start_session(user=user, session_key=session.session_key, ip="127.0.0.1")
        self.stdout.write(json.dumps({"session": session.session_key, "room": room.pk}))

    # -- the measurement --

    def _connection(self, url: str) -> http.client.HTTPConnection:
        parts = urlsplit(url)
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        return connection_class(parts.hostname, parts.port, timeout=600)

    def _upload(self, url: str, room: int, cookies: str, csrf: str, file: GeneratedFile) -> dict:
        length, body = _multipart(file)
        connection = self._connection(url)
        try:
            connection.request(
                "POST",
                f"/api/v1/rooms/{room}/attachments",
                body=body,
                headers={
                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                    "Content-Length": str(length),
                    "Cookie": cookies,
                    "X-CSRFToken": csrf,
                    "Referer": url + "/",
                },
            )
            response = connection.getresponse()
            answer = response.read()
        finally:
            connection.close()
        if response.status != 201:
            raise CommandError(f"upload answered {response.status}: {answer[:300]!r}")
        attachment = json.loads(answer)["attachment"]
        if attachment["sha256"] != file.sha256:
            raise CommandError("the server recorded a different SHA-256 than was sent")
        return attachment

    def _download(self, url: str, attachment: dict, cookies: str) -> tuple[int, str]:
        connection = self._connection(url)
        digest, received = hashlib.sha256(), 0
        try:
            connection.request("GET", attachment["download_url"], headers={"Cookie": cookies})
            response = connection.getresponse()
            if response.status != 200:
                raise CommandError(f"download answered {response.status}: {response.read(300)!r}")
            while piece := response.read(BLOCK):
                digest.update(piece)
                received += len(piece)
        finally:
            connection.close()
        return received, digest.hexdigest()

    def _run(self, url: str, session: str, room: int, pid: int | None, size: int) -> None:
        csrf = secrets.token_hex(16)
        cookies = f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={csrf}"
        self.stdout.write(
            f"Server {url} (pid {pid or 'unknown'}); file {size / MIB:.0f} MiB "
            f"({size / MB:.1f} MB); memory goal: growth under {MEMORY_GOAL_MIB} MiB"
        )
        # Warm up first (imports, URL resolver, database connection, key cache), so the
        # measurement shows what a large file costs rather than what a first request costs.
        warm_up = GeneratedFile(2 * MIB)
        self._download(url, self._upload(url, room, cookies, csrf, warm_up), cookies)

        file = GeneratedFile(size)
        with PeakRss(pid) as upload_memory:
            started = time.perf_counter()
            attachment = self._upload(url, room, cookies, csrf, file)
            upload_seconds = time.perf_counter() - started

        with PeakRss(pid) as download_memory:
            started = time.perf_counter()
            received, digest = self._download(url, attachment, cookies)
            download_seconds = time.perf_counter() - started
        intact = received == size and digest == file.sha256

        self.stdout.write(f"upload     {_rate(size, upload_seconds)}")
        self.stdout.write(f"download   {_rate(size, download_seconds)}   bytes identical: {intact}")
        for label, memory in (("upload", upload_memory), ("download", download_memory)):
            growth = memory.growth_mib
            if growth is None:
                self.stdout.write(f"{label:10} server memory growth: not measured (give --pid)")
                continue
            verdict = (
                self.style.SUCCESS("PASS") if growth < MEMORY_GOAL_MIB else self.style.ERROR("FAIL")
            )
            self.stdout.write(
                f"{label:10} server peak memory growth {growth:7.1f} MiB "
                f"(baseline RSS {memory.baseline_kib / 1024:.1f} MiB; {memory.method}) {verdict}"
            )
        if not intact:
            raise CommandError("the downloaded bytes differ from the uploaded ones")

    # -- the application alone --

    async def _in_process(self, session: str, room: int, size: int) -> None:
        """Drive the ASGI application directly, so the figures show what the application
        itself holds, apart from the server in front of it."""
        from config.asgi import application

        pid = os.getpid()
        csrf = secrets.token_hex(16)
        cookies = f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={csrf}"
        common = [(b"cookie", cookies.encode()), (b"host", b"127.0.0.1")]

        async def call(method: str, path: str, headers: list, body: Iterator[bytes]) -> Any:
            status: dict[str, Any] = {"digest": hashlib.sha256(), "received": 0, "body": b""}
            pending = iter(body)
            finished = False

            async def receive() -> dict[str, Any]:
                nonlocal finished
                if finished:  # the client stays connected until the response is complete
                    await asyncio.Event().wait()
                piece = next(pending, None)
                if piece is None:
                    finished = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                return {"type": "http.request", "body": piece, "more_body": True}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status["status"] = message["status"]
                elif message["type"] == "http.response.body":
                    piece = message.get("body", b"")
                    status["digest"].update(piece)
                    status["received"] += len(piece)
                    if status["status"] != 200 and len(status["body"]) < 1000:
                        status["body"] += piece

            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": method,
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"",
                "root_path": "",
                "headers": [*common, *headers],
                "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 80),
            }
            await application(scope, receive, send)
            return status

        def split(pieces: Iterator[bytes]) -> Iterator[bytes]:
            for piece in pieces:
                for start in range(0, len(piece), 64 * 1024):
                    yield piece[start : start + 64 * 1024]

        async def upload(file: GeneratedFile) -> dict[str, Any]:
            length, body = _multipart(file)
            headers = [
                (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
                (b"content-length", str(length).encode()),
                (b"x-csrftoken", csrf.encode()),
            ]
            answer = await call("POST", f"/api/v1/rooms/{room}/attachments", headers, split(body))
            if answer["status"] != 201:
                raise CommandError(f"upload answered {answer['status']}: {answer['body']!r}")
            return answer

        warm_up = GeneratedFile(2 * MIB)
        await upload(warm_up)
        file = GeneratedFile(size)
        with PeakRss(pid) as upload_memory:
            started = time.perf_counter()
            await upload(file)
            upload_seconds = time.perf_counter() - started
        from liaison.models import Attachment

        latest = await asyncio.to_thread(lambda: Attachment.objects.order_by("-pk").first().pk)
        with PeakRss(pid) as download_memory:
            started = time.perf_counter()
            answer = await call("GET", f"/api/v1/attachments/{latest}", [], iter(()))
            download_seconds = time.perf_counter() - started
        intact = answer["received"] == size and answer["digest"].hexdigest() == file.sha256
        self.stdout.write(f"upload     {_rate(size, upload_seconds)}")
        self.stdout.write(f"download   {_rate(size, download_seconds)}   bytes identical: {intact}")
        for label, memory in (("upload", upload_memory), ("download", download_memory)):
            growth = memory.growth_mib or 0.0
            verdict = "PASS" if growth < MEMORY_GOAL_MIB else "FAIL"
            self.stdout.write(
                f"{label:10} application peak memory growth {growth:7.1f} MiB "
                f"(baseline RSS {memory.baseline_kib / 1024:.1f} MiB) {verdict}"
            )
