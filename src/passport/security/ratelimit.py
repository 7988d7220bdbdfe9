"""Request-rate limits (moving window) in memory, or in Redis when PASSPORT_REDIS_URL is set,
so that every node counts against the same budget."""

from __future__ import annotations

import math
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from passport.errors import rate_limited


class RateLimiter:
    def __init__(self, redis_url: str | None, namespace: str = "passport") -> None:
        if redis_url:
            self.storage = storage_from_string(redis_url, key_prefix=f"{namespace}-limits")
        else:
            self.storage = storage_from_string("memory://")
        self._limiter = MovingWindowRateLimiter(self.storage)
        self.enabled = True

    def hit(self, rule: str, scope: str, *identifiers: str) -> None:
        """Count one event; raise 429 ``rate_limited`` with Retry-After when over ``rule``."""
        if not self.enabled:
            return
        item = parse(rule)
        if not self._limiter.hit(item, scope, *identifiers):
            stats = self._limiter.get_window_stats(item, scope, *identifiers)
            raise rate_limited(math.ceil(stats.reset_time - time.time()))

    def clear(self, rule: str, scope: str, *identifiers: str) -> None:
        self._limiter.clear(parse(rule), scope, *identifiers)

    def reset(self) -> None:
        self.storage.reset()

    def ping(self) -> bool:
        return bool(self.storage.check())
