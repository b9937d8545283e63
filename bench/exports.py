"""Benchmark an auditor's signed export made by a job: an exercise of 100,000 messages, exported by
a job worker into an encrypted file, with the worker's peak memory printed.

Goal (issue 18): the export of an exercise with 100,000 messages completes with the worker's
peak memory under 256 MiB. Runs in a throwaway installation (a temporary folder: SQLite, a fresh
keyring and signing key, its own attachment and export stores), in three processes: one lays
the exercise down and asks for the export, ``manage.py jobs --batch`` (the worker measured)
makes it, and a third downloads it (decrypting as it streams) and checks its signature with the
offline verifier.

    python -m bench exports [--messages 100000] [--rooms 4]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from bench.memory import PeakRss

GOAL_MIB = 256
MIB = 1024 * 1024
BODIES = [
    "Container {c} loaded at Felixstowe berth 7, declared as mixed plastic scrap (HS 391590), "
    "21,400 kg.",
    "南沙海关已收到 {c} 的预报，将于周五 10:00 在查验区开箱查验。",
    "Seal number on {c} does not match the manifest: please confirm before the vessel sails.",
    "Lab result for the sample from {c}: contamination above 0.5 %, consistent with household "
    "waste. Recommend refusal of entry and return to the port of loading.",
]


class Command(BaseCommand):
    help = "Export an exercise of 100,000 messages through a job worker and print its peak memory."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--messages", type=int, default=100_000, help="messages in all")
        parser.add_argument("--rooms", type=int, default=4, help="rooms they are spread over")
        # The steps run in the throwaway installation's own processes.
        parser.add_argument("--prepare", action="store_true", help=argparse_hidden())
        parser.add_argument("--check", type=int, default=None, help=argparse_hidden())

    def handle(self, *args: Any, **options: Any) -> None:
        if options["prepare"]:
            self._prepare(options["messages"], options["rooms"])
            return
        if options["check"] is not None:
            self._check(options["check"])
            return
        if options["messages"] <= 0 or options["rooms"] <= 0:
            raise CommandError("--messages and --rooms must be positive.")
        with tempfile.TemporaryDirectory(prefix="liaison-bench-exports-") as folder:
            self._run(Path(folder), options["messages"], options["rooms"])

    # -- the run, from the outside ------------------------------------------------------------

    def _run(self, folder: Path, messages: int, rooms: int) -> None:
        env = {
            key: value
            for key, value in os.environ.items()
            if key
            not in {
                "DATABASE_URL",
                "REDIS_URL",
                "LIAISON_KEYRING",
                "LIAISON_KEYRING_FILE",
                "LIAISON_AUDIT_SIGNING_KEY_FILE",
                "LIAISON_ENV",
            }
        }
        env.update(
            {
                "LIAISON_VAR_DIR": str(folder),
                "LIAISON_ATTACHMENT_DIR": str(folder / "attachments"),
                "LIAISON_EXPORT_DIR": str(folder / "exports"),
                "LIAISON_CHECKPOINT_DIR": str(folder / "checkpoints"),
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DJANGO_DEBUG": "false",
                "LIAISON_LOG_LEVEL": "WARNING",
                "TMPDIR": str(folder),
            }
        )
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        this = [sys.executable, "-m", "bench", "exports"]

        def run(command: list[str]) -> str:
            done = subprocess.run(
                command, env=env, cwd=settings.BASE_DIR, capture_output=True, text=True
            )
            if done.returncode:
                raise CommandError(f"{' '.join(command[1:3])} failed:\n{done.stderr[-3000:]}")
            return done.stdout

        self.stdout.write("A throwaway installation (SQLite, fresh keyring)…")
        run([*manage, "migrate", "--noinput", "-v", "0"])
        started = time.perf_counter()
        prepared = json.loads(
            run([*this, "--prepare", "--messages", str(messages), "--rooms", str(rooms)])
            .strip()
            .splitlines()[-1]
        )
        self.stdout.write(
            f"Laid down {prepared['messages']:,} messages in {rooms} rooms and asked for the "
            f"export ({time.perf_counter() - started:.1f} s)."
        )

        started = time.perf_counter()
        worker = subprocess.Popen(
            [*manage, "jobs", "--batch", "--no-schedule", "--queue", "exports", "-v", "0"],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        with PeakRss(worker.pid, interval=0.05) as sampled:
            _pid, status, usage = os.wait4(worker.pid, 0)
        elapsed = time.perf_counter() - started
        worker.returncode = os.waitstatus_to_exitcode(status)
        if worker.returncode:
            error = worker.stderr.read().decode(errors="replace") if worker.stderr else ""
            raise CommandError(f"the job worker failed:\n{error[-3000:]}")
        if worker.stderr:
            worker.stderr.close()
        peak_mib = usage.ru_maxrss / 1024  # Linux reports KiB
        checked = json.loads(
            run([*this, "--check", str(prepared["export"])]).strip().splitlines()[-1]
        )

        self.stdout.write(
            f"Job worker (manage.py jobs --batch): export made in {elapsed:.1f} s, "
            f"{checked['messages']:,} messages, {checked['events']:,} audit events; "
            f"zip {checked['size'] / MIB:.1f} MiB, stored encrypted "
            f"({checked['stored'] / MIB:.1f} MiB on disk)."
        )
        sampled_mib = max(sampled.sampled_kib, sampled.hwm_kib or 0) / 1024
        self.stdout.write(
            f"Peak memory of the worker process: {peak_mib:.0f} MiB resident (the whole process "
            f"from start to exit, ru_maxrss; sampled: {sampled_mib:.0f} MiB)."
        )
        self.stdout.write(
            f"Download (decrypted as it streams) and offline verification: "
            f"{'signature and chains verify' if checked['ok'] else 'FAILED: ' + checked['problems']}"
            f" ({checked['seconds']:.1f} s)."
        )
        verdict = "met" if peak_mib < GOAL_MIB and checked["ok"] else "NOT met"
        self.stdout.write(f"Goal: worker peak under {GOAL_MIB} MiB for the export: {verdict}.")

    # -- inside the throwaway installation ---------------------------------------------------------

    def _prepare(self, messages: int, rooms: int) -> None:
        """Lay down a closed exercise with ``messages`` sealed, chained messages and ask for its
        export as an auditor; prints ``{"export": id, "messages": n}``."""
        from django.db import transaction
        from django.utils import timezone

        from liaison import audit
        from liaison.crypto import records
        from liaison.models import (
            Agency,
            Exercise,
            ExerciseStatus,
            GroupRole,
            Membership,
            Message,
            Role,
            Room,
            User,
        )
        from liaison.services import exports

        hmrc = Agency.objects.create(code="hmrc", name="HM Revenue & Customs", country="GB")
        gacc = Agency.objects.create(
            code="gacc-gz", name="GACC Guangzhou Customs", country="CN", time_zone="Asia/Shanghai"
        )
        admin = User.objects.create_user(
            "admin@bench.example", None, display_name="Bench Admin", role=Role.ADMIN, agency=hmrc
        )
        auditor = User.objects.create_user(
            "auditor@bench.example", None, display_name="Bench Auditor", role=Role.AUDITOR
        )
        officers = [
            User.objects.create_user(
                f"officer{n}@bench.example",
                None,
                display_name=f"Officer {n}",
                agency=hmrc if n % 2 else gacc,
            )
            for n in range(6)
        ]
        start = timezone.now() - dt.timedelta(days=60)
        exercise = Exercise.objects.create(
            code="CFE-BENCH-EXPORT",
            title="Export benchmark",
            starts_at=start,
            ends_at=start + dt.timedelta(days=30),
            closed_at=start + dt.timedelta(days=30),
            status=ExerciseStatus.CLOSED,
            created_by=admin,
        )
        exercise.agencies.set([hmrc, gacc])
        for officer in officers:
            Membership.objects.create(exercise=exercise, user=officer, role=GroupRole.MEMBER)
        per_room = -(-messages // rooms)
        made = 0
        for number in range(rooms):
            room = Room.objects.create(exercise=exercise, name=f"lane-{number}", created_by=admin)
            head, rows = room.chain_head, []
            count = min(per_room, messages - made)
            for seq in range(1, count + 1):
                sender = officers[(seq + number) % len(officers)]
                container = f"MSCU{(number * per_room + seq) % 10_000_000:07d}"
                body = BODIES[seq % len(BODIES)].format(c=container)
                sealed = records.seal_message_body(
                    room_id=room.pk, seq=seq, sender_id=sender.pk, body=body
                )
                created_at = start + dt.timedelta(seconds=seq * 20)
                link = audit.message_link_hash(
                    prev_hash=head,
                    room_id=room.pk,
                    seq=seq,
                    sender_id=sender.pk,
                    created_at=created_at,
                    kind="text",
                    key_version=sealed.key_version,
                    nonce=sealed.nonce,
                    ciphertext=sealed.ciphertext,
                )
                rows.append(
                    Message(
                        room=room,
                        seq=seq,
                        sender=sender,
                        client_id=f"bench-{seq}",
                        kind="text",
                        key_version=sealed.key_version,
                        nonce=sealed.nonce,
                        ciphertext=sealed.ciphertext,
                        created_at=created_at,
                        prev_hash=head,
                        chain_hash=link,
                    )
                )
                head = link
                if len(rows) >= 2000:
                    Message.objects.bulk_create(rows)
                    rows = []
            Message.objects.bulk_create(rows)
            Room.objects.filter(pk=room.pk).update(last_seq=count, chain_head=head)
            made += count
        with transaction.atomic():
            export = exports.request_export(auditor=auditor, exercise_id=exercise.pk)
        self.stdout.write(json.dumps({"export": export.pk, "messages": made}))

    def _check(self, export_id: int) -> None:
        """Download the export as its auditor would and verify it offline; prints the figures."""
        from liaison.audit.offline_verifier import load_public_key, verify_export
        from liaison.audit.signing import public_key_b64
        from liaison.models import AuditExport
        from liaison.services import exports
        from liaison.storage import export_store

        export = AuditExport.objects.select_related("requested_by").get(pk=export_id)
        if export.status != "ready":
            raise CommandError(f"export {export_id} is {export.status}: {export.error}")
        started = time.perf_counter()
        download = exports.open_download(auditor=export.requested_by, export_id=export.pk)
        with tempfile.TemporaryDirectory() as folder:
            zipped = Path(folder) / export.file_name
            with zipped.open("wb") as handle:
                for piece in download.pieces:
                    handle.write(piece)
            with zipfile.ZipFile(zipped) as archive:
                archive.extractall(folder)
            (unpacked,) = [p for p in Path(folder).iterdir() if p.is_dir()]
            check = verify_export(unpacked, load_public_key(public_key_b64()))
        self.stdout.write(
            json.dumps(
                {
                    "ok": check.ok,
                    "problems": "; ".join(map(str, check.problems))[:500],
                    "messages": export.messages,
                    "events": export.events,
                    "size": export.size,
                    "stored": export_store().size(export.storage_name),
                    "seconds": time.perf_counter() - started,
                }
            )
        )


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS
