"""Write an encrypted backup: database snapshot, attachment store, signed audit checkpoints.

    manage.py backup --generate-key /offline/liaison-backup.identity   # once: the operator key
    manage.py backup --out /backups/                                    # to LIAISON_BACKUP_RECIPIENT
    manage.py restore_check /backups/liaison-….backup --identity /offline/liaison-backup.identity

The keyring and the audit signing key are never in a backup: keep them separately
(docs/operations.md).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from liaison.crypto.keyring import create_private_exclusive
from liaison.services import backups


class Command(BaseCommand):
    help = "Write an encrypted backup (database, attachments, audit checkpoints) to a file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--out",
            metavar="PATH",
            help="the backup file to create, or a folder to create a dated one in",
        )
        parser.add_argument(
            "--recipient",
            metavar="PUBLIC_KEY",
            help="the operator's base64 X25519 public key (default: LIAISON_BACKUP_RECIPIENT)",
        )
        parser.add_argument(
            "--no-checkpoint",
            action="store_true",
            help="do not sign a fresh audit checkpoint first",
        )
        parser.add_argument(
            "--work-dir",
            metavar="DIR",
            help="where the database snapshot waits (owner-only) while it is encrypted",
        )
        parser.add_argument(
            "--generate-key",
            metavar="IDENTITY_FILE",
            help="create an operator key pair: the private identity file, and print the public key",
        )
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["generate_key"]:
                self._generate(Path(options["generate_key"]), as_json=options["json"])
                return
            self._backup(options)
        except backups.BackupError as exc:
            raise CommandError(str(exc)) from None

    def _generate(self, path: Path, *, as_json: bool) -> None:
        if path.exists():
            raise CommandError(f"{path} already exists; choose a new file.")
        text, public = backups.new_identity()
        create_private_exclusive(path, text)
        if path.read_text() != text:
            raise CommandError(f"{path} was created by someone else meanwhile; choose a new file.")
        if as_json:
            self.stdout.write(json.dumps({"identity_file": str(path), "public_key": public}))
            return
        self.stdout.write(f"Private identity written to {path} (owner-only). Keep it offline.")
        self.stdout.write(f"Public key, for LIAISON_BACKUP_RECIPIENT:\n{public}")

    def _backup(self, options: dict[str, Any]) -> None:
        if not options["out"]:
            raise CommandError("Say where the backup goes: --out FILE or --out FOLDER.")
        recipient = (
            backups.parse_recipient(options["recipient"])
            if options["recipient"]
            else backups.configured_recipient()
        )
        out = Path(options["out"])
        if out.is_dir():
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
            out = out / f"liaison-{stamp}.backup"
        if out.exists():
            raise CommandError(f"{out} already exists; a backup never overwrites a file.")
        if not out.parent.is_dir():
            raise CommandError(f"The folder {out.parent} does not exist.")
        summary = backups.backup_to_file(
            path=out,
            recipient=recipient,
            checkpoint=not options["no_checkpoint"],
            work_dir=options["work_dir"] or os.environ.get("LIAISON_BACKUP_WORK_DIR") or None,
        )
        if options["json"]:
            self.stdout.write(json.dumps(asdict(summary)))
            return
        self.stdout.write(
            f"Backup written to {summary.path}: {summary.database} snapshot, "
            f"{summary.attachments} attachment blob(s) ({summary.attachment_bytes} bytes), "
            f"{summary.checkpoints} signed checkpoint(s), latest {summary.latest_checkpoint}; "
            f"{summary.encrypted_bytes} bytes encrypted."
        )
