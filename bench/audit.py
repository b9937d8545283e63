"""Benchmark the audit log: append rate and verification speed over a large chain.

Runs in a throwaway database next to the configured one (PostgreSQL: a database named
``<name>_bench_audit`` on the same server, created and dropped here, so the role needs CREATEDB;
SQLite: a temporary file), with checkpoints in a temporary directory. The real audit log and
checkpoint store are never touched: the append-only triggers forbid cleaning up after a run, so
the only clean-up is dropping the whole throwaway database.

    python -m bench audit [--events 100000] [--messages 10000] [--appends 2000] [--threads 4]
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, connections, transaction
from django.test.utils import override_settings
from django.utils import timezone

GOAL_SECONDS = 10.0
ACTIONS = ["message.sent", "message.sent", "message.sent", "auth.login", "audit.viewed"]


class Command(BaseCommand):
    help = "Measure audit appends (events/s) and verify_audit over a large chain, in a throwaway database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--events", type=int, default=100_000, help="chained events to lay down"
        )
        parser.add_argument(
            "--messages", type=int, default=10_000, help="messages in one room's chain"
        )
        parser.add_argument("--appends", type=int, default=2_000, help="record() calls to time")
        parser.add_argument(
            "--threads", type=int, default=1, help="concurrent appenders (PostgreSQL)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        for name in ("events", "appends"):
            if options[name] <= 0:
                raise CommandError(f"--{name} must be positive.")
        if options["messages"] < 0 or options["threads"] <= 0:
            raise CommandError("--messages must not be negative and --threads must be positive.")
        if connection.vendor == "sqlite" and options["threads"] > 1:
            raise CommandError("SQLite has a single writer; use --threads 1 (or PostgreSQL).")
        workdir = tempfile.mkdtemp(prefix="liaison-bench-audit-")
        original_name = connection.settings_dict["NAME"]
        test_settings = connection.settings_dict.setdefault("TEST", {})
        saved_test_name = test_settings.get("NAME")
        test_settings["NAME"] = (
            os.path.join(workdir, "bench.sqlite3")
            if connection.vendor == "sqlite"
            else f"{original_name}_bench_audit"
        )
        storages = {
            **settings.STORAGES,
            "audit_checkpoints": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": os.path.join(workdir, "checkpoints")},
            },
        }
        self.stdout.write(
            f"bench audit on {connection.vendor} (throwaway database {test_settings['NAME']})"
        )
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        try:
            with override_settings(STORAGES=storages):
                self.run(options)
        finally:
            connections.close_all()
            connection.creation.destroy_test_db(original_name, verbosity=0)
            if saved_test_name is None:
                test_settings.pop("NAME", None)
            else:
                test_settings["NAME"] = saved_test_name
            shutil.rmtree(workdir, ignore_errors=True)

    def run(self, options: dict[str, Any]) -> None:
        from liaison import audit
        from liaison.audit import checkpoints as audit_checkpoints
        from liaison.audit import verify as audit_verify

        events, messages = options["events"], options["messages"]
        started = time.perf_counter()
        self.lay_down_events(events)
        room_id = self.lay_down_messages(messages) if messages else None
        setup = time.perf_counter() - started
        self.stdout.write(
            f"setup: {events:,} chained events and {messages:,} chained messages bulk-created "
            f"in {setup:.1f} s"
        )

        appends, threads = options["appends"], options["threads"]
        per_thread = appends // threads
        errors: list[BaseException] = []

        def append(worker: int) -> None:
            try:
                for number in range(per_thread):
                    with transaction.atomic():
                        audit.record(
                            actor=None,
                            actor_label="bench",
                            action="bench.append",
                            target=("room", room_id or 0),
                            ip="192.0.2.10",
                            worker=worker,
                            n=number,
                        )
            except BaseException as exc:
                errors.append(exc)
            finally:
                if threads > 1:
                    connections.close_all()

        started = time.perf_counter()
        if threads == 1:
            append(0)
        else:
            workers = [threading.Thread(target=append, args=(w,)) for w in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        elapsed = time.perf_counter() - started
        if errors:
            raise CommandError(f"appending failed: {errors[0]!r}")
        done = per_thread * threads
        self.stdout.write(
            f"append: {done:,} record() calls, each in its own transaction, {threads} "
            f"thread(s): {elapsed:.2f} s = {done / elapsed:,.0f} events/s "
            f"({elapsed / done * 1000:.2f} ms each)"
        )

        audit_checkpoints.write_checkpoint()
        started = time.perf_counter()
        chain_only = audit_verify.verify(checkpoints=False)
        chain_time = time.perf_counter() - started
        started = time.perf_counter()
        report = audit_verify.verify()
        full_time = time.perf_counter() - started
        if not report.ok or not chain_only.ok:
            raise CommandError(f"the benchmark chain does not verify: {report.summary()}")
        rate = report.events_checked / chain_time
        self.stdout.write(
            f"verify (audit chain only): {chain_only.events_checked:,} events in "
            f"{chain_time:.2f} s = {rate:,.0f} events/s"
        )
        verdict = "met" if full_time < GOAL_SECONDS else "MISSED"
        self.stdout.write(
            f"verify_audit (audit chain + {report.messages_checked:,} messages in "
            f"{report.rooms_checked} room(s) + {report.checkpoints_checked} signed checkpoint): "
            f"{full_time:.2f} s; goal < {GOAL_SECONDS:.0f} s for 100k events: {verdict}"
        )

    def lay_down_events(self, count: int) -> None:
        """Bulk insert a correctly chained log (inserts are allowed; only UPDATE/DELETE are not)."""
        from liaison.audit import GENESIS_HASH, compute_hash
        from liaison.models import AuditEvent

        previous = GENESIS_HASH
        start = timezone.now() - dt.timedelta(seconds=count)
        batch: list[AuditEvent] = []
        for seq in range(1, count + 1):
            event = AuditEvent(
                seq=seq,
                created_at=start + dt.timedelta(seconds=seq),
                actor_label=f"officer{seq % 50}@example.org",
                action=ACTIONS[seq % len(ACTIONS)],
                target_type="message",
                target_id=str(seq),
                ip=f"10.0.{seq % 250}.{seq % 200 + 1}",
                details={
                    "room": 1,
                    "seq": seq,
                    "kind": "text",
                    "reply_to": None,
                    "attachments": [],
                },
                prev_hash=previous,
            )
            event.hash = compute_hash(event)
            previous = event.hash
            batch.append(event)
            if len(batch) == 5000:
                AuditEvent.objects.bulk_create(batch)
                batch = []
        if batch:
            AuditEvent.objects.bulk_create(batch)

    def lay_down_messages(self, count: int) -> int:
        from liaison.audit import GENESIS_HASH, message_link_hash
        from liaison.models import Agency, Exercise, Message, Room, User

        agency = Agency.objects.create(code="bench", name="Bench agency", country="GB")
        user = User.objects.create(email="bench@example.org", display_name="Bench", agency=agency)
        now = timezone.now()
        exercise = Exercise.objects.create(
            code="CFE-BENCH",
            title="Bench",
            starts_at=now - dt.timedelta(days=1),
            ends_at=now + dt.timedelta(days=1),
            status="active",
            created_by=user,
        )
        room = Room.objects.create(exercise=exercise, name="general")
        previous = GENESIS_HASH
        start = now - dt.timedelta(seconds=count)
        batch: list[Message] = []
        for seq in range(1, count + 1):
            nonce, ciphertext = os.urandom(12), os.urandom(200)
            created_at = start + dt.timedelta(seconds=seq)
            link = message_link_hash(
                prev_hash=previous,
                room_id=room.pk,
                seq=seq,
                sender_id=user.pk,
                created_at=created_at,
                kind="text",
                key_version=1,
                nonce=nonce,
                ciphertext=ciphertext,
            )
            batch.append(
                Message(
                    room=room,
                    seq=seq,
                    sender=user,
                    client_id=f"bench-{seq}",
                    kind="text",
                    key_version=1,
                    nonce=nonce,
                    ciphertext=ciphertext,
                    created_at=created_at,
                    prev_hash=previous,
                    chain_hash=link,
                )
            )
            previous = link
            if len(batch) == 2000:
                Message.objects.bulk_create(batch)
                batch = []
        if batch:
            Message.objects.bulk_create(batch)
        Room.objects.filter(pk=room.pk).update(last_seq=count, chain_head=previous)
        return room.pk
