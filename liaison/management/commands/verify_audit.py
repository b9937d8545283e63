"""Verify the audit chain, every room's message chain and the signed checkpoints."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from liaison import audit_signing, audit_verify
from liaison.models import Exercise


class Command(BaseCommand):
    help = (
        "Walk the audit chain and the rooms' message chains, compare them with the signed "
        "checkpoints, and report the first broken seq of each chain. Exit status 1 on a break."
    )

    def add_arguments(self, parser: CommandParser) -> None:
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

    def handle(self, *args, **options) -> None:
        exercise = None
        if options["exercise"]:
            exercise = Exercise.objects.filter(code=options["exercise"]).first()
            if exercise is None:
                raise CommandError(f"There is no exercise {options['exercise']!r}.")
        public_key = None
        if options["public_key"]:
            from liaison.verify_export import KeyProblem, load_public_key

            try:
                public_key = load_public_key(options["public_key"])
            except KeyProblem as exc:
                raise CommandError(f"Unusable public key: {exc}.") from None
        try:
            report = audit_verify.verify(
                exercise=exercise,
                public_key=public_key,
                checkpoints=not options["no_checkpoints"],
            )
        except audit_signing.SigningKeyError as exc:
            raise CommandError(f"{exc} (or pass --public-key)") from None
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self.stdout.write(report.summary())
            for item in report.breaks:
                where = f"room {item.room}" if item.chain == "room" else item.chain
                self.stdout.write(
                    f"  {where}: first broken seq {item.seq}: {item.reason}: {item.detail}"
                )
            for warning in report.warnings:
                self.stdout.write(f"  warning: {warning}")
            self.stdout.write(f"  ({report.elapsed_seconds:.2f} s)")
        if not report.ok:
            first = report.first_break
            assert first is not None
            raise CommandError(
                f"audit integrity broken at seq {first.seq} ({first.chain}"
                f"{' ' + first.room if first.room else ''}): {first.reason}",
                returncode=1,
            )
