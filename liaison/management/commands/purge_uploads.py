"""Purge uploads never attached to a message (run daily, e.g. from cron)."""

from __future__ import annotations

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from liaison.services.attachments import purge_unsent


class Command(BaseCommand):
    help = (
        "Delete uploads that were never sent in a message within --older-than hours (their "
        "encrypted blobs go; the row stays, marked purged, with an audit event), and sweep "
        "orphaned blobs from the attachment store."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            default=24.0,
            metavar="HOURS",
            help="age in hours after which an unsent upload is purged (default 24)",
        )
        parser.add_argument("--json", action="store_true", help="print machine-readable JSON")

    def handle(self, *args, **options) -> None:
        hours = options["older_than"]
        if not hours > 0:
            raise CommandError("--older-than must be a positive number of hours.")
        result = purge_unsent(older_than=dt.timedelta(hours=hours))
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "older_than_hours": hours,
                        "purged": result.purged,
                        "bytes_freed": result.bytes_freed,
                        "orphans_removed": len(result.orphans_removed),
                    }
                )
            )
            return
        self.stdout.write(
            f"Purged {len(result.purged)} unsent upload(s) older than {hours:g} h "
            f"({result.bytes_freed:,} bytes); removed {len(result.orphans_removed)} orphaned "
            "blob(s)."
        )
