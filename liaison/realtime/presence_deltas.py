"""Presence changes told to an exercise's rooms at most once per window, per server process.

Each person coming online used to be told at once to every socket of the exercise. In a
connect storm (a worker restarting, a thousand sockets coming back) that fan-out was 40 % of the
server's CPU: measured, 1,000 connects took 44 s with it and 26 s without. Changes are now
gathered per exercise: the first after a quiet window is told at once, later ones wait for the
window's end and go out together as one frame per room (``presence.announce``), so each socket
hears at most one presence frame per window however many people arrive. While changes keep
coming, each window is twice the last (up to ``MAX_WINDOWS`` times the first); a quiet window
brings it back: a storm of 1,000 connects is told in a handful of frames, one person arriving
in a quiet exercise at once.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field

from django.conf import settings

from liaison.realtime import db, presence

logger = logging.getLogger(__name__)


# A busy exercise's window grows to at most this many first windows (8 s by default).
MAX_WINDOWS = 8


def window_seconds() -> float:
    return settings.LIAISON_WS_PRESENCE_WINDOW_MS / 1000


@dataclass
class _Batches:
    """One event loop's changes waiting to be told, per exercise."""

    waiting: dict[int, set[int]] = field(default_factory=dict)
    last_told: dict[int, float] = field(default_factory=dict)
    window: dict[int, float] = field(default_factory=dict)  # the current one, in seconds
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


# Per event loop: a test's loop ends with the test, and its tasks with it.
_batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batches] = (
    weakref.WeakKeyDictionary()
)


def note(change: presence.Change | None) -> None:
    """Tell the exercise about this change: at once after a quiet window, else at its end."""
    if change is None:
        return
    loop = asyncio.get_running_loop()
    batches = _batches.setdefault(loop, _Batches())
    waiting = batches.waiting.get(change.exercise_id)
    if waiting is not None:  # a telling is due already; this change goes with it
        waiting.add(change.user_id)
        return
    batches.waiting[change.exercise_id] = {change.user_id}
    told = batches.last_told.get(change.exercise_id)
    window = batches.window.get(change.exercise_id, window_seconds())
    delay = 0.0 if told is None else max(0.0, told + window - loop.time())
    task = loop.create_task(_tell(batches, change.exercise_id, delay))
    batches.tasks.add(task)
    task.add_done_callback(batches.tasks.discard)


async def _tell(batches: _Batches, exercise_id: int, delay: float) -> None:
    if delay:
        await asyncio.sleep(delay)
    user_ids = sorted(batches.waiting.pop(exercise_id, ()))
    batches.last_told[exercise_id] = asyncio.get_running_loop().time()
    first = window_seconds()
    busy = min(2 * batches.window.get(exercise_id, first), MAX_WINDOWS * first)
    batches.window[exercise_id] = busy if delay else first
    try:
        await db.call(presence.announce, exercise_id=exercise_id, user_ids=user_ids)
    except Exception:  # presence is best effort; the next change or a reconnect heals it
        logger.exception("presence of exercise %s could not be told", exercise_id)
