from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st

from passport.security.passwords import Hasher
from passport.settings import Settings

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
