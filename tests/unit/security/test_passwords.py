from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st

from passport.security.passwords import Hasher
from passport.settings import Settings
from passport_testing import run_coroutine

DECOY = "decoy password that matches nothing"  # the phrase Hasher hashes as its decoy


@pytest.fixture(scope="module")
def hasher() -> Hasher:
    return Hasher(memory_kib=1024, time_cost=1, parallelism=1)


def _default(name: str):
    return Settings.model_fields[name].default


def test_default_settings_produce_an_argon2id_hash_with_the_owasp_profile():
    params = (_default("argon2_memory_kib"), _default("argon2_time_cost"), _default("argon2_parallelism"))
    assert params == (19456, 2, 1)
    stored = Hasher(*params).hash("Qz7!mountain-Lark")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


@settings(max_examples=25, deadline=None)
@given(st.text(max_size=64))
def test_hash_then_verify_accepts_the_same_password(password):
    hasher = Hasher(memory_kib=1024, time_cost=1, parallelism=1)
    stored = hasher.hash(password)
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert hasher.verify(stored, password)


def test_hash_is_salted(hasher):
    assert hasher.hash("Qz7!mountain-Lark") != hasher.hash("Qz7!mountain-Lark")


@pytest.mark.parametrize("wrong", [
    "qz7!mountain-lark", "Qz7!mountain-Lark ", "", "Qz7!mountain-Lar", "张三Qz7!",
])
def test_verify_refuses_a_wrong_password(hasher, wrong):
    assert not hasher.verify(hasher.hash("Qz7!mountain-Lark"), wrong)


def test_verify_accepts_chinese_passwords(hasher):
    assert hasher.verify(hasher.hash("我的密码Qz7!"), "我的密码Qz7!")
    assert not hasher.verify(hasher.hash("我的密码Qz7!"), "我的密碼Qz7!")


@pytest.mark.parametrize("password", ["", "Qz7!mountain-Lark", DECOY])
def test_verify_without_a_stored_hash_is_false(hasher, password):
    assert hasher.verify(None, password) is False


@pytest.mark.parametrize("password", ["", "Qz7!mountain-Lark", DECOY])
def test_verify_against_an_empty_stored_hash_is_false(hasher, password):
    assert hasher.verify("", password) is False


def test_burn_does_not_raise_and_returns_nothing(hasher):
    assert hasher.burn("Qz7!mountain-Lark") is None
    assert hasher.burn(DECOY) is None


@pytest.mark.parametrize("garbage", [
    "garbage", "$argon2id$", "$argon2id$v=19$m=abc,t=1,p=1$c2FsdA$aGFzaA",
    "$argon2id$v=19$m=1024,t=1,p=1$xx$yy", "$2b$12$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV",
    "pbkdf2_sha256$600000$salt$hash", "密码哈希", "$argon2id$v=19$m=1024,t=1,p=1$ä$ö",
])
def test_verify_against_a_garbage_hash_is_false(hasher, garbage):
    assert hasher.verify(garbage, "Qz7!mountain-Lark") is False


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1))
def test_verify_never_raises_on_any_stored_text(garbage):
    hasher = Hasher(memory_kib=1024, time_cost=1, parallelism=1)
    assert hasher.verify(garbage, "Qz7!mountain-Lark") is False


def test_needs_rehash_is_false_for_hashes_made_with_the_current_parameters(hasher):
    assert not hasher.needs_rehash(hasher.hash("Qz7!mountain-Lark"))


@pytest.mark.parametrize(("memory_kib", "time_cost", "parallelism"), [
    (2048, 1, 1), (1024, 2, 1), (1024, 1, 2),
])
def test_needs_rehash_is_true_when_the_parameters_change(hasher, memory_kib, time_cost, parallelism):
    stored = hasher.hash("Qz7!mountain-Lark")
    stronger = Hasher(memory_kib, time_cost, parallelism)
    assert stronger.needs_rehash(stored)
    assert stronger.verify(stored, "Qz7!mountain-Lark")


def test_needs_rehash_is_true_for_argon2i_hashes(hasher):
    from argon2 import Type

    argon2i = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.I)
    legacy = argon2i.hash("Qz7!mountain-Lark")
    assert hasher.needs_rehash(legacy)


