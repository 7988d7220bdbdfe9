from __future__ import annotations

import threading
import time

import pytest

from passport.errors import DomainError
from passport.security.ratelimit import MemoryWindows, RateLimiter

RULE = "3/minute"


@pytest.fixture()
def limiter() -> RateLimiter:
    return RateLimiter(None)


def _hit_until_refused(limiter: RateLimiter, scope: str, identifier: str, limit: int) -> DomainError:
    for _ in range(limit):
        limiter.hit(RULE, scope, identifier)
    with pytest.raises(DomainError) as info:
        limiter.hit(RULE, scope, identifier)
    return info.value


def test_hits_up_to_the_limit_are_allowed(limiter):
    for _ in range(3):
        limiter.hit(RULE, "login-ip", "203.0.113.7")


def test_the_hit_over_the_limit_is_rate_limited_with_retry_after(limiter):
    error = _hit_until_refused(limiter, "login-ip", "203.0.113.7", 3)
    assert error.code == "rate_limited"
    assert error.status == 429
    retry_after = int(error.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert error.extra["retry_after"] == pytest.approx(retry_after, abs=1)


def test_refusal_continues_while_the_window_lasts(limiter):
    _hit_until_refused(limiter, "login-ip", "203.0.113.7", 3)
    for _ in range(3):
        with pytest.raises(DomainError):
            limiter.hit(RULE, "login-ip", "203.0.113.7")


def test_different_identifiers_are_counted_separately(limiter):
    _hit_until_refused(limiter, "login-ip", "203.0.113.7", 3)
    for _ in range(3):
        limiter.hit(RULE, "login-ip", "198.51.100.1")


def test_different_scopes_are_counted_separately(limiter):
    _hit_until_refused(limiter, "login-ip", "203.0.113.7", 3)
    for _ in range(3):
        limiter.hit(RULE, "register-ip", "203.0.113.7")


def test_identifier_parts_are_not_merged(limiter):
    for _ in range(3):
        limiter.hit(RULE, "code", "+8613812345678", "register")
    limiter.hit(RULE, "code", "+8613812345678", "login")


def test_reset_clears_every_counter(limiter):
    _hit_until_refused(limiter, "login-ip", "203.0.113.7", 3)
    _hit_until_refused(limiter, "register-ip", "203.0.113.7", 3)
    limiter.reset()
    for _ in range(3):
        limiter.hit(RULE, "login-ip", "203.0.113.7")
        limiter.hit(RULE, "register-ip", "203.0.113.7")


def test_clear_resets_one_identifier_only(limiter):
    _hit_until_refused(limiter, "login-ip", "203.0.113.7", 3)
    _hit_until_refused(limiter, "login-ip", "198.51.100.1", 3)
    limiter.clear(RULE, "login-ip", "203.0.113.7")
    limiter.hit(RULE, "login-ip", "203.0.113.7")
    with pytest.raises(DomainError):
        limiter.hit(RULE, "login-ip", "198.51.100.1")


def test_a_disabled_limiter_never_refuses(limiter):
    limiter.enabled = False
    for _ in range(10):
        limiter.hit(RULE, "login-ip", "203.0.113.7")


def test_two_limiters_in_memory_do_not_share_counts():
    first, second = RateLimiter(None), RateLimiter(None)
    _hit_until_refused(first, "login-ip", "203.0.113.7", 3)
    second.hit(RULE, "login-ip", "203.0.113.7")


def test_ping_reports_the_in_memory_storage_as_up(limiter):
    assert limiter.ping() is True


# --- the in-memory moving window -------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_hit_leaves_the_window_after_exactly_its_length():
    clock = FakeClock()
    windows = MemoryWindows(clock)
    assert windows.acquire("k", 2, 60) is None
    clock.now += 30
    assert windows.acquire("k", 2, 60) is None
    assert windows.acquire("k", 2, 60) == pytest.approx(30)  # the first hit leaves 60 s after it came
    clock.now += 29.5
    assert windows.acquire("k", 2, 60) == pytest.approx(0.5)
    clock.now += 0.5
    assert windows.acquire("k", 2, 60) is None  # the first has left; the second is still inside
    assert windows.acquire("k", 2, 60) == pytest.approx(30)


def test_a_refused_hit_is_not_counted():
    clock = FakeClock()
    windows = MemoryWindows(clock)
    windows.acquire("k", 1, 10)
    for _ in range(5):
        clock.now += 1
        assert windows.acquire("k", 1, 10) is not None
    clock.now += 5  # 10 s after the one counted hit, whatever was refused meanwhile
    assert windows.acquire("k", 1, 10) is None


def test_quiet_keys_are_swept_and_busy_ones_kept():
    clock = FakeClock()
    windows = MemoryWindows(clock)
    for n in range(100):
        windows.acquire(f"quiet-{n}", 5, 60)
    windows.acquire("long", 5, 3600)
    clock.now += MemoryWindows.SWEEP_EVERY + 1
    windows.acquire("busy", 5, 60)  # the first hit after a minute sweeps
    assert len(windows) == 2  # "long" is still inside its hour, "busy" was just hit
    assert windows.acquire("long", 1, 3600) is not None


def test_concurrent_hits_never_pass_more_than_the_limit():
    windows = MemoryWindows()
    passed = []
    barrier = threading.Barrier(8)

    def hammer() -> None:
        barrier.wait()
        passed.extend(1 for _ in range(200) if windows.acquire("k", 500, 60) is None)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(passed) == 500


def test_hits_start_no_threads(limiter):
    # limits' memory storage started a timer thread after hits; this one does its upkeep inline.
    before = threading.active_count()
    for n in range(50):
        limiter.hit("100/minute", "login-ip", f"198.51.100.{n}")
        time.sleep(0.001)
    assert threading.active_count() == before


def test_retry_after_counts_from_the_oldest_hit_in_the_window(monkeypatch):
    clock = FakeClock()
    limiter = RateLimiter(None)
    limiter.memory = MemoryWindows(clock)
    limiter.hit("2/minute", "login-ip", "203.0.113.7")
    clock.now += 50
    limiter.hit("2/minute", "login-ip", "203.0.113.7")
    with pytest.raises(DomainError) as info:
        limiter.hit("2/minute", "login-ip", "203.0.113.7")
    assert info.value.headers["Retry-After"] == "10"
