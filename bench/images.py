"""Benchmark image uploads through the real server: many large images at once, peak memory.

Goal (issue 13, defect 1): twenty 7000 × 7000 PNG uploads in parallel grow the server process by
less than 300 MB at its peak (three of them once took a worker from 127 MB to 1.83 GB). Two more
rounds show the other bounded paths: PNGs exactly at the thumbnail pixel limit (decoded, one at
a time) and 7000 × 7000 JPEGs (decoded at 1/8 scale for their preview). Prints, per round, the
time, the previews made and the growth (VmHWM after ``clear_refs``, cross-checked by sampling
VmRSS of the server process); it is not a test.

It builds the same throwaway installation as ``bench attachments`` (SQLite, fresh keyring, a
signed-in member, upload rate limits off) in a temporary folder and starts daphne on it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from bench import attachments
from bench.memory import PeakRss

MB = 1_000_000
MIB = 1024 * 1024
GOAL_MB = 300
BOUNDARY = "liaison-bench-images-3e1a"


def png_of(width: int, height: int) -> bytes:
    """A black RGB PNG built row by row (7000 × 7000 is about 150 KB; Pillow would need the
    whole 147 MB image in memory to write it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    compressor = zlib.compressobj()
    row = bytes(1 + 3 * width)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def jpeg_of(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), "olive").save(out, "JPEG", quality=70)
    return out.getvalue()


def _multipart(name: str, content_type: str, data: bytes) -> bytes:
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


@dataclass
class Round:
    label: str
    name: str
    content_type: str
    data: bytes
    previews: bool  # whether the server should make previews of these


class Command(attachments.Command):
    help = "Upload many large images at once through a real daphne server (peak memory)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=20, help="uploads at once (default 20)")
        parser.add_argument("--side", type=int, default=7000, help="image side (default 7000)")
        parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["prepare"]:
            self._prepare()
            return
        with tempfile.TemporaryDirectory(prefix="liaison-bench-") as folder:
            self._run_images(Path(folder), options["count"], options["side"])

    def _run_images(self, folder: Path, count: int, side: int) -> None:
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
                # One member uploads everything here: the per-user upload limits stay out of it.
                "LIAISON_RATE_UPLOAD": "0/60",
                "LIAISON_RATE_UPLOAD_BYTES": "0/86400",
            }
        )
        env.pop("LIAISON_ENV", None)
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        self.stdout.write("Preparing a throwaway installation (SQLite, fresh keyring)…")
        subprocess.run(
            [*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=settings.BASE_DIR
        )
        prepared = subprocess.run(
            [sys.executable, "-m", "bench", "images", "--prepare"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            cwd=settings.BASE_DIR,
        )
        world = json.loads(prepared.stdout.strip().splitlines()[-1])
        limit = settings.LIAISON_THUMBNAIL_MAX_PIXELS
        at_limit = int(limit**0.5)
        rounds = [
            Round(
                f"PNG {side} x {side}, over the preview limit (not decoded)",
                "hold-scan.png",
                "image/png",
                png_of(side, side),
                previews=side * side <= limit,
            ),
            Round(
                f"PNG {at_limit} x {at_limit}, at the preview limit (decoded one at a time)",
                "deck.png",
                "image/png",
                png_of(at_limit, at_limit),
                previews=True,
            ),
            Round(
                f"JPEG {side} x {side} (decoded at reduced scale)",
                "bale.jpg",
                "image/jpeg",
                jpeg_of(side, side),
                previews=True,
            ),
        ]
        port, server, log = attachments.start_daphne(folder, env)
        try:
            self._wait_for(port, server)
            url = f"http://127.0.0.1:{port}"
            self._measure(url, world["session"], world["room"], server.pid, count, rounds)
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

    def _post(self, url: str, room: int, cookies: str, csrf: str, body: bytes) -> dict:
        connection = self._connection(url)
        try:
            connection.request(
                "POST",
                f"/api/v1/rooms/{room}/attachments",
                body=body,
                headers={
                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
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
        return json.loads(answer)["attachment"]

    def _measure(
        self, url: str, session: str, room: int, pid: int, count: int, rounds: list[Round]
    ) -> None:
        csrf = "b" * 32
        cookies = f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={csrf}"
        self.stdout.write(
            f"Server {url} (pid {pid}); {count} uploads at once per round; "
            f"memory goal: peak growth under {GOAL_MB} MB"
        )
        # Warm up first (imports, URL resolver, database connection, key cache, Pillow).
        warm = _multipart("warm.png", "image/png", png_of(64, 64))
        self._post(url, room, cookies, csrf, warm)
        failed = []
        for round_ in rounds:
            bodies = [_multipart(round_.name, round_.content_type, round_.data)] * count
            with PeakRss(pid) as memory, ThreadPoolExecutor(max_workers=count) as pool:
                started = time.perf_counter()
                answers = list(
                    pool.map(lambda body: self._post(url, room, cookies, csrf, body), bodies)
                )
                seconds = time.perf_counter() - started
            previews = sum(1 for answer in answers if answer["has_thumbnail"])
            growth_mb = (memory.growth_mib or 0.0) * MIB / MB
            met = growth_mb < GOAL_MB and previews == (count if round_.previews else 0)
            verdict = self.style.SUCCESS("PASS") if met else self.style.ERROR("FAIL")
            self.stdout.write(
                f"{round_.label}: {len(round_.data) / 1024:,.0f} KiB each\n"
                f"    {count} uploads in {seconds:.2f} s, {previews} previews; server peak "
                f"memory growth {growth_mb:7.1f} MB (baseline RSS "
                f"{memory.baseline_kib / 1024:.1f} MiB; {memory.method}) {verdict}"
            )
            if not met:
                failed.append(round_.label)
        if failed:
            raise CommandError("over the memory goal or wrong previews: " + "; ".join(failed))
