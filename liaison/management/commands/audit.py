"""Signed checkpoints and exports of the audit log.

    manage.py audit checkpoint [--if-changed] [--every SECONDS --count N]
    manage.py audit export --exercise CODE --out DIR
    manage.py audit verify-export DIR --public-key KEY
    manage.py audit public-key [--pem]
    manage.py audit generate-key

Schedule checkpoints with cron (every 5 minutes)::

    */5 * * * * cd /srv/liaison && .venv/bin/python manage.py audit checkpoint --if-changed

or the systemd timer in docs/deploy/liaison-audit-checkpoint.timer.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from liaison import audit_checkpoints, audit_signing
from liaison.errors import Invalid


class Command(BaseCommand):
    help = "Signed audit checkpoints, signed exports and their verification."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

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

    def handle(self, *args, **options) -> None:
        action = options["action"]
        try:
            if action == "checkpoint":
                self.checkpoint(options)
            elif action == "export":
                self.export(options)
            elif action == "verify-export":
                self.verify_export(options)
            elif action == "public-key":
                self.stdout.write(
                    audit_signing.public_key_pem().strip()
                    if options["pem"]
                    else audit_signing.public_key_b64()
                )
            elif action == "generate-key":
                self.stdout.write(audit_signing.new_private_key_text().strip())
        except audit_signing.SigningKeyError as exc:
            raise CommandError(str(exc)) from None

    def checkpoint(self, options: dict) -> None:
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
        written = audit_checkpoints.write_checkpoint(if_changed=if_changed)
        if written is None:
            self.stdout.write("unchanged since the latest checkpoint; nothing written")
            return
        self.stdout.write(
            f"checkpoint {written.name}: audit seq {written.audit_seq} "
            f"hash {written.audit_hash}, {len(written.rooms)} room(s)"
        )

    def export(self, options: dict) -> None:
        from liaison.services.auditing import export_exercise_to_directory

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
        self.stdout.write(f"public key: {audit_signing.public_key_b64()}")

    def verify_export(self, options: dict) -> None:
        from liaison.verify_export import KeyProblem, load_public_key, verify_export

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
