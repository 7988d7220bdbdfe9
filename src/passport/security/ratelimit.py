"""Request-rate limits (moving window) in memory, or in Redis when PASSPORT_REDIS_URL is set,
so that every node counts against the same budget.

``hit`` is for threads; ``hit_async`` for an event loop (the API's password login on PostgreSQL),
where Redis is reached through a redis.asyncio client of that loop's own — same keys, same Lua
script as ``hit``'s, so both count against one budget.

When Redis is down or slower than PASSPORT_REDIS_TIMEOUT_SECONDS, a limit fails closed (503
``service_unavailable``: nothing gets through unchecked) unless its caller asks for ``when_down="local"``
(the password login): then the hit is counted in this process's own windows, with a warning logged."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import lru_cache

import structlog
from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from passport.errors import rate_limited, service_unavailable
from passport.loops import PerLoop

log = structlog.get_logger("passport.ratelimit")
# Seconds a client is asked to wait when the limits cannot be counted.
UNAVAILABLE_RETRY_AFTER = 5


@lru_cache(maxsize=256)
def _rule(rule: str) -> RateLimitItem:
    return parse(rule)


class MemoryWindows:
    """Moving windows kept in this process: per key, the times of the hits still inside its window.

    ``limits``' own memory storage starts a timer thread after every hit (10 ms later, to expire old
    entries by walking every key), about a hundred threads a second under a login load; here expired
    hits are dropped when their key is next hit, and keys gone quiet are swept inline once a minute.
    """

    SWEEP_EVERY = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, deque[float]]] = {}
        self._next_sweep = clock() + self.SWEEP_EVERY

    def acquire(self, key: str, limit: int, window: float) -> float | None:
        """Count one hit. None when it fits the limit; otherwise (nothing counted) the seconds until
        the oldest hit leaves the window."""
        now = self._clock()
        with self._lock:
            entry = self._windows.get(key)
            if entry is None:
                entry = self._windows[key] = (window, deque())
            hits = entry[1]
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                return hits[0] + window - now
            hits.append(now)
            if now >= self._next_sweep:
                self._sweep(now)
        return None

    def _sweep(self, now: float) -> None:
        """Forget keys whose newest hit has left its window (called with the lock held)."""
        self._windows = {key: (window, hits) for key, (window, hits) in self._windows.items()
                         if hits and hits[-1] > now - window}
        self._next_sweep = now + self.SWEEP_EVERY

    def clear(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def __len__(self) -> int:
        return len(self._windows)


class RateLimiter:
    def __init__(self, redis_url: str | None, namespace: str = "passport", timeout: float = 0.5) -> None:
        self.memory: MemoryWindows | None = None
        self._redis_url, self._key_prefix = redis_url, f"{namespace}-limits"
        # redis-py waits 5 s by default (and forever to connect): a frozen Redis would hold a thread each.
        self._options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        if redis_url:
            self.storage = storage_from_string(redis_url, key_prefix=self._key_prefix, wrap_exceptions=True,
                                               **self._options)
            self._limiter = MovingWindowRateLimiter(self.storage)
            # ``when_down="local"``: the hits counted here while Redis cannot be reached.
            self.fallback = MemoryWindows()
        else:
            self.memory = MemoryWindows()
        self._async_limiters: PerLoop[AsyncMovingWindowRateLimiter] = PerLoop(self._new_async_limiter)
        self.enabled = True

    @staticmethod
    def _key(item: RateLimitItem, scope: str, identifiers: tuple[str, ...]) -> str:
        return item.key_for(scope, *identifiers)

    def hit(self, rule: str, scope: str, *identifiers: str, when_down: str = "closed") -> None:
        """Count one event; raise 429 ``rate_limited`` with Retry-After when over ``rule``. When Redis
        cannot be reached: 503 ``service_unavailable``, or (``when_down="local"``) this process's count."""
        if not self.enabled:
            return
        item = _rule(rule)
        if self.memory is not None:
            self._hit_memory(self.memory, item, scope, identifiers)
            return
        try:
            if self._limiter.hit(item, scope, *identifiers):
                return
            stats = self._limiter.get_window_stats(item, scope, *identifiers)
        except StorageError as error:
            self._redis_down(error, item, scope, identifiers, when_down)
            return
        raise rate_limited(math.ceil(stats.reset_time - time.time()))

    async def hit_async(self, rule: str, scope: str, *identifiers: str, when_down: str = "closed") -> None:
        """``hit`` for an event loop, without a thread: in memory as ``hit`` does, in Redis through the
        running loop's own asyncio client."""
        if not self.enabled:
            return
        if self.memory is not None:
            self.hit(rule, scope, *identifiers)
            return
        item = _rule(rule)
        limiter = self._async_limiters.get()
        try:
            if await limiter.hit(item, scope, *identifiers):
                return
            stats = await limiter.get_window_stats(item, scope, *identifiers)
        except StorageError as error:
            self._redis_down(error, item, scope, identifiers, when_down)
            return
        raise rate_limited(math.ceil(stats.reset_time - time.time()))

    def _hit_memory(self, windows: MemoryWindows, item: RateLimitItem, scope: str,
                    identifiers: tuple[str, ...]) -> None:
        wait = windows.acquire(self._key(item, scope, identifiers), item.amount, item.get_expiry())
        if wait is not None:
            raise rate_limited(max(1, math.ceil(wait)))

    def _redis_down(self, error: StorageError, item: RateLimitItem, scope: str, identifiers: tuple[str, ...],
                    when_down: str) -> None:
        cause = type(error.storage_error).__name__
        if when_down != "local":
            log.warning("ratelimit.unavailable", scope=scope, policy="closed", error=cause)
            raise service_unavailable(UNAVAILABLE_RETRY_AFTER) from None
        log.warning("ratelimit.unavailable", scope=scope, policy="local", error=cause)
        self._hit_memory(self.fallback, item, scope, identifiers)

    def _new_async_limiter(self) -> AsyncMovingWindowRateLimiter:
        return AsyncMovingWindowRateLimiter(storage_from_string(
            f"async+{self._redis_url}", implementation="redispy", key_prefix=self._key_prefix,
            wrap_exceptions=True, **self._options))

    async def close_async(self) -> None:
        """Close the running loop's Redis client, if it has one (the app's lifespan, at shutdown)."""
        limiter = self._async_limiters.pop()
        if limiter is not None:
            await limiter.storage.bridge.get_connection().aclose()

    def clear(self, rule: str, scope: str, *identifiers: str) -> None:
        item = _rule(rule)
        if self.memory is not None:
            self.memory.clear(self._key(item, scope, identifiers))
        else:
            self._limiter.clear(item, scope, *identifiers)
            self.fallback.clear(self._key(item, scope, identifiers))

    def reset(self) -> None:
        if self.memory is not None:
            self.memory.reset()
        else:
            self.fallback.reset()
            self.storage.reset()

    def ping(self) -> bool:
        return True if self.memory is not None else bool(self.storage.check())
