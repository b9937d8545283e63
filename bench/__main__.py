"""Run the benchmarks and print their figures (``make bench``).

    python -m bench                      every benchmark in turn
    python -m bench --only crypto ...    just these, in turn
    python -m bench NAME [options]       one benchmark with its own options (NAME --help)

Performance goals live here, not in timed tests: each benchmark prints its numbers and whether
the goal was met on this machine.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

from django.core.management.base import BaseCommand

BENCHMARKS = {
    "crypto": "record and streamed-file encryption against raw AES-GCM",
    "audit": "audit appends and verification over a large chain",
    "loadtest": "the room WebSocket under load beside bare Channels (writes docs/benchmarks.md)",
    "attachments": "large upload and download through a real daphne server",
    "images": "20 parallel 7000 x 7000 PNG uploads through a real daphne server (peak memory)",
    "exchange": "reading and mirror-comparing 100,000 x 100,000 declarations (time, peak memory)",
    "exports": "an auditor's signed export of 100,000 messages made by a job (worker peak memory)",
}
PROG = "python -m bench"
# What a full run passes a benchmark instead of its defaults.
FULL_RUN_OPTIONS = {"loadtest": ["--suite"]}


def _command(name: str) -> BaseCommand:
    return importlib.import_module(f"bench.{name}").Command()


def run_all(argv: list[str]) -> None:
    """Every benchmark (or those named with ``--only``) with its default options."""
    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django.core.management.color import color_style

    parser = argparse.ArgumentParser(
        prog=PROG,
        usage=f"{PROG} [--only NAME ...] | {PROG} NAME [options] (NAME --help for them)",
        description="Run every benchmark with its default options, in turn.",
        epilog="NAME: " + "; ".join(f"{name}: {about}" for name, about in BENCHMARKS.items()),
    )
    parser.add_argument("--only", action="append", choices=list(BENCHMARKS), help="run just these")
    options = parser.parse_args(argv)
    style = color_style()
    try:
        for name in options.only or BENCHMARKS:
            sys.stdout.write(style.MIGRATE_HEADING(f"== {name}") + "\n")
            started = time.perf_counter()
            call_command(_command(name), *FULL_RUN_OPTIONS.get(name, []))
            sys.stdout.write(f"   ({name} took {time.perf_counter() - started:.1f} s)\n\n")
    except CommandError as error:
        sys.stderr.write(style.ERROR(f"{error.__class__.__name__}: {error}") + "\n")
        sys.exit(error.returncode)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    if argv and argv[0] in BENCHMARKS:
        _command(argv[0]).run_from_argv([PROG, *argv])
    else:
        run_all(argv)


if __name__ == "__main__":
    main()
