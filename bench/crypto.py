"""Benchmark encryption at rest: record and streamed-file throughput against raw AES-GCM.

Targets (issue 3): the 50 MiB stream stays under 64 MiB of peak RSS growth and reaches at least
25 % of the raw single-shot AES-GCM speed of ``cryptography`` on the same machine. Prints its
figures and PASS/FAIL; it is not a test. Runs against a throwaway room that it removes again.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import itertools
import os
import secrets
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import cryptography
from cryptography.hazmat.backends.openssl.backend import backend as openssl_backend
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from bench.memory import PeakRss
from liaison import crypto
from liaison.crypto import records
from liaison.crypto.aead import associated_data
from liaison.crypto.streaming import DEFAULT_CHUNK_SIZE
from liaison.models import Exercise, ExerciseStatus, Role, Room, RoomKey, User

MB = 1_000_000
MIB = 1024 * 1024
RATIO_TARGET = 0.25
RSS_TARGET_MIB = 64


def _best(rounds: int, run: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


class Command(BaseCommand):
    help = "Benchmark record and streamed-file encryption against raw AES-GCM (prints MB/s)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--size-mib", type=int, default=50, help="streamed file size")
        parser.add_argument("--records", type=int, default=5000, help="1 KiB records per round")
        parser.add_argument("--rounds", type=int, default=5, help="timed rounds (best is kept)")
        parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)

    def handle(self, *args: Any, **options: Any) -> None:
        rounds = max(1, options["rounds"])
        room, cleanup = self._throwaway_room()
        try:
            self.stdout.write(
                f"Liaison crypto benchmark: cryptography {cryptography.__version__}, "
                f"{openssl_backend.openssl_version_text()}, database "
                f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}; "
                f"1 MB = 10^6 bytes; best of {rounds} rounds."
            )
            self._records(room, options["records"], rounds)
            self._stream(room, options["size_mib"] * MIB, options["chunk_size"], rounds)
        finally:
            cleanup()
            crypto.reset_keyring_cache()

    # --- fixtures ------------------------------------------------------------------------------

    def _throwaway_room(self) -> tuple[Room, Callable[[], None]]:
        tag = secrets.token_hex(4)
        user = User.objects.create(
            email=f"bench-{tag}@bench.invalid", display_name="Crypto benchmark", role=Role.ADMIN
        )
        now = timezone.now()
        exercise = Exercise.objects.create(
            code=f"BENCH-{tag}",
            title="Crypto benchmark (throwaway)",
            starts_at=now,
            ends_at=now + dt.timedelta(hours=1),
            status=ExerciseStatus.DRAFT,
            created_by=user,
        )
        room = Room.objects.create(exercise=exercise, name="bench", title="Benchmark")

        def cleanup() -> None:
            RoomKey.objects.filter(room=room).delete()
            room.delete()
            exercise.delete()
            user.delete()

        return room, cleanup

    def _line(self, label: str, seconds: float, nbytes: int, extra: str = "") -> float:
        rate = nbytes / seconds / MB
        self.stdout.write(f"  {label:<46} {rate:>9.1f} MB/s{extra}")
        return rate

    def _verdict(self, ok: bool) -> str:
        return self.style.SUCCESS("PASS") if ok else self.style.ERROR("FAIL")

    # --- records -------------------------------------------------------------------------------

    def _records(self, room: Room, count: int, rounds: int) -> None:
        plaintext = os.urandom(1024)
        total = count * len(plaintext)
        self.stdout.write(f"Records: {count} x 1 KiB per round")
        sealed: list[crypto.Sealed] = []

        def seal() -> None:
            sealed.clear()
            for seq in range(count):
                sealed.append(
                    crypto.encrypt(
                        room, plaintext, kind=records.MESSAGE, identity={"seq": seq, "sender": 1}
                    )
                )

        def open_all() -> None:
            for seq, item in enumerate(sealed):
                crypto.decrypt(
                    room,
                    key_version=item.key_version,
                    nonce=item.nonce,
                    ciphertext=item.ciphertext,
                    kind=records.MESSAGE,
                    identity={"seq": seq, "sender": 1},
                )

        version, key = crypto.active_key(room)
        aead = AESGCM(key)

        def core() -> None:
            for seq in range(count):
                aad = associated_data(room.pk, version, records.MESSAGE, {"seq": seq, "sender": 1})
                aead.encrypt(os.urandom(12), plaintext, aad)

        nonce = os.urandom(12)

        def raw() -> None:
            for _ in range(count):
                aead.encrypt(nonce, plaintext, None)

        seal()  # warm: the room's first data key is created and cached
        per = " ({:,.0f} records/s)"
        t = _best(rounds, seal)
        self._line("crypto.encrypt (one key-version query + AEAD)", t, total, per.format(count / t))
        t = _best(rounds, open_all)
        self._line("crypto.decrypt", t, total, per.format(count / t))
        t = _best(rounds, core)
        self._line("AES-GCM with bound associated data", t, total, per.format(count / t))
        t = _best(rounds, raw)
        self._line("raw AESGCM.encrypt, 1 KiB, no AAD", t, total, per.format(count / t))

    # --- streamed files ------------------------------------------------------------------------

    def _stream(self, room: Room, size: int, chunk_size: int, rounds: int) -> None:
        version, key = crypto.active_key(room)
        context = records.stream_context(
            records.ATTACHMENT_BLOB, room_id=room.pk, key_version=version, storage_name="bench"
        )
        block = os.urandom(MIB)
        pieces = [block[i : i + chunk_size] for i in range(0, MIB, chunk_size)]

        def source() -> Iterator[bytes]:
            """``size`` bytes in upload-sized pieces, generated on the fly from a 1 MiB block."""
            remaining = size
            for piece in itertools.cycle(pieces):
                if remaining <= 0:
                    return
                piece = piece[:remaining] if remaining < len(piece) else piece
                remaining -= len(piece)
                yield piece

        self.stdout.write(
            f"Files: {size / MIB:.0f} MiB streamed in {chunk_size // 1024} KiB chunks "
            "(through a temporary file)"
        )
        with tempfile.TemporaryFile(dir=tempfile.gettempdir()) as sink:

            def encrypt() -> str:
                sink.seek(0)
                sink.truncate()
                result = crypto.encrypt_stream(
                    key, source(), sink.write, context=context, chunk_size=chunk_size
                )
                sink.flush()
                return result.sha256

            def decrypt() -> str:
                sink.seek(0)
                digest = hashlib.sha256()
                for chunk in crypto.decrypt_stream(key, sink, context=context):
                    digest.update(chunk)
                return digest.hexdigest()

            def push() -> None:
                sink.seek(0)
                sink.truncate()
                encryptor = crypto.StreamEncryptor(key, context=context, chunk_size=chunk_size)
                for piece in source():
                    sink.write(encryptor.update(piece))
                sink.write(encryptor.finalize())
                sink.flush()

            # First pass: memory, and the round trip checked (not timed).
            tracemalloc.start()
            with PeakRss(interval=0.002) as watch:
                expected = encrypt()
                got = decrypt()
            _, traced_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            if got != expected:
                self.stdout.write(self.style.ERROR("  round trip FAILED: plaintext differs"))
            stored = sink.seek(0, os.SEEK_END)

            # Timed passes, interleaved with the raw baseline so that a machine busy with other
            # work slows both sides alike; the best of each is kept.
            gc.collect()
            whole = block * (size // MIB) + block[: size % MIB]
            nonce = os.urandom(12)
            aead = AESGCM(key)
            sealed = aead.encrypt(nonce, whole, None)
            runs: dict[str, Callable[[], Any]] = {
                "raw_enc": lambda: aead.encrypt(nonce, whole, None),
                "stream_enc": encrypt,
                "stream_dec": decrypt,
                "raw_dec": lambda: aead.decrypt(nonce, sealed, None),
                "sha256": lambda: hashlib.sha256(whole).digest(),
                "push": push,
            }
            best = dict.fromkeys(runs, float("inf"))
            for _ in range(rounds):
                for name, run in runs.items():
                    best[name] = min(best[name], _best(1, run))

        mib = f"{size / MIB:.0f} MiB"
        stream_enc = self._line("encrypt_stream (with its SHA-256)", best["stream_enc"], size)
        stream_dec = self._line("decrypt_stream (+ consumer's SHA-256)", best["stream_dec"], size)
        self._line("StreamEncryptor (upload handler path)", best["push"], size)
        raw_enc = self._line(f"raw AESGCM.encrypt, single shot {mib}", best["raw_enc"], size)
        raw_dec = self._line(f"raw AESGCM.decrypt, single shot {mib}", best["raw_dec"], size)
        self._line(f"raw hashlib.sha256, single shot {mib}", best["sha256"], size)
        self.stdout.write(
            f"  stored size {stored:,} bytes (+{stored - size:,}: header and 16-byte tag per chunk)"
        )
        for label, ratio in (
            ("encrypt_stream / raw encrypt", stream_enc / raw_enc),
            ("decrypt_stream / raw decrypt", stream_dec / raw_dec),
        ):
            self.stdout.write(
                f"  {label:<46} {ratio:>9.0%}       target >= {RATIO_TARGET:.0%}   "
                f"{self._verdict(ratio >= RATIO_TARGET)}"
            )
        growth = watch.growth_mib
        self.stdout.write(
            f"  {f'peak RSS growth, {mib} encrypt + decrypt':<46} {growth:>9.1f} MiB      "
            f"target < {RSS_TARGET_MIB} MiB {self._verdict(growth < RSS_TARGET_MIB)}"
            f"  ({watch.method})"
        )
        self.stdout.write(
            f"  {'tracemalloc peak (Python allocations)':<46} {traced_peak / MIB:>9.1f} MiB"
        )
