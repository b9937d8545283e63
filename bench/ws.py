"""Benchmark the room WebSocket end to end: real daphne, real sessions, the full stack.

N rooms x M sockets (one signed-in officer each); messages are sent at a fixed rate, spread
over every socket, for a bounded time. Each message must reach the M sockets of its room
(the sender's included). Prints delivered/expected, loss, and latency from send to delivery
(p50/p95/p99), plus the time to the sender's ack. Works with the in-memory layer (one server)
and, when REDIS_URL is set, with Redis (``--servers`` > 1 spreads the sockets over several
daphne processes, so deliveries cross processes). Loopback only; every loop is bounded.

It writes a throwaway exercise, its rooms and officers into the configured database (the audit
log keeps them, as it keeps everything); it refuses to run in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.utils import timezone

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Stats:
    sent_at: dict[int, float] = field(default_factory=dict)
    acked_at: dict[int, float] = field(default_factory=dict)
    deliveries: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    ack_latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    closed: dict[str, int] = field(default_factory=dict)
    delivered: int = 0
    expected: int = 0
    all_delivered: asyncio.Event = field(default_factory=asyncio.Event)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Command(BaseCommand):
    help = "WebSocket fan-out benchmark: rooms x sockets at a fixed message rate (prints loss and latency)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rooms", type=int, default=10)
        parser.add_argument("--sockets", type=int, default=10, help="sockets per room")
        parser.add_argument("--rate", type=float, default=200.0, help="messages per second")
        parser.add_argument("--duration", type=float, default=20.0, help="seconds of sending")
        parser.add_argument("--drain", type=float, default=10.0, help="max seconds to wait after")
        parser.add_argument("--servers", type=int, default=1, help="daphne processes to start")
        parser.add_argument(
            "--url", default="", help="target a running server (ws://127.0.0.1:8000) instead"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("bench ws writes benchmark data; it does not run in production.")
        rooms, per_room = options["rooms"], options["sockets"]
        rate, duration = options["rate"], options["duration"]
        if not (1 <= rooms <= 100 and 1 <= per_room <= 100 and 0 < rate <= 5000):
            raise CommandError("Use 1-100 rooms, 1-100 sockets per room, a rate of 0-5000/s.")
        if not 0 < duration <= 600 or not 0 <= options["drain"] <= 120:
            raise CommandError("Use a duration of at most 600 s and a drain of at most 120 s.")
        servers = options["servers"]
        if servers > 1 and not settings.REDIS_URL:
            raise CommandError(
                "--servers > 1 needs REDIS_URL (the in-memory layer is per process)."
            )
        if options["url"]:
            parts = urlsplit(options["url"])
            if parts.scheme not in {"ws", "wss"} or parts.hostname not in LOOPBACK:
                raise CommandError("--url must be a ws:// address on the loopback interface.")
            targets = [f"{parts.scheme}://{parts.netloc}"]
        else:
            targets = []

        layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
        database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        self.stdout.write(
            f"bench ws: {rooms} rooms x {per_room} sockets, {rate:g} msg/s for {duration:g} s; "
            f"layer={layer} database={database} servers={len(targets) or servers}"
        )
        world = self.build_world(rooms, per_room)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            if not targets:
                for _ in range(servers):
                    url, process = self.start_server()
                    processes.append(process)
                    targets.append(url)
            connections.close_all()
            stats = asyncio.run(
                self.run_load(world, targets, rate=rate, duration=duration, drain=options["drain"])
            )
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.report(stats, per_room=per_room, duration=duration)

    # --- the world ---------------------------------------------------------------------------

    def build_world(self, rooms: int, per_room: int) -> list[tuple[int, list[str]]]:
        """A fresh active exercise with ``rooms`` rooms of ``per_room`` signed-in officers each;
        returns (room id, session keys) per room."""
        from django.contrib.auth import login
        from django.http import HttpRequest
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from liaison.models import Agency, Role, User
        from liaison.services import exercises, memberships, sessions

        run = secrets.token_hex(3)
        agency, _ = Agency.objects.get_or_create(
            code="bench", defaults={"name": "Benchmark Agency", "country": "GB"}
        )
        admin = User.objects.create_user(
            f"bench-admin-{run}@bench.invalid", None, display_name="Bench Admin", role=Role.ADMIN
        )
        now = timezone.now()
        exercise = exercises.create_exercise(
            actor=admin,
            code=f"BENCH-WS-{run.upper()}",
            title="WebSocket benchmark",
            agencies=[agency],
            starts_at=now - dt.timedelta(hours=1),
            ends_at=now + dt.timedelta(days=1),
        )
        room_list = list(exercise.rooms.all())
        for index in range(len(room_list), rooms):
            room_list.append(exercises.add_room(actor=admin, exercise=exercise, name=f"r{index}"))
        exercise = exercises.activate_exercise(actor=admin, exercise=exercise)
        world = []
        for room_index, room in enumerate(room_list[:rooms]):
            keys = []
            for seat in range(per_room):
                user = User.objects.create_user(
                    f"bench-{run}-{room_index}-{seat}@bench.invalid",
                    None,
                    display_name=f"Bench {room_index}.{seat}",
                    agency=agency,
                )
                memberships.add_member(actor=admin, exercise=exercise, user=user)
                device = TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
                request = HttpRequest()
                request.META["REMOTE_ADDR"] = "127.0.0.1"
                request.session = sessions.session_store()
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                request.session[DEVICE_ID_SESSION_KEY] = device.persistent_id
                request.session.save()
                keys.append(request.session.session_key)
            world.append((room.pk, keys))
        self.stdout.write(f"  world: exercise {exercise.code}, {rooms * per_room} officers")
        return world

    def start_server(self) -> tuple[str, subprocess.Popen[bytes]]:
        port = free_port()
        limit = str(settings.LIAISON_WS_MAX_FRAME_BYTES)
        env = {
            **os.environ,
            # One benchmark officer may send faster than a person; the limit is not measured here.
            "LIAISON_WS_RATE_PER_10S": "100000",
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "--websocket-max-message-size",
                limit,
                "--websocket-max-frame-size",
                limit,
                "config.asgi:application",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise CommandError(f"daphne exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    return f"ws://127.0.0.1:{port}", process
            except OSError:
                time.sleep(0.2)
        process.terminate()
        raise CommandError("daphne did not start within 60 s")

    # --- the load ------------------------------------------------------------------------------

    async def run_load(
        self,
        world: list[tuple[int, list[str]]],
        targets: list[str],
        *,
        rate: float,
        duration: float,
        drain: float,
    ) -> Stats:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        stats = Stats()
        self.send_seconds = 0.0
        self.started = time.perf_counter()
        cookie_name = settings.SESSION_COOKIE_NAME
        sockets: list[Any] = []
        index = 0
        for room_id, keys in world:
            for key in keys:
                target = targets[index % len(targets)]
                index += 1
                origin = target.replace("ws://", "http://").replace("wss://", "https://")
                sockets.append(
                    await connect(
                        f"{target}/ws/rooms/{room_id}/",
                        additional_headers={"Cookie": f"{cookie_name}={key}"},
                        origin=origin,
                        open_timeout=30,
                        max_queue=None,
                    )
                )
        per_room = len(world[0][1])

        async def listen(ws: Any) -> None:
            try:
                async for text in ws:
                    now = time.perf_counter()
                    frame = json.loads(text)
                    kind = frame["type"]
                    if kind == "message.new":
                        number = int(frame["message"]["body"][2:])
                        stats.deliveries[number] = stats.deliveries.get(number, 0) + 1
                        stats.latencies.append(now - stats.sent_at[number])
                        stats.delivered += 1
                        if stats.delivered >= stats.expected:
                            stats.all_delivered.set()
                    elif kind == "message.ack":
                        number = int(frame["client_id"][1:])
                        stats.acked_at[number] = now
                        stats.ack_latencies.append(now - stats.sent_at[number])
                    elif kind == "error":
                        stats.errors[frame["code"]] = stats.errors.get(frame["code"], 0) + 1
            except ConnectionClosed as closed:
                code = str(closed.rcvd.code if closed.rcvd else "dropped")
                stats.closed[code] = stats.closed.get(code, 0) + 1

        listeners = [asyncio.create_task(listen(ws)) for ws in sockets]
        await asyncio.sleep(1)  # let the presence broadcasts of the joins settle

        total = int(rate * duration)
        stats.expected = total * per_room
        started = self.started = time.perf_counter()
        for number in range(total):
            delay = started + number / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            ws = sockets[number % len(sockets)]
            stats.sent_at[number] = time.perf_counter()
            try:
                await ws.send(
                    json.dumps(
                        {"type": "message.send", "client_id": f"b{number}", "body": f"b:{number}"}
                    )
                )
            except ConnectionClosed:
                stats.errors["send_on_closed"] = stats.errors.get("send_on_closed", 0) + 1
        self.send_seconds = time.perf_counter() - started

        # What has not arrived when the drain time is up counts as lost.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stats.all_delivered.wait(), drain)
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*listeners, return_exceptions=True)
        return stats

    def report(self, stats: Stats, *, per_room: int, duration: float) -> None:
        sent = len(stats.sent_at)
        expected = sent * per_room
        delivered = sum(stats.deliveries.values())
        loss = 100.0 * (expected - delivered) / expected if expected else 0.0
        acked = len(stats.acked_at)
        # Loss proper: a stored (acknowledged) message that did not reach every socket.
        expected_acked = acked * per_room
        delivered_acked = sum(min(stats.deliveries.get(n, 0), per_room) for n in stats.acked_at)
        lost = expected_acked - delivered_acked
        ack_span = max(stats.acked_at.values(), default=self.started) - self.started

        def ms(values: list[float], fraction: float) -> str:
            return f"{1000 * percentile(values, fraction):.0f}"

        self.stdout.write(
            f"  sent {sent} in {self.send_seconds:.1f} s ({sent / self.send_seconds:.0f}/s); "
            f"acked {acked}, the server stored {acked / max(ack_span, 1e-9):.0f} msg/s"
        )
        if acked < sent:
            self.stdout.write(
                f"  {sent - acked} messages not yet answered when the drain time ran out "
                "(the server fell behind the offered rate)"
            )
        self.stdout.write(
            f"  delivered {delivered}/{expected} ({loss:.2f} % missing); of acknowledged "
            f"messages {delivered_acked}/{expected_acked} delivered, "
            f"loss {100.0 * lost / max(expected_acked, 1):.2f} %"
        )
        self.stdout.write(
            f"  latency send->delivery p50 {ms(stats.latencies, 0.5)} ms, "
            f"p95 {ms(stats.latencies, 0.95)} ms, p99 {ms(stats.latencies, 0.99)} ms; "
            f"ack p50 {ms(stats.ack_latencies, 0.5)} ms, p99 {ms(stats.ack_latencies, 0.99)} ms"
        )
        if stats.errors or stats.closed:
            self.stdout.write(f"  errors {stats.errors} closes {stats.closed}")
