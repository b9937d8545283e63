"""Per-person limits of the room socket: frames in a sliding window and the busy server's
``retry_after``."""

from __future__ import annotations

import math
import time
from collections import deque

from liaison import ratelimits
from liaison.realtime import db

RATE_WINDOW_SECONDS = 10.0


class FrameRate:
    """Frames per user in a sliding window, shared by the user's sockets in this process and,
    when the rate-limit counters are shared (Redis), by the user's sockets on every worker.

    The per-frame cost stays in memory: other workers' counts arrive in batches
    (``ratelimits.SharedWindowCounter``), so a person spread over several workers may pass the
    limit by what they send within one batch interval (0.1 s) before being refused."""

    def __init__(self, *, shared: bool | None = None) -> None:
        self._seen: dict[int, deque[float]] = {}
        # None: decided on first use by where the rate-limit counters live.
        self._shared_setting = shared
        self._shared_on: bool | None = shared
        self.shared = ratelimits.SharedWindowCounter("ws.frames", seconds=RATE_WINDOW_SECONDS)

    def _uses_shared(self) -> bool:
        if self._shared_on is None:
            self._shared_on = ratelimits.is_shared()
        return self._shared_on

    def allow(self, user_id: int, limit: int, window: float = RATE_WINDOW_SECONDS) -> bool:
        now = time.monotonic()
        seen = self._seen.setdefault(user_id, deque())
        while seen and now - seen[0] >= window:
            seen.popleft()
        if len(seen) >= limit:
            return False
        if self._uses_shared():
            key = str(user_id)
            if self.shared.estimate(key) + 1 > limit:
                return False
            self.shared.add(key)
        seen.append(now)
        return True

    def retry_after(self, user_id: int, limit: int, window: float = RATE_WINDOW_SECONDS) -> int:
        """Whole seconds until the user may send a frame again."""
        wait = 1
        seen = self._seen.get(user_id)
        if seen and len(seen) >= limit:
            wait = max(wait, math.ceil(seen[len(seen) - limit] + window - time.monotonic()))
        if self._uses_shared():
            wait = max(wait, self.shared.retry_after(str(user_id), limit))
        # Every frame counted now has left the window by then, whatever the shared estimate says.
        return min(wait, math.ceil(window))

    def forget_idle(self, user_id: int, window: float = RATE_WINDOW_SECONDS) -> None:
        seen = self._seen.get(user_id)
        if seen is not None and (not seen or time.monotonic() - seen[-1] >= window):
            self._seen.pop(user_id, None)

    def reset(self) -> None:
        self._seen.clear()
        self.shared.reset()
        self._shared_on = self._shared_setting


frame_rate = FrameRate()


def retry_after_seconds() -> float:
    """How long a refused sender should wait: the queue ahead of it, drained by the pool."""
    return round(min(5.0, max(0.2, db.waiting() * 0.005)), 2)
