"""Jobs for the worker's own tests: one that can be held mid-way (to kill its worker there) and
writes down each start and each finish in a file."""

from __future__ import annotations

import time
from pathlib import Path

from django_tasks import task


@task()
def held_job(journal: str) -> str:
    """Append "start", wait while ``<journal>.hold`` exists, append "done"."""
    path = Path(journal)
    with path.open("a") as handle:
        handle.write("start\n")
    hold = Path(journal + ".hold")
    deadline = time.monotonic() + 30
    while hold.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with path.open("a") as handle:
        handle.write("done\n")
    return "done"
