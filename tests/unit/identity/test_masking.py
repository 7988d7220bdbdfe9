from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from passport.identity.masking import SECRET_KEYS, mask_mapping, mask_text

ASCII = re.ASCII
# Filler between identifiers: words (Latin and Chinese) around at least one separator, and no digits
# or "@", so every identifier in the text is one identifier and not part of a longer one. Words touch
# the identifiers, as in "手机13812345678" or "ID110101199003071234".
words = st.text(st.sampled_from(list("abcxyzABCXYZ") + list("手机号身份证邮箱请联系我")), max_size=4)
separators = st.sampled_from(list(" \t\n,;:/()[]{}'\"!?#&|~，。、；：（）"))
filler = st.builds("{}{}{}".format, words, separators, words)

mobiles = st.from_regex(re.compile(r"1[3-9][0-9]{9}", ASCII), fullmatch=True)
id_numbers = st.from_regex(re.compile(r"[1-9][0-9]{16}[0-9Xx]", ASCII), fullmatch=True)
emails = st.builds(
    "{}@{}.{}".format,
    st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-", min_size=1, max_size=20),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=15),
    st.sampled_from(["com", "cn", "org", "com.cn"]),
)


@st.composite
def typed_mobiles(draw) -> tuple[str, str]:
    digits = draw(mobiles)
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "86-", "86"]))
    a, b = draw(st.sampled_from(["", " ", "-"])), draw(st.sampled_from(["", " ", "-"]))
    return digits, f"{prefix}{digits[:3]}{a}{digits[3:7]}{b}{digits[7:]}"


identifiers = st.one_of(
    typed_mobiles().map(lambda t: ("phone", t[0], t[1])),
    id_numbers.map(lambda n: ("id", n, n)),
    emails.map(lambda e: ("email", e, e)),
)


@st.composite
def texts_with_identifiers(draw):
    found = draw(st.lists(identifiers, min_size=1, max_size=5))
    parts = [draw(filler)]
    for _, _, typed in found:
        parts += [typed, draw(filler)]
    return "".join(parts), found


def _without_separators(text: str) -> str:
    return re.sub(r"[\s\-+]", "", text)


@given(texts_with_identifiers())
def test_mask_text_leaves_no_mobile_number_id_number_or_email(case):
    text, found = case
    masked = mask_text(text)
    assert not re.search(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])", masked, ASCII)
    assert not re.search(r"[0-9]{17}[0-9Xx]", masked, ASCII)
    for kind, value, _ in found:
        if kind == "phone":
            assert value not in _without_separators(masked)
        elif kind == "id":
            assert value.upper() not in masked.upper()
        else:
            assert value not in masked


@given(mobiles, filler, filler)
def test_a_mobile_number_in_text_is_shown_as_first_three_and_last_four(digits, before, after):
    assert mask_text(before + digits + after) == before + digits[:3] + "****" + digits[7:] + after


@given(id_numbers, st.sampled_from(["ID", "id", "No", "x", "身份证", ""]),
       st.sampled_from(["", "X", "abc", "号"]))
def test_an_id_number_next_to_letters_is_still_masked(number, before, after):
    masked = mask_text(before + number + after)
    assert masked == before + number[:4] + "**********" + number[-4:].upper() + after


def test_masked_text_keeps_the_surrounding_words():
    text = "用户 13812345678 提交身份证 11010119900307123x，邮箱 alice@example.com。"
    assert mask_text(text) == "用户 138****5678 提交身份证 1101**********123X，邮箱 a***@example.com。"


def test_a_mobile_number_used_as_an_email_local_part_is_hidden():
    masked = mask_text("13812345678@qq.com")
    assert "13812345678" not in masked
    assert masked.endswith("@qq.com")


def test_longer_digit_runs_are_not_mistaken_for_phone_numbers():
    order = "order 2024061213812345678"
    assert mask_text(order) == order


