"""One pass of the scheduler, for cron: moves exercises by their dates (draft → active → closed
→ archived → shredded), signs an audit checkpoint, purges unsent uploads and prunes bookkeeping,
each when it is due; and queues again the jobs of workers that died.

    * * * * * cd /srv/liaison && .venv/bin/python manage.py tick

Safe beside running workers and beside another tick: each periodic run is claimed once, and
each exercise moves once (docs/architecture.md, "Background jobs").
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from liaison.services import jobs


class Command(BaseCommand):
    help = "Run the periodic jobs that are due (all of them with --all), once, here and now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="run every periodic job now, due or not"
        )
        parser.add_argument("--json", action="store_true", help="print machine-readable JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        report = jobs.tick(force=options["all"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, default=str))
            return
        if report.recovered:
            self.stdout.write(f"Queued again {len(report.recovered)} job(s) of stopped workers.")
        if not report.ran:
            self.stdout.write("Nothing was due.")
        for name, outcome in report.ran.items():
            self.stdout.write(f"{name}: {json.dumps(outcome, default=str, sort_keys=True)}")
