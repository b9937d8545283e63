"""Run every benchmark in turn and print their figures (``make bench``).

Performance goals live here, not in timed tests: each benchmark prints its numbers and whether
the goal was met on this machine.
"""

from __future__ import annotations

import time

from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandParser

BENCHMARKS = ["bench_crypto", "bench_audit", "bench_ws", "bench_attachments"]


class Command(BaseCommand):
    help = "Run all benchmarks (crypto, audit chain, WebSocket fan-out, attachments)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run just these")

    def handle(self, *args, **options) -> None:
        available = get_commands()
        for name in options["only"] or BENCHMARKS:
            if name not in available:
                self.stdout.write(self.style.WARNING(f"== {name}: not available"))
                continue
            self.stdout.write(self.style.MIGRATE_HEADING(f"== {name}"))
            started = time.perf_counter()
            call_command(name, stdout=self.stdout, stderr=self.stderr)
            self.stdout.write(f"   ({name} took {time.perf_counter() - started:.1f} s)\n")