secret_keys = st.sampled_from(sorted(SECRET_KEYS)).flatmap(
    lambda k: st.sampled_from([k, k.upper(), k.capitalize()]))
plain_keys = st.sampled_from(["action", "account_id", "reason", "detail", "items", "by", "purpose"])
secret_values = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=12, max_size=24).map(
    lambda s: f"S3CR3T{s}")


def _nested(key: str, value, path: list[str]):
    """Put ``{key: value}`` at the end of ``path``, where "[]" means "inside a list"."""
    node = {key: value}
    for step in reversed(path):
        node = [node] if step == "[]" else {step: node}
    return node


@given(secret_keys, secret_values, st.lists(st.one_of(plain_keys, st.just("[]")), max_size=6))
def test_mask_mapping_drops_secret_values_at_any_depth(key, secret, path):
    data = {"action": "login", "nested": _nested(key, secret, path)}
    masked = mask_mapping(data)
    dumped = json.dumps(masked, ensure_ascii=False)
    assert secret not in dumped
    assert "[redacted]" in dumped
    assert masked["action"] == "login"


def test_mask_mapping_redacts_each_secret_key_and_keeps_the_rest():
    data = {k: f"value-of-{k}" for k in SECRET_KEYS} | {"reason": "wrong_password", "attempts": 3}
    masked = mask_mapping(data)
    assert {k: masked[k] for k in SECRET_KEYS} == dict.fromkeys(SECRET_KEYS, "[redacted]")
    assert masked["reason"] == "wrong_password"
    assert masked["attempts"] == 3


def test_mask_mapping_redacts_a_whole_structure_under_a_secret_key():
    masked = mask_mapping({"session": {"id": "abc", "token": "t0k3n"}, "code": ["123456", "654321"]})
    assert masked == {"session": "[redacted]", "code": "[redacted]"}


def test_mask_mapping_masks_identifiers_in_nested_strings_and_lists():
    data = {"to": "+8613812345678", "events": [{"who": "alice@example.com"}, ("11010119900307123X",)]}
    assert mask_mapping(data) == {
        "to": "138****5678",
        "events": [{"who": "a***@example.com"}, ["1101**********123X"]],
    }


def test_mask_mapping_does_not_change_its_input():
    data = {"password": "hunter2hunter2", "inner": {"token": "abc"}}
    mask_mapping(data)
    assert data == {"password": "hunter2hunter2", "inner": {"token": "abc"}}


@pytest.mark.parametrize("key", ["old_password", "access_token", "refresh_token", "sms_code",
                                 "password_confirm", "client_secret", "Recovery_Key"])
def test_keys_that_name_secrets_are_redacted_whatever_their_prefix(key):
    assert mask_mapping({key: "s3cret-value"}) == {key: "[redacted]"}


@pytest.mark.parametrize("key", ["status_code", "provider_code", "purpose", "channel"])
def test_ordinary_keys_are_kept(key):
    assert mask_mapping({key: "kept"}) == {key: "kept"}


@given(st.sampled_from([32, 40, 64, 128]), st.data())
def test_record_ids_and_hex_digests_are_kept_whole_even_with_a_phone_like_run(length, data):
    """A chain hash with "13812345678" inside must still name its record after masking."""
    prefix = data.draw(st.text("0123456789abcdef", max_size=length - 11))
    rest = data.draw(st.text("0123456789abcdef", min_size=length - 11 - len(prefix),
                             max_size=length - 11 - len(prefix)))
    value = prefix + "13812345678" + rest
    assert mask_mapping({"last_removed_hash": value, "about": [value]}) == {"last_removed_hash": value,
                                                                             "about": [value]}


def test_a_phone_number_padded_to_digest_length_with_other_characters_is_still_masked():
    assert mask_mapping({"note": "13812345678" + "z" * 53}) != {"note": "13812345678" + "z" * 53}
    assert "13812345678" not in mask_mapping({"note": "tel 13812345678 " + "a" * 48})["note"]
