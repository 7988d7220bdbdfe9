from __future__ import annotations

import base64
import os

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st

from passport.security.crypto import (
    BlindIndex,
    CryptoError,
    Field,
    FieldCipher,
    new_key_b64,
    parse_key_list,
    parse_keyring,
)

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(32, 64))
HEADER = 2 + len("k1")  # version, kid length, kid
NONCE = 12
TAG = 16
ROW = "0123456789abcdef0123456789abcdef"
F = {name: Field("accounts", name.split(".")[1] + "_enc", name)
     for name in ("account.phone", "account.email", "account.real_name", "account.id_number")}


@pytest.fixture(scope="module")
def cipher() -> FieldCipher:
    return FieldCipher([("k1", KEY_1)])


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@given(st.text())
def test_encrypt_then_decrypt_returns_the_plaintext(plaintext):
    cipher = FieldCipher([("k1", KEY_1)])
    assert cipher.decrypt(cipher.encrypt(plaintext, F["account.phone"], ROW), F["account.phone"], ROW) == plaintext


@pytest.mark.parametrize("plaintext", [
    "张三", "+8613812345678", "11010119900307123X", "", "北京市海淀区 100080",
])
def test_chinese_and_identifier_values_round_trip(cipher, plaintext):
    blob = cipher.encrypt(plaintext, F["account.real_name"], ROW)
    assert cipher.decrypt(blob, F["account.real_name"], ROW) == plaintext
    if plaintext:
        assert plaintext.encode() not in blob


def test_ciphertext_carries_version_and_key_id(cipher):
    plaintext = "+8613812345678"
    blob = cipher.encrypt(plaintext, F["account.phone"], ROW)
    assert blob[0] == 2
    assert blob[1] == 2
    assert blob[2:4] == b"k1"
    assert FieldCipher.key_id(blob) == "k1"
    assert len(blob) == HEADER + NONCE + len(plaintext.encode()) + TAG


def test_two_encryptions_of_one_value_use_different_nonces(cipher):
    first = cipher.encrypt("+8613812345678", F["account.phone"], ROW)
    second = cipher.encrypt("+8613812345678", F["account.phone"], ROW)
    assert first[HEADER:HEADER + NONCE] != second[HEADER:HEADER + NONCE]
    assert first != second


def test_old_ciphertext_still_decrypts_after_a_new_active_key_is_added():
    old = FieldCipher([("k1", KEY_1)])
    blob = old.encrypt("张三", F["account.real_name"], ROW)
    rotated = FieldCipher([("k2", KEY_2), ("k1", KEY_1)])
    assert rotated.active_kid == "k2"
    assert rotated.decrypt(blob, F["account.real_name"], ROW) == "张三"
    assert rotated.needs_reencryption(blob)


def test_new_writes_use_the_new_active_key():
    rotated = FieldCipher([("k2", KEY_2), ("k1", KEY_1)])
    blob = rotated.encrypt("张三", F["account.real_name"], ROW)
    assert FieldCipher.key_id(blob) == "k2"
    assert not rotated.needs_reencryption(blob)
    with pytest.raises(CryptoError, match="'k2'"):
        FieldCipher([("k1", KEY_1)]).decrypt(blob, F["account.real_name"], ROW)


def test_reencrypting_moves_a_value_to_the_active_key():
    blob = FieldCipher([("k1", KEY_1)]).encrypt("alice@example.com", F["account.email"], ROW)
    rotated = FieldCipher([("k2", KEY_2), ("k1", KEY_1)])
    fresh = rotated.encrypt(rotated.decrypt(blob, F["account.email"], ROW), F["account.email"], ROW)
    assert FieldCipher([("k2", KEY_2)]).decrypt(fresh, F["account.email"], ROW) == "alice@example.com"


def test_ciphertext_is_bound_to_its_field(cipher):
    blob = cipher.encrypt("+8613812345678", F["account.phone"], ROW)
    with pytest.raises(InvalidTag):
        cipher.decrypt(blob, F["account.email"], ROW)


