"""The job worker: runs queued jobs (auditor exports, ...) and the periodic ones (the exercises'
lifecycle, audit checkpoints, upload purge, bookkeeping pruning).

    manage.py jobs                      # work until SIGTERM / Ctrl-C (make run starts one)
    manage.py jobs --batch              # run what is queued, then exit (cron, tests)
    manage.py jobs --queue exports      # only the export queue (a worker of its own)

Run as many as the load needs, on any machines: each job runs once, and a job whose worker was
killed is run again by another (docs/architecture.md, "Background jobs").
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from liaison.services import jobs


class Command(BaseCommand):
    help = "Run background jobs: queued ones and the periodic ones when they are due."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queue",
            default=",".join(jobs.ALL_QUEUES),
            help="queues to take jobs from, comma-separated, or * (default: %(default)s)",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=1.0,
            help="seconds to wait when the queue is empty (default: %(default)s)",
        )
        parser.add_argument(
            "--batch", action="store_true", help="run what is queued now, then exit"
        )
        parser.add_argument(
            "--max-jobs", type=int, default=None, help="exit after running this many jobs"
        )
        parser.add_argument(
            "--no-schedule",
            action="store_true",
            help="do not queue the periodic jobs (another worker or cron does)",
        )
        parser.add_argument("--worker-id", default=None, help="unique name (default: generated)")

    def handle(self, *args: Any, **options: Any) -> None:
        queues = tuple(name.strip() for name in options["queue"].split(",") if name.strip())
        unknown = set(queues) - {*jobs.ALL_QUEUES, "*"}
        if not queues or unknown:
            raise CommandError(
                f"Unknown queue(s) {', '.join(sorted(unknown)) or '(none)'}; "
                f"choose from {', '.join(jobs.ALL_QUEUES)} or *."
            )
        if options["interval"] < 0 or (options["max_jobs"] is not None and options["max_jobs"] < 1):
            raise CommandError("--interval must be >= 0 and --max-jobs >= 1.")
        if options["verbosity"] > 1:
            logging.getLogger("liaison.services.jobs").setLevel(logging.DEBUG)
        worker = jobs.Worker(
            queues=queues,
            interval=options["interval"],
            batch=options["batch"],
            max_tasks=options["max_jobs"],
            schedule=not options["no_schedule"],
            worker_id=options["worker_id"],
        )
        worker.install_signals()
        if options["verbosity"]:
            self.stdout.write(f"Job worker {worker.worker_id} on queues {', '.join(queues)}.")
        try:
            done = worker.run()
        finally:
            worker.restore_signals()
        if options["verbosity"]:
            self.stdout.write(f"Job worker {worker.worker_id} stopped after {done} job(s).")
