from __future__ import annotations

import base64
import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from passport.security.tokens import (
    RECOVERY_ALPHABET,
    b64,
    keyed_digest,
    new_numeric_code,
    new_recovery_key,
    new_token,
    normalize_recovery_key,
    same,
    token_digest,
)

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
RECOVERY_KEY = re.compile(rf"[{RECOVERY_ALPHABET}]{{5}}(-[{RECOVERY_ALPHABET}]{{5}}){{4}}")


def test_new_token_carries_at_least_256_random_bits():
    token = new_token()
    assert len(token) >= 43
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) >= 32


def test_new_tokens_do_not_repeat():
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000


@given(st.text())
def test_token_digest_is_the_sha256_of_the_token(token):
    assert token_digest(token) == hashlib.sha256(token.encode()).digest()
    assert len(token_digest(token)) == 32


@pytest.mark.parametrize("length", [4, 6, 8, 12])
def test_numeric_code_has_the_requested_number_of_ascii_digits(length):
    for _ in range(50):
        code = new_numeric_code(length)
        assert len(code) == length
        assert re.fullmatch(r"[0-9]+", code)


def test_numeric_codes_use_every_digit_and_keep_leading_zeros():
    codes = [new_numeric_code(6) for _ in range(2000)]
    assert set("".join(codes)) == set("0123456789")
    assert any(code.startswith("0") for code in codes)


def test_recovery_key_is_five_groups_of_five_from_the_alphabet():
    for _ in range(200):
        key = new_recovery_key()
        assert RECOVERY_KEY.fullmatch(key), key


def test_recovery_alphabet_has_32_letters_without_look_alikes():
    assert len(set(RECOVERY_ALPHABET)) == len(RECOVERY_ALPHABET) == 32
    assert not set("01IO") & set(RECOVERY_ALPHABET)


def test_recovery_keys_do_not_repeat():
    assert len({new_recovery_key() for _ in range(1000)}) == 1000


recovery_keys = st.text(RECOVERY_ALPHABET, min_size=25, max_size=25).map(
    lambda chars: "-".join(chars[i:i + 5] for i in range(0, 25, 5)))


@given(recovery_keys)
def test_normalize_recovery_key_accepts_lower_case_and_missing_dashes(key):
    assert normalize_recovery_key(key) == key
    assert normalize_recovery_key(key.lower()) == key
    assert normalize_recovery_key(key.replace("-", "")) == key
    assert normalize_recovery_key(key.replace("-", "").lower()) == key


@given(recovery_keys, st.lists(st.sampled_from([" ", "  ", "-", "\t", " - "]), min_size=26, max_size=26))
def test_normalize_recovery_key_ignores_spaces_and_dashes_anywhere(key, gaps):
    chars = key.replace("-", "")
    typed = "".join(gap + char for gap, char in zip(gaps, chars, strict=False)) + gaps[-1]
    assert normalize_recovery_key(typed) == key


def test_normalize_recovery_key_does_not_turn_a_wrong_key_into_a_right_one():
    key = new_recovery_key()
    assert normalize_recovery_key(key[:-1]) != key
    assert normalize_recovery_key(key + "A") != key


def test_keyed_digest_is_hmac_sha256_of_the_parts():
    digest = keyed_digest(KEY, "code", "sms", "123456")
    assert len(digest) == 32
    assert digest == keyed_digest(KEY, "code", "sms", "123456")


def test_keyed_digest_differs_by_key():
    assert keyed_digest(KEY, "code", "123456") != keyed_digest(OTHER_KEY, "code", "123456")


@pytest.mark.parametrize(("first", "second"), [
    (("ab", "c"), ("a", "bc")),
    (("abc",), ("a", "bc")),
    (("a", "", "b"), ("a", "b")),
    (("", "ab"), ("ab", "")),
    (("register", "123456"), ("login", "123456")),
])
def test_keyed_digest_distinguishes_how_the_parts_are_split(first, second):
    assert keyed_digest(KEY, *first) != keyed_digest(KEY, *second)


parts = st.lists(st.text(st.characters(exclude_characters="\x1f"), max_size=8), min_size=1, max_size=4)


@given(parts, parts)
def test_keyed_digest_differs_for_different_parts(first, second):
    # The parts are joined with the unit separator U+001F, which never occurs in the values hashed
    # (purposes, channels, hex digests, digit codes).
    if first != second:
        assert keyed_digest(KEY, *first) != keyed_digest(KEY, *second)


@given(st.binary())
def test_same_is_true_for_equal_values_in_either_type(value):
    assert same(value, bytes(value))
    text = value.hex()
    assert same(text, text.encode())
    assert same(text.encode(), text)


@given(st.binary(), st.binary())
def test_same_is_false_for_different_values(first, second):
    if first != second:
        assert not same(first, second)
        assert not same(first.hex(), second.hex())


def test_same_compares_non_ascii_text():
    assert same("验证码", "验证码")
    assert same("验证码", "验证码".encode())
    assert not same("验证码", "验证吗")


@given(st.binary())
def test_b64_is_unpadded_urlsafe_base64(data):
    encoded = b64(data)
    assert "=" not in encoded
    assert re.fullmatch(r"[A-Za-z0-9_-]*", encoded)
    assert base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)) == data