def test_a_key_id_pointing_at_another_configured_key_fails(cipher):
    both = FieldCipher([("k1", KEY_1), ("k2", KEY_2)])
    blob = both.encrypt("张三", F["account.real_name"], ROW)
    relabelled = blob[:2] + b"k2" + blob[4:]
    with pytest.raises(InvalidTag):
        both.decrypt(relabelled, F["account.real_name"], ROW)


@given(st.data())
def test_changing_any_byte_after_the_key_id_fails_authentication(data):
    cipher = FieldCipher([("k1", KEY_1)])
    blob = bytearray(cipher.encrypt("110101199003071234", F["account.id_number"], ROW))
    position = data.draw(st.integers(HEADER, len(blob) - 1))
    blob[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(InvalidTag):
        cipher.decrypt(bytes(blob), F["account.id_number"], ROW)


@given(st.data())
def test_cutting_or_extending_the_ciphertext_fails(data):
    cipher = FieldCipher([("k1", KEY_1)])
    blob = cipher.encrypt("110101199003071234", F["account.id_number"], ROW)
    if data.draw(st.booleans()):
        damaged = blob[:data.draw(st.integers(0, len(blob) - 1))]
    else:
        damaged = blob + data.draw(st.binary(min_size=1, max_size=8))
    with pytest.raises((CryptoError, InvalidTag)):
        cipher.decrypt(damaged, F["account.id_number"], ROW)


@pytest.mark.parametrize("damage", [
    lambda blob: b"",
    lambda blob: blob[:1],
    lambda blob: blob[:HEADER + 5],
    lambda blob: bytes([1, 200]) + blob[2:],  # key id longer than the blob
    lambda blob: blob[:2] + b"\xff\xfe" + blob[4:],  # key id that is not UTF-8
])
def test_malformed_ciphertext_raises_crypto_error(cipher, damage):
    with pytest.raises(CryptoError):
        cipher.decrypt(damage(cipher.encrypt("张三", F["account.real_name"], ROW)), F["account.real_name"], ROW)


def test_an_unknown_version_is_refused(cipher):
    blob = cipher.encrypt("张三", F["account.real_name"], ROW)
    with pytest.raises(CryptoError, match="version"):
        cipher.decrypt(b"\x03" + blob[1:], F["account.real_name"], ROW)


def test_an_unknown_key_id_raises_an_error_naming_it(cipher):
    blob = FieldCipher([("retired-2024", KEY_2)]).encrypt("张三", F["account.real_name"], ROW)
    with pytest.raises(CryptoError, match="'retired-2024'"):
        cipher.decrypt(blob, F["account.real_name"], ROW)


def test_parse_keyring_keeps_the_order_and_makes_the_first_key_active():
    keyring = parse_keyring(f" k2:{_b64(KEY_2)} , k1:{_b64(KEY_1)},")
    assert keyring == [("k2", KEY_2), ("k1", KEY_1)]
    assert FieldCipher(keyring).active_kid == "k2"


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_parse_keyring_refuses_keys_of_the_wrong_length_naming_the_key(size):
    with pytest.raises(CryptoError, match=rf"'old'.*32 bytes, got {size}"):
        parse_keyring(f"k1:{_b64(KEY_1)},old:{_b64(os.urandom(size))}")


@pytest.mark.parametrize("spec", [
    _b64(KEY_1), f"k1{_b64(KEY_1)}", f":{_b64(KEY_1)}", f"{'k' * 33}:{_b64(KEY_1)}",
])
def test_parse_keyring_refuses_entries_without_a_key_id(spec):
    with pytest.raises(CryptoError, match="kid:base64key"):
        parse_keyring(spec)


@pytest.mark.parametrize("spec", ["", " ", ",", " , "])
def test_parse_keyring_refuses_an_empty_keyring(spec):
    with pytest.raises(CryptoError, match="no encryption key"):
        parse_keyring(spec)


def test_new_key_b64_makes_a_usable_32_byte_key():
    first, second = new_key_b64(), new_key_b64()
    assert len(base64.b64decode(first)) == 32
    assert first != second
    assert parse_keyring(f"k1:{first}")[0][1] == base64.b64decode(first)


@given(st.sampled_from(["phone", "email", "id_number"]), st.text())
def test_blind_index_is_deterministic_per_kind_and_value(kind, value):
    index = BlindIndex(KEY_1)
    assert index(kind, value) == BlindIndex(KEY_1)(kind, value)
    assert len(index(kind, value)) == 32


@given(st.text())
def test_blind_index_differs_by_kind(value):
    index = BlindIndex(KEY_1)
    assert index("phone", value) != index("email", value)


@given(st.text(), st.text())
def test_blind_index_differs_by_value(first, second):
    if first != second:
        assert BlindIndex(KEY_1)("phone", first) != BlindIndex(KEY_1)("phone", second)


@given(st.text())
def test_blind_index_differs_by_key(value):
    assert BlindIndex(KEY_1)("phone", value) != BlindIndex(KEY_2)("phone", value)


@pytest.mark.parametrize("size", [0, 16, 31])
def test_blind_index_refuses_short_keys(size):
    with pytest.raises(CryptoError, match="at least 32 bytes"):
        BlindIndex(bytes(size))


def test_blind_index_accepts_keys_of_32_bytes_or_more():
    phone = "+8613812345678"
    assert BlindIndex(KEY_1)("phone", phone) != BlindIndex(KEY_1 + KEY_2)("phone", phone)


# --- row binding (version 2) and the version 1 format -----------------------------------------------

def _version_1(key: bytes, kid: str, plaintext: str, field_name: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(NONCE)
    return bytes([1, len(kid)]) + kid.encode() + nonce + AESGCM(key).encrypt(nonce, plaintext.encode(),
                                                                              field_name.encode())


def test_a_ciphertext_moved_to_another_row_does_not_decrypt(cipher):
    blob = cipher.encrypt("+8613812345678", F["account.phone"], ROW)
    with pytest.raises(InvalidTag):
        cipher.decrypt(blob, F["account.phone"], "another-row")


def test_a_ciphertext_moved_to_another_table_with_the_same_column_does_not_decrypt(cipher):
    blob = cipher.encrypt("+8613812345678", Field("accounts", "phone_enc", "account.phone"), ROW)
    with pytest.raises(InvalidTag):
        cipher.decrypt(blob, Field("staff", "phone_enc", "account.phone"), ROW)


def test_a_version_1_value_still_decrypts_and_asks_to_be_rewritten(cipher):
    blob = _version_1(KEY_1, "k1", "张三", "account.real_name")
    assert cipher.decrypt(blob, F["account.real_name"], ROW) == "张三"
    assert cipher.needs_reencryption(blob)
    assert not cipher.needs_reencryption(cipher.encrypt("张三", F["account.real_name"], ROW))
    with pytest.raises(InvalidTag):  # still bound to its field name
        cipher.decrypt(blob, F["account.id_number"], ROW)


def test_blind_index_lookup_gives_current_then_previous():
    rotating = BlindIndex([KEY_2, KEY_1])
    assert rotating.rotating and not BlindIndex(KEY_1).rotating
    assert rotating("phone", "+8613812345678") == BlindIndex(KEY_2)("phone", "+8613812345678")
    assert rotating.lookup("phone", "+8613812345678") == (BlindIndex(KEY_2)("phone", "+8613812345678"),
                                                          BlindIndex(KEY_1)("phone", "+8613812345678"))
    assert BlindIndex(KEY_1).lookup("phone", "x") == (BlindIndex(KEY_1)("phone", "x"),) * 2


def test_blind_index_takes_at_most_two_keys():
    with pytest.raises(CryptoError, match="two"):
        BlindIndex([KEY_1, KEY_2, KEY_1])


def test_parse_key_list_keeps_the_order_and_refuses_too_many():
    assert parse_key_list(f"{_b64(KEY_2)}, {_b64(KEY_1)}", "secret key", most=2) == [KEY_2, KEY_1]
    with pytest.raises(CryptoError, match="at most 2"):
        parse_key_list(",".join([_b64(KEY_1)] * 3), "secret key", most=2)
    with pytest.raises(CryptoError, match="no secret key"):
        parse_key_list(" , ", "secret key")
