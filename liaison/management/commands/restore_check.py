"""Prove that a backup restores: ``manage.py restore_check BACKUP --identity FILE``.

Opens the backup with the operator's private key into a private scratch folder, restores the
database into a new scratch database on the same server (dropped afterwards unless ``--keep``),
and checks, in a separate process pointed at the restored copy only, that every message and
edit decrypts with the keyring, every attachment blob matches its recorded SHA-256, and the
audit chain verifies against its signed checkpoints. Exit status 0 only when all of it holds;
otherwise every failing record is named.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from liaison.services import backups


class Command(BaseCommand):
    help = "Restore a backup into scratch space and prove messages, attachments and audit chain."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backup", nargs="?", metavar="BACKUP", help="the backup file")
        parser.add_argument(
            "--identity",
            metavar="FILE",
            help="the operator's private identity file (default: LIAISON_BACKUP_IDENTITY_FILE)",
        )
        parser.add_argument(
            "--audit-public-key",
            metavar="KEY",
            default="",
            help="check the checkpoints' signatures with this audit public key (base64 or PEM) "
            "instead of the configured signing key's",
        )
        parser.add_argument(
            "--keep",
            action="store_true",
            help="keep the scratch database and the unpacked files (for inspection, or to "
            "recover from: docs/operations.md)",
        )
        parser.add_argument(
            "--work-dir", metavar="DIR", help="where the backup is unpacked (owner-only)"
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        # Internal: the child process that runs the proof against the restored copy.
        parser.add_argument("--verify-restored", action="store_true", help="(internal)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["verify_restored"]:
            report = backups.verify_restored(
                audit_public_key=os.environ.get("LIAISON_RESTORE_CHECK_PUBLIC_KEY", "")
            )
            self.stdout.write(json.dumps(report.as_dict()))
            if not report.ok:
                sys.exit(1)
            return
        if not options["backup"]:
            raise CommandError("Name the backup file to check.")
        identity_file = options["identity"] or os.environ.get("LIAISON_BACKUP_IDENTITY_FILE")
        if not identity_file:
            raise CommandError("Give the operator's private key: --identity FILE.")
        try:
            report = backups.restore_check(
                source=Path(options["backup"]),
                identity=backups.load_identity(identity_file),
                audit_public_key=options["audit_public_key"],
                keep=options["keep"],
                work_dir=options["work_dir"] or os.environ.get("LIAISON_BACKUP_WORK_DIR") or None,
            )
        except backups.BackupError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
        else:
            self._describe(report)
        if not report.ok:
            raise CommandError(
                f"restore-check FAILED: {len(report.problems)} problem(s); first: "
                f"{report.problems[0]}"
            )

    def _describe(self, report: backups.RestoreReport) -> None:
        write = self.stdout.write
        write(f"Backup {report.backup} ({report.database}, made {report.created_at}):")
        if report.migrations_applied:
            write(f"  {report.migrations_applied} migration(s) applied to the restored copy")
        write(f"  messages decrypted: {report.messages}, edits: {report.revisions}")
        write(
            f"  attachments matching their SHA-256: {report.attachments} "
            f"(thumbnails {report.thumbnails}; purged {report.purged})"
        )
        if report.shredded:
            write(f"  crypto-shredded records skipped: {report.shredded}")
        write(f"  audit: {report.audit_summary}")
        if report.scratch_database:
            write(f"  scratch database kept: {report.scratch_database}")
        if report.unpacked:
            write(f"  unpacked files kept (owner-only): {report.unpacked}")
        for problem in report.problems:
            write(f"  PROBLEM: {problem}")
        if report.ok:
            write(self.style.SUCCESS("restore-check passed"))
