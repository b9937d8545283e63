"""Rate limits that hold for a person, not for one server process.

Counters live in the ``ratelimit`` cache: Redis when ``REDIS_URL`` is set, so every worker counts
into the same numbers; process memory otherwise (a single development process). A limit is a
number of events (or bytes) per window for one key: a user, or an address where there is no
user. The window slides: the previous fixed window's count, weighted by how much of it still
overlaps the last ``seconds``, plus the current one's (two counters per key, one Redis round
trip per check). A refused event is not counted, so a client that waits ``retry_after`` gets in.

The room socket's frame limit is checked on every frame, so it must not cost a network round
trip: ``SharedWindowCounter`` counts frames in process memory and adds them to the shared
counters in one batch at most every ``SYNC_SECONDS``; each decision uses what the other workers
had counted as of the last batch.

When the counter store cannot be reached, requests are let through and the failure is logged:
an outage of the store must not become an outage of the service.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

CACHE_ALIAS = "ratelimit"
# How often a process adds its frame counts to the shared counters.
SYNC_SECONDS = 0.1
_ERROR_LOG_SECONDS = 60.0
_last_error_logged = -_ERROR_LOG_SECONDS


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @property
    def enabled(self) -> bool:
        return self.count > 0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    # Seconds until the same event would be allowed (0 when it was).
    retry_after: int = 0


ALLOWED = Verdict(allowed=True)


def rate(name: str) -> Rate:
    count, seconds = settings.LIAISON_RATE_LIMITS[name]
    return Rate(count=int(count), seconds=int(seconds))


def counters() -> BaseCache:
    return caches[CACHE_ALIAS]


def is_shared() -> bool:
    """Whether the counters are seen by every worker (Redis), not only this process."""
    return isinstance(counters(), RedisCache)


def _log_store_failure() -> None:
    global _last_error_logged
    now = time.monotonic()
    if now - _last_error_logged >= _ERROR_LOG_SECONDS:
        _last_error_logged = now
        logger.exception("rate-limit counters unavailable; letting requests through")


# --- the counters -------------------------------------------------------------------------------


def _keys(name: str, key: str, seconds: int, now: float) -> tuple[str, str, float]:
    """The current and previous window's counter names, and how far into the current window
    ``now`` is."""
    index, elapsed = divmod(now, seconds)
    index = int(index)
    return f"rl:{name}:{key}:{index}", f"rl:{name}:{key}:{index - 1}", elapsed


def _add(cache: BaseCache, changes: list[tuple[str, str, int, int]]) -> list[tuple[int, int]]:
    """Add ``delta`` to each current counter and read the previous one: ``(current, previous)``
    per change, in order. ``changes`` holds ``(current_key, previous_key, delta, ttl)``."""
    if isinstance(cache, RedisCache):
        return _add_on_redis(cache, changes)
    results = []
    for current, previous, delta, ttl in changes:
        cache.add(current, 0, timeout=ttl)
        try:
            total = cache.incr(current, delta)
        except ValueError:  # expired between add and incr
            cache.set(current, max(delta, 0), timeout=ttl)
            total = max(delta, 0)
        results.append((int(total), int(cache.get(previous) or 0)))
    return results


def _add_on_redis(
    cache: RedisCache, changes: list[tuple[str, str, int, int]]
) -> list[tuple[int, int]]:
    """The same in one pipelined round trip: INCRBY and EXPIRE the current counter, GET the
    previous one. (Django's ``incr`` costs two round trips and refuses a missing key.)"""
    client = cache._cache.get_client(write=True)
    pipe = client.pipeline(transaction=False)
    for current, previous, delta, ttl in changes:
        pipe.incrby(cache.make_and_validate_key(current), delta)
        pipe.expire(cache.make_and_validate_key(current), ttl)
        pipe.get(cache.make_and_validate_key(previous))
    replies = pipe.execute()
    return [(int(replies[i]), int(replies[i + 2] or 0)) for i in range(0, len(replies), 3)]


def _estimate(current: int, previous: int, elapsed: float, seconds: int) -> float:
    return previous * (1 - elapsed / seconds) + current


def _wait(current: int, previous: int, elapsed: float, limit: Rate, cost: int) -> float:
    """Seconds until ``cost`` more fits, if nothing else is counted meanwhile."""
    seconds, room = limit.seconds, limit.count - cost
    if room < 0:
        return float(seconds)  # more than a whole window allows: say so once per window
    if current <= room:
        # Later in this window, as the previous window's share fades.
        at = seconds * (1 - (room - current) / previous) if previous else elapsed
        if at < seconds:
            return max(0.0, at - elapsed)
    # In the next window, as this window's count (then the previous one) fades.
    at = seconds * (1 - room / current) if current else 0.0
    return (seconds - elapsed) + max(0.0, at)


def _whole_seconds(wait: float) -> int:
    """At least one second, rounded up (but not for float noise: 3.0000000004 is 3)."""
    return max(1, math.ceil(round(wait, 6)))


def hit(name: str, key: str, *, cost: int = 1, now: float | None = None) -> Verdict:
    """Count ``cost`` against limit ``name`` for ``key``; refused (and not counted) if the
    sliding window would then hold more than the limit."""
    limit = rate(name)
    if not limit.enabled or cost <= 0:
        return ALLOWED
    now = time.time() if now is None else now
    current_key, previous_key, elapsed = _keys(name, key, limit.seconds, now)
    ttl = 2 * limit.seconds + 1
    cache = counters()
    try:
        ((current, previous),) = _add(cache, [(current_key, previous_key, cost, ttl)])
        if _estimate(current, previous, elapsed, limit.seconds) <= limit.count:
            return ALLOWED
        _add(cache, [(current_key, previous_key, -cost, ttl)])
    except Exception:
        _log_store_failure()
        return ALLOWED
    wait = _wait(current - cost, previous, elapsed, limit, cost)
    return Verdict(allowed=False, retry_after=_whole_seconds(wait))


def reset() -> None:
    """Forget every count (tests, and an operator lifting limits at once)."""
    cache = counters()
    if isinstance(cache, RedisCache):
        client = cache._cache.get_client(write=True)
        pattern = cache.make_and_validate_key("rl:*")
        for found in client.scan_iter(match=pattern, count=1000):
            client.delete(found)
    else:
        cache.clear()


# --- batched counting for the room socket ---------------------------------------------------------

_Change = tuple[str, str, int, int]


class SharedWindowCounter:
    """Events per key in a sliding window, summed over every process, at no network cost per
    event: counts are kept here and added to the shared counters in a batch at most every
    ``SYNC_SECONDS`` (one round trip for all keys). Between batches, a key's count is what every
    process had counted at the last batch plus what this one counted since.

    Bookkeeping happens on the caller's thread (the event loop); only the round trip runs on a
    worker thread."""

    def __init__(self, name: str, *, seconds: float) -> None:
        self.name = name
        self.seconds = max(1, math.ceil(seconds))
        # (key, window index) -> events counted here and not yet (or not yet known to be) shared.
        self._pending: defaultdict[tuple[str, int], int] = defaultdict(int)
        self._in_flight: dict[tuple[str, int], int] = {}
        # key -> (window index, its count, the previous window's count) as of the last batch.
        self._known: dict[str, tuple[int, int, int]] = {}
        self._task: asyncio.Task[None] | None = None

    def _window(self, now: float) -> tuple[int, float]:
        index, elapsed = divmod(now, self.seconds)
        return int(index), elapsed

    def _counts(self, key: str, index: int) -> tuple[int, int]:
        """``(current, previous)`` window counts of ``key`` as this process knows them."""
        known_index, current, previous = self._known.get(key, (index, 0, 0))
        if known_index == index - 1:
            current, previous = 0, current
        elif known_index != index:
            current, previous = 0, 0
        for local in (self._pending, self._in_flight):
            current += local.get((key, index), 0)
            previous += local.get((key, index - 1), 0)
        return current, previous

    def estimate(self, key: str, *, now: float | None = None) -> float:
        """Events of ``key`` in the last ``seconds``, on every process."""
        index, elapsed = self._window(time.time() if now is None else now)
        current, previous = self._counts(key, index)
        return _estimate(current, previous, elapsed, self.seconds)

    def retry_after(self, key: str, limit: int, *, now: float | None = None) -> int:
        """Whole seconds until one more event of ``key`` fits under ``limit``."""
        index, elapsed = self._window(time.time() if now is None else now)
        current, previous = self._counts(key, index)
        wait = _wait(current, previous, elapsed, Rate(limit, self.seconds), 1)
        return _whole_seconds(wait)

    def add(self, key: str, *, now: float | None = None) -> None:
        index, _elapsed = self._window(time.time() if now is None else now)
        self._pending[(key, index)] += 1
        self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a synchronous caller calls ``sync`` itself
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._sync_soon())

    async def _sync_soon(self) -> None:
        await asyncio.sleep(SYNC_SECONDS)
        changes = self._take()
        if not changes:
            return
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(None, _add, counters(), changes)
        except Exception:
            _log_store_failure()
            results = None
        self._learn(results)
        if self._pending:
            self._task = loop.create_task(self._sync_soon())

    def sync(self, *, now: float | None = None) -> None:
        """One batch, on the caller's thread (tests; code without an event loop)."""
        changes = self._take()
        if not changes:
            return
        try:
            results = _add(counters(), changes)
        except Exception:
            _log_store_failure()
            results = None
        self._learn(results, now=now)

    def _take(self) -> list[_Change]:
        self._in_flight = dict(sorted(self._pending.items(), key=lambda item: item[0][1]))
        self._pending.clear()
        ttl = 2 * self.seconds + 1
        prefix = f"rl:{self.name}"
        return [
            (f"{prefix}:{key}:{window}", f"{prefix}:{key}:{window - 1}", count, ttl)
            for (key, window), count in self._in_flight.items()
        ]

    def _learn(self, results: list[tuple[int, int]] | None, *, now: float | None = None) -> None:
        sent, self._in_flight = self._in_flight, {}
        if results is None:
            return  # the store is away: this process's own counts go on deciding
        index, _elapsed = self._window(time.time() if now is None else now)
        for (key, window), (current, previous) in zip(sent, results, strict=True):
            if window >= index - 1:
                self._known[key] = (window, current, previous)
        for key in [key for key, (window, *_counts) in self._known.items() if window < index - 1]:
            del self._known[key]

    def reset(self) -> None:
        self._pending.clear()
        self._in_flight = {}
        self._known.clear()
