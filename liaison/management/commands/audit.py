"""The audit log's command: verification, signed checkpoints, signed exports, the signing key.

    manage.py audit verify [--exercise CODE] [--json] [--public-key KEY] [--no-checkpoints]
    manage.py audit checkpoint [--if-changed] [--every SECONDS --count N]
    manage.py audit export --exercise CODE --out DIR
    manage.py audit verify-export DIR --public-key KEY
    manage.py audit public-key [--pem]
    manage.py audit generate-key

Schedule checkpoints with cron (every 5 minutes)::

    */5 * * * * cd /srv/liaison && .venv/bin/python manage.py audit checkpoint --if-changed

or the systemd timer in docs/deploy/liaison-audit-checkpoint.timer. ``manage.py verify_audit``
is the same as ``audit verify``.
"""

from __future__ import annotations

import json
import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from liaison.audit import checkpoints, signing
from liaison.errors import Invalid

VERIFY_HELP = (
    "Walk the audit chain and the rooms' message chains, compare them with the signed "
    "checkpoints, and report the first broken seq of each chain. Exit status 1 on a break."
)


def add_verify_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--exercise", metavar="CODE", help="verify only this exercise's rooms")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--public-key",
        metavar="KEY",
        help="check checkpoints against this public key (base64, PEM or a file) instead "
        "of the configured signing key's",
    )
    parser.add_argument(
        "--no-checkpoints", action="store_true", help="check the chains only (not advised)"
    )


def run_verify(command: BaseCommand, options: dict[str, Any]) -> None:
    """``audit verify`` and ``verify_audit``: print the report; a break exits with status 1."""
    from liaison.audit.offline_verifier import KeyProblem, load_public_key
    from liaison.audit.verify import verify
    from liaison.models import Exercise

    exercise = None
    if options["exercise"]:
        exercise = Exercise.objects.filter(code=options["exercise"]).first()
        if exercise is None:
            raise CommandError(f"There is no exercise {options['exercise']!r}.")
    public_key = None
    if options["public_key"]:
        try:
            public_key = load_public_key(options["public_key"])
        except KeyProblem as exc:
            raise CommandError(f"Unusable public key: {exc}.") from None
    try:
        report = verify(
            exercise=exercise,
            public_key=public_key,
            checkpoints=not options["no_checkpoints"],
        )
    except signing.SigningKeyError as exc:
        raise CommandError(f"{exc} (or pass --public-key)") from None
    out = command.stdout
    if options["json"]:
        out.write(json.dumps(report.as_dict(), indent=2))
    else:
        out.write(report.summary())
        for item in report.breaks:
            where = f"room {item.room}" if item.chain == "room" else item.chain
            out.write(f"  {where}: first broken seq {item.seq}: {item.reason}: {item.detail}")
        for warning in report.warnings:
            out.write(f"  warning: {warning}")
        out.write(f"  ({report.elapsed_seconds:.2f} s)")
    if not report.ok:
        first = report.first_break
        assert first is not None
        raise CommandError(
            f"audit integrity broken at seq {first.seq} ({first.chain}"
            f"{' ' + first.room if first.room else ''}): {first.reason}",
            returncode=1,
        )


class Command(BaseCommand):
    help = "Audit log verification, signed checkpoints, signed exports and the signing key."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        verify_chains = commands.add_parser("verify", help=VERIFY_HELP)
        add_verify_arguments(verify_chains)

        checkpoint = commands.add_parser(
            "checkpoint", help="sign the current chain heads and store them outside the database"
        )
        checkpoint.add_argument(
            "--if-changed",
            action="store_true",
            help="write nothing when no chain moved since the latest checkpoint",
        )
        checkpoint.add_argument(
            "--every",
            type=float,
            metavar="SECONDS",
            help="keep writing checkpoints at this interval (changed heads only)",
        )
        checkpoint.add_argument(
            "--count",
            type=int,
            default=None,
            metavar="N",
            help="with --every: stop after N rounds (default: run until interrupted)",
        )

        export = commands.add_parser("export", help="write a signed export of an exercise")
        export.add_argument("--exercise", required=True, metavar="CODE")
        export.add_argument("--out", required=True, metavar="DIR", help="an empty or new directory")

        verify = commands.add_parser("verify-export", help="check a signed export offline")
        verify.add_argument("directory", metavar="DIR")
        verify.add_argument(
            "--public-key", required=True, metavar="KEY", help="base64, PEM, or a file holding it"
        )

        public = commands.add_parser("public-key", help="print the audit signing public key")
        public.add_argument("--pem", action="store_true", help="PEM instead of base64")

        commands.add_parser(
            "generate-key",
            help="print a new private signing key (for LIAISON_AUDIT_SIGNING_KEY_FILE)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "verify":
                run_verify(self, options)
            elif action == "checkpoint":
                self.checkpoint(options)
            elif action == "export":
                self.export(options)
            elif action == "verify-export":
                self.verify_export(options)
            elif action == "public-key":
                self.stdout.write(
                    signing.public_key_pem().strip() if options["pem"] else signing.public_key_b64()
                )
            elif action == "generate-key":
                self.stdout.write(signing.new_private_key_text().strip())
        except signing.SigningKeyError as exc:
            raise CommandError(str(exc)) from None

    def checkpoint(self, options: dict[str, Any]) -> None:
        every, count = options["every"], options["count"]
        if every is None:
            if count is not None:
                raise CommandError("--count only makes sense with --every.")
            self._write_one(if_changed=options["if_changed"])
            return
        if every <= 0:
            raise CommandError("--every must be a positive number of seconds.")
        if count is not None and count <= 0:
            raise CommandError("--count must be a positive number.")
        rounds = 0
        try:
            while count is None or rounds < count:
                if rounds:
                    time.sleep(every)
                self._write_one(if_changed=True)
                rounds += 1
        except KeyboardInterrupt:
            self.stdout.write("stopped")

    def _write_one(self, *, if_changed: bool) -> None:
        written = checkpoints.write_checkpoint(if_changed=if_changed)
        if written is None:
            self.stdout.write("unchanged since the latest checkpoint; nothing written")
            return
        self.stdout.write(
            f"checkpoint {written.name}: audit seq {written.audit_seq} "
            f"hash {written.audit_hash}, {len(written.rooms)} room(s)"
        )

    def export(self, options: dict[str, Any]) -> None:
        from liaison.audit.workspace import export_exercise_to_directory

        try:
            result = export_exercise_to_directory(
                exercise_code=options["exercise"], out=options["out"]
            )
        except Invalid as exc:
            raise CommandError(exc.detail) from None
        self.stdout.write(
            f"exported {options['exercise']} to {options['out']}: {result.events} events, "
            f"{result.messages} messages in {result.rooms} rooms; manifest SHA-256 "
            f"{result.manifest_sha256}"
        )
        self.stdout.write(f"public key: {signing.public_key_b64()}")

    def verify_export(self, options: dict[str, Any]) -> None:
        from liaison.audit.offline_verifier import KeyProblem, load_public_key, verify_export

        try:
            key = load_public_key(options["public_key"])
        except KeyProblem as exc:
            raise CommandError(f"Unusable public key: {exc}.") from None
        check = verify_export(options["directory"], key)
        for note in check.notes:
            self.stdout.write(f"note: {note}")
        if not check.ok:
            for problem in check.problems:
                self.stdout.write(f"FAILED: {problem}")
            raise CommandError("the export does not verify", returncode=1)
        self.stdout.write(
            f"OK: export of {check.exercise} verified: signature valid, {check.events} events "
            f"and {check.messages} messages in {check.rooms} rooms intact."
        )
