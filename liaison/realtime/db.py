"""The one seam between the sockets' event loop and the database.

Channels' ``database_sync_to_async`` runs every call of a process on one thread, which capped a
worker at about 40 messages a second and let one slow room stall every other. Here calls run on
a bounded pool of threads, each with its own (pooled or persistent) connection, so sends and
reads of different rooms proceed side by side; per-room order is kept by the room's row lock.

Events published by a call are collected on the thread and sent by the caller on the event
loop (``events.send_pending``) after it has answered its client: a database thread never waits
for the loop, so a stopping loop cannot hang it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, connection, connections

from liaison import events

T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None
_started: list[int] = []  # the threads the current pool has started (their idents)
_waiting = 0
_idle: asyncio.Event | None = None

# How long shutdown lets a thread still busy with a call hold up the others' goodbyes.
CLOSE_TIMEOUT_SECONDS = 5.0


def threads() -> int:
    """SQLite has one writer at a time: more threads would only wait on its lock."""
    if connection.vendor == "sqlite":
        return 1
    return max(1, int(settings.LIAISON_REALTIME_DB_THREADS))


def _executor() -> ThreadPoolExecutor:
    global _pool, _started
    if _pool is None:
        _started = []
        _pool = ThreadPoolExecutor(
            max_workers=threads(),
            thread_name_prefix="liaison-db",
            initializer=functools.partial(_thread_started, _started),
        )
    return _pool


def _thread_started(started: list[int]) -> None:
    started.append(threading.get_ident())


def waiting() -> int:
    """Calls submitted and not yet finished (the backpressure signal)."""
    return _waiting


def _run(func: Callable[..., T], kwargs: dict[str, Any]) -> tuple[Any, events.Pending, Any]:
    _close_if_spoiled()
    try:
        with events.deferred_publishing() as pending:
            try:
                return func(**kwargs), pending, None
            except Exception as error:  # re-raised on the loop, after what committed is sent
                return None, pending, error
    finally:
        _close_if_spoiled()


def _close_if_spoiled() -> None:
    """A thread keeps its connection from call to call until it is too old or a call saw a
    database error (or left a transaction open).

    Django's ``close_old_connections`` after every request also arms its health check, a
    ``SELECT 1`` before the next query: one more round trip than a whole socket frame's work.
    Here it runs only when something went wrong, and then checks at once.
    """
    if connection.connection is None:
        return
    close_at = connection.close_at
    if close_at is not None and time.monotonic() >= close_at:
        connection.close()
    elif connection.errors_occurred or not connection.get_autocommit():
        close_old_connections()


async def call(func: Callable[..., T], /, **kwargs: Any) -> T:
    """Run ``func(**kwargs)`` on a database thread and publish what it committed."""
    result, pending, error = await call_quietly(func, **kwargs)
    await events.send_pending(pending)
    if error is not None:
        raise error
    return result


async def call_quietly(
    func: Callable[..., T], /, **kwargs: Any
) -> tuple[T, events.Pending, Exception | None]:
    """Like ``call`` but hands back the events instead of sending them, for a caller that must
    answer its client first (an ack goes out before the broadcast)."""
    global _waiting
    loop = asyncio.get_running_loop()
    _waiting += 1
    try:
        # The caller's context goes along: the socket's active language, for error details.
        context = contextvars.copy_context()
        return await loop.run_in_executor(
            _executor(), context.run, functools.partial(_run, func, kwargs)
        )
    finally:
        _waiting -= 1
        if _waiting == 0 and _idle is not None:
            _idle.set()


async def wait_idle() -> None:
    """Until no call is in flight (a clean stop lets commits finish; bound it with a timeout)."""
    global _idle
    if _waiting:
        _idle = asyncio.Event()
        await _idle.wait()


def shutdown(*, wait: bool = True) -> None:
    """Let running calls finish (a clean stop), close every thread's connection and release
    the threads.

    A connection belongs to its thread, so each thread must close its own: without this they
    stayed open until the process died, which PostgreSQL logs as a reset connection and which
    stops a test database from being dropped.
    """
    global _pool
    pool, _pool = _pool, None
    if pool is None:
        return
    started = len(_started)
    if started:
        barrier = threading.Barrier(started, timeout=CLOSE_TIMEOUT_SECONDS)
        for _ in range(started):
            pool.submit(_close_connections, barrier)
    pool.shutdown(wait=wait, cancel_futures=False)


def _close_connections(barrier: threading.Barrier) -> None:
    """One per thread: the barrier holds each thread that took one until every thread has,
    so no thread takes two while another keeps its connection."""
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    connections.close_all()


def _forget_after_fork() -> None:
    """A forked server process (tests start daphne so) inherits the pool object, not its
    threads: start afresh."""
    global _pool, _started, _waiting, _idle
    _pool, _started, _waiting, _idle = None, [], 0, None


os.register_at_fork(after_in_child=_forget_after_fork)
