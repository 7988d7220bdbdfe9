from __future__ import annotations

import pytest

from passport.errors import DomainError
from passport.security.ratelimit import RateLimiter

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
