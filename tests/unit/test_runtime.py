from __future__ import annotations

import time

from passport.runtime import LocalCache


def test_entries_expire_after_their_lifetime():
    cache = LocalCache(0.05)
    cache.put("k", "v")
    assert cache.get("k") == "v"
    time.sleep(0.06)
    assert cache.get("k") is None


def test_zero_lifetime_disables_the_cache():
    cache = LocalCache(0)
    cache.put("k", "v")
    assert cache.get("k") is None


def test_drop_removes_matching_entries_only():
    cache = LocalCache(10)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.drop(lambda value: value == 1)
    assert cache.get("a") is None and cache.get("b") == 2


def test_cache_is_bounded():
    cache = LocalCache(10, max_entries=3)
    for i in range(5):
        cache.put(i, i)
    assert len(cache._entries) <= 3
    assert cache.get(4) == 4
