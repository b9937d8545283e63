"""This process's open room sockets: what a clean stop closes, what the gauge counts, the one
task that keeps their presence rows fresh, and the watch over each socket's session deadline."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

from django.utils import timezone

from liaison import metrics
from liaison.realtime import admission, db, presence

logger = logging.getLogger(__name__)

OPEN_SOCKETS: weakref.WeakSet[Any] = weakref.WeakSet()
# Set by a clean stop: sockets then leave their presence rows to one statement for all
# (``presence.forget_worker``) instead of a database call each, so thousands close in time.
STOPPING = False
# The ASGI messages a socket's own handlers take, called without Channels' database hop.
WEBSOCKET_HANDLERS = frozenset({"websocket_connect", "websocket_receive", "websocket_disconnect"})


def opened(socket: Any) -> None:
    if socket not in OPEN_SOCKETS:
        OPEN_SOCKETS.add(socket)
        metrics.SOCKETS_OPEN.inc()
    keep_presence_fresh()


def closed(socket: Any) -> None:
    if socket in OPEN_SOCKETS:
        OPEN_SOCKETS.discard(socket)
        metrics.SOCKETS_OPEN.dec()


_refresher: asyncio.Task[None] | None = None


def keep_presence_fresh() -> None:
    """One task per process refreshes its sockets' presence rows (one statement each time)
    while it has any."""
    global _refresher
    loop = asyncio.get_running_loop()
    if _refresher is None or _refresher.done() or _refresher.get_loop() is not loop:
        _refresher = loop.create_task(_refresh_presence())


async def _refresh_presence() -> None:
    while OPEN_SOCKETS:
        await asyncio.sleep(presence.refresh_seconds())
        try:
            await db.call(presence.refresh_worker)
        except Exception:
            logger.exception("presence refresh failed")


class _Turn:
    __slots__ = ("holders", "lock")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.holders = 0


_turns: dict[tuple[asyncio.AbstractEventLoop, int], _Turn] = {}


@contextlib.asynccontextmanager
async def admission_turn(user_id: int) -> AsyncIterator[None]:
    """One admission of a person at a time in this process. The socket cap makes the database
    take them one at a time anyway, on the person's row lock; waiting here instead leaves the
    database threads to other people's sockets (a browser restoring ten tabs had held half of
    them waiting on that lock)."""
    key = (asyncio.get_running_loop(), user_id)
    turn = _turns.get(key)
    if turn is None:
        turn = _turns[key] = _Turn()
    turn.holders += 1
    try:
        async with turn.lock:
            yield
    finally:
        turn.holders -= 1
        if not turn.holders:
            _turns.pop(key, None)


def stop_all_for_restart() -> int:
    """A clean stop: every room socket of this process stops taking frames and events; the
    server then closes each with 1012 (service restart) so its client reconnects at once, to
    another worker when there is one. Returns how many there were."""
    global STOPPING
    STOPPING = True
    sockets = list(OPEN_SOCKETS)
    for socket in sockets:
        socket.closing = True  # refuses frames and events from now on
    return len(sockets)


async def watch_session(
    socket: Any,
    *,
    deadline: Callable[[], dt.datetime | None],
    moved: Callable[[dt.datetime], None],
) -> None:
    """Close ``socket`` (room or attention) when its session lapses. The ``deadline`` is known in
    memory; the database is asked only when it is reached (activity elsewhere may have moved it,
    and ``moved`` is given the new one)."""
    while not socket.closing:
        when = deadline()
        delay = (when - timezone.now()).total_seconds() if when is not None else 60.0
        if delay > 0:
            await asyncio.sleep(min(delay, 3600.0))
            continue
        try:
            outcome = await db.call(
                admission.session_deadline, user_id=socket.user.pk, session_key=socket.session_key
            )
        except Exception:
            logger.exception("session deadline check failed")
            await asyncio.sleep(5.0)
            continue
        if isinstance(outcome, int):
            await socket.shut(outcome)
            return
        moved(outcome)