# --- verify_async: the API's password login on PostgreSQL ------------------------------------------

class _Recording:
    """Wraps the PasswordHasher: which thread ran each verify, and in which turn of the event loop."""

    def __init__(self, inner, turn: list[int]) -> None:
        self.inner, self.turn, self.calls = inner, turn, []

    def verify(self, stored, secret):
        self.calls.append((threading.get_ident(), self.turn[0]))
        return self.inner.verify(stored, secret)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _run_with_turns(hasher: Hasher, *checks: tuple[str | None, str]) -> tuple[list, list, int]:
    """Run ``verify_async`` for every (stored, secret) at once on a fresh loop that counts its turns."""
    turn = [0]
    recording = hasher._ph = _Recording(hasher._ph, turn)

    async def main():
        loop = asyncio.get_running_loop()
        ticking = True

        def tick():
            turn[0] += 1
            if ticking:
                loop.call_soon(tick)

        loop.call_soon(tick)
        try:
            return (await asyncio.gather(*(hasher.verify_async(stored, secret) for stored, secret in checks)),
                    threading.get_ident())
        finally:
            ticking = False

    results, loop_thread = run_coroutine(main())
    hasher._ph = recording.inner
    return results, recording.calls, loop_thread


@pytest.fixture()
def slotted():
    """A cheap Hasher with the given number of slots, closed after the test."""
    made = []

    def make(slots: int) -> Hasher:
        made.append(Hasher(memory_kib=1024, time_cost=1, parallelism=1, slots=slots))
        return made[-1]

    yield make
    for hasher in made:
        hasher.close()


@pytest.mark.parametrize("slots", [1, 2])
def test_verify_async_answers_as_verify_does(slotted, slots):
    hasher = slotted(slots)
    stored = hasher.hash("Qz7!mountain-Lark")
    checks = [(stored, "Qz7!mountain-Lark"), (stored, "qz7!mountain-lark"), (None, DECOY), ("", DECOY),
              ("garbage", "Qz7!mountain-Lark"), (stored, "\ud800")]
    results, calls, _ = _run_with_turns(hasher, *checks)
    assert results == [hasher.verify(s, p) for s, p in checks] == [True, False, False, False, False, False]
    assert len(calls) == len(checks)  # one Argon2 run each: the decoy for a missing hash too


def test_with_one_slot_verify_async_hashes_on_the_loop_thread_one_hash_per_turn(slotted):
    hasher = slotted(1)
    right = (hasher.hash("Qz7!mountain-Lark"), "Qz7!mountain-Lark")
    results, calls, loop_thread = _run_with_turns(hasher, *[right] * 5)
    assert results == [True] * 5
    assert {thread for thread, _turn in calls} == {loop_thread}
    turns = [turn for _thread, turn in calls]
    assert len(set(turns)) == 5, turns  # the loop polled and ran its other callbacks between hashes


def test_with_more_slots_verify_async_hashes_on_the_hashing_threads(slotted):
    hasher = slotted(2)
    right = (hasher.hash("Qz7!mountain-Lark"), "Qz7!mountain-Lark")
    results, calls, loop_thread = _run_with_turns(hasher, *[right] * 4)
    assert results == [True] * 4
    assert loop_thread not in {thread for thread, _turn in calls}


@pytest.mark.parametrize("when", ["while-waiting", "when-handed-the-turn"])
def test_a_cancelled_waiter_does_not_hold_up_the_hashes_behind_it(when):
    from passport.security.passwords import _OneHashPerTurn

    async def main():
        loop = asyncio.get_running_loop()
        gate, took = _OneHashPerTurn(), []

        async def hash_(name):
            await gate.take()
            took.append(name)

        first, second, third = (asyncio.create_task(hash_(name)) for name in ("first", "second", "third"))
        await asyncio.sleep(0)  # first has the turn; second and third wait
        if when == "while-waiting":
            second.cancel()
        else:
            loop.call_soon(second.cancel)  # right after the hand-over to second, before it resumes
        await asyncio.wait_for(asyncio.gather(first, second, third, return_exceptions=True), 5)
        return took, second.cancelled()

    assert run_coroutine(main()) == (["first", "third"], True)
