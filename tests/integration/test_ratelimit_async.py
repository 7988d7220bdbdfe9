"""RateLimiter.hit_async (the API's password login on PostgreSQL) counts against the same budget as
``hit``, in memory and in Redis (PASSPORT_TEST_REDIS_URL), on any event loop."""

from __future__ import annotations

import uuid

import pytest

from passport import errors
from passport.security.ratelimit import RateLimiter
from passport_testing import REDIS_URL, run_coroutine

BACKENDS = [None, *([REDIS_URL] if REDIS_URL else [])]


@pytest.fixture(params=BACKENDS, ids=lambda url: "redis" if url else "memory")
def limiter(request):
    limiter = RateLimiter(request.param, namespace=f"test-async-{uuid.uuid4().hex[:8]}")
    yield limiter
    limiter.reset()


def test_async_and_sync_hits_share_one_budget(limiter):
    async def two_hits_then_close():
        try:
            await limiter.hit_async("3/minute", "login-ip", "192.0.2.7")
            await limiter.hit_async("3/minute", "login-ip", "192.0.2.7")
        finally:
            await limiter.close_async()

    run_coroutine(two_hits_then_close())
    limiter.hit("3/minute", "login-ip", "192.0.2.7")  # the third: still allowed

    async def fourth():
        try:
            await limiter.hit_async("3/minute", "login-ip", "192.0.2.7")
        finally:
            await limiter.close_async()

    with pytest.raises(errors.DomainError) as refused:
        run_coroutine(fourth())  # another loop, another client: the same count
    assert refused.value.code == "rate_limited" and 1 <= refused.value.extra["retry_after"] <= 60
    with pytest.raises(errors.DomainError):
        limiter.hit("3/minute", "login-ip", "192.0.2.7")
    limiter.hit("3/minute", "login-ip", "192.0.2.8")  # another address: its own budget


def test_a_disabled_limiter_never_refuses_on_the_loop(limiter):
    limiter.enabled = False

    async def many():
        try:
            for _ in range(5):
                await limiter.hit_async("1/minute", "login-ip", "192.0.2.9")
        finally:
            await limiter.close_async()

    run_coroutine(many())
