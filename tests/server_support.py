"""A real daphne for tests that watch the server process itself: its temporary files (each one
counted, all of them in an empty folder of the test's own) and its resident memory.

``watched_server`` is like ``asgi_server`` in ``conftest.py`` and adds what those tests need:
the process id, the folder, and two counters shared with the child (``anonymous``: unnamed
temporary files, such as a body spool; ``named``: files with a name, such as Django's upload
files). Use it in a test module with ``watched_server = server_support.watched_server``.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

from tests.conftest import _child_setup, _get_asgi_application


def _watch_temporary_files(folder: str, anonymous: Any, named: Any) -> None:
    """In the server process: temporary files go to ``folder``, and each one is counted."""
    tempfile.tempdir = folder
    make_anonymous, make_named = tempfile.TemporaryFile, tempfile._mkstemp_inner

    def temporary_file(*args: Any, **kwargs: Any) -> Any:
        with anonymous.get_lock():
            anonymous.value += 1
        return make_anonymous(*args, **kwargs)

    def mkstemp_inner(*args: Any, **kwargs: Any) -> Any:
        with named.get_lock():
            named.value += 1
        return make_named(*args, **kwargs)

    tempfile.TemporaryFile = temporary_file
    tempfile._mkstemp_inner = mkstemp_inner


def _server_setup(folder: str, anonymous: Any, named: Any) -> None:
    _child_setup()
    _watch_temporary_files(folder, anonymous, named)


@dataclass
class WatchedServer:
    host: str
    port: int
    pid: int
    folder: Path
    anonymous: Any
    named: Any

    def connect(self, timeout: float = 5.0) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def open_files(self) -> list[Path]:
        """The server's open files in its temporary folder (deleted or not)."""
        found = []
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith(str(self.folder)):
                found.append(fd)
        return found

    def status_kib(self, field: str) -> int:
        """A ``kB`` field of the server's ``/proc/<pid>/status`` (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise LookupError(field)

    def reset_peak_memory(self) -> int:
        """Start measuring peak memory afresh (Linux: VmHWM after ``clear_refs``); the current
        resident size in KiB, the baseline of ``peak_growth_mib``."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        return self.status_kib("VmRSS")

    def peak_growth_mib(self, baseline_kib: int) -> float:
        return max(0, self.status_kib("VmHWM") - baseline_kib) / 1024


@pytest.fixture
def watched_server(transactional_db: None, tmp_path: Path) -> Iterator[WatchedServer]:
    """A real daphne like ``asgi_server``, with its temporary files watched."""
    from daphne.testing import DaphneProcess

    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.fail("the server needs a file-based test database")
    folder = tmp_path / "server-tmp"
    folder.mkdir()
    anonymous, named = multiprocessing.Value("i", 0), multiprocessing.Value("i", 0)
    connections.close_all()
    process = DaphneProcess(
        "127.0.0.1",
        _get_asgi_application,
        setup=functools.partial(_server_setup, str(folder), anonymous, named),
    )
    process.start()
    if not process.ready.wait(20):
        process.terminate()
        pytest.fail("daphne did not start")
    try:
        yield WatchedServer("127.0.0.1", process.port.value, process.pid, folder, anonymous, named)
    finally:
        process.terminate()
        process.join(10)
        connections.close_all()
