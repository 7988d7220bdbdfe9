from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from passport.identity.phone import (
    InvalidPhone,
    is_phone,
    mask_phone,
    mask_phone_input,
    national,
    normalize_phone,
)

E164_MOBILE = re.compile(r"\+861[3-9][0-9]{9}", re.ASCII)
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

mobiles = st.from_regex(re.compile(r"1[3-9][0-9]{9}", re.ASCII), fullmatch=True)
prefixes = st.sampled_from(
    ["", "+86", "+86 ", "+86-", "86", "86 ", "0086", "0086 ", "0086-", "(+86) ", "＋８６ "])
separators = st.sampled_from(["", "", " ", "-", "\u3000", "\u00a0"])


@st.composite
def typed_forms(draw) -> tuple[str, str]:
    """A valid mobile number and one way a person could type it."""
    digits = draw(mobiles)
    shown = digits.translate(FULLWIDTH) if draw(st.booleans()) else digits
    body = "".join(c + draw(separators) for c in shown[:-1]) + shown[-1]
    padding = draw(st.sampled_from(["", " ", "\t", "\u3000"]))
    return digits, f"{padding}{draw(prefixes)}{body}{padding}"


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdecimal())


@given(typed_forms())
def test_every_typed_form_of_a_mobile_normalises_to_e164(case):
    digits, typed = case
    assert normalize_phone(typed) == "+86" + digits


@pytest.mark.parametrize("typed", [
    "13812345678", "+86 138 1234 5678", "8613812345678", "+8613812345678", "0086 138 1234 5678",
    "0086-138-1234-5678", "138-1234-5678", "１３８１２３４５６７８", "＋８６ １３８ １２３４ ５６７８",
    " 138 1234 5678 ",
])
def test_documented_examples_normalise_to_the_same_number(typed):
    assert normalize_phone(typed) == "+8613812345678"


@given(typed_forms())
def test_normalisation_is_idempotent(case):
    _, typed = case
    once = normalize_phone(typed)
    assert normalize_phone(once) == once
    assert normalize_phone(national(once)) == once


@given(st.text())
def test_any_input_either_raises_invalid_phone_or_gives_an_ascii_e164_mobile(raw):
    try:
        result = normalize_phone(raw)
    except InvalidPhone:
        return
    assert E164_MOBILE.fullmatch(result), result


@pytest.mark.parametrize("raw", [
    "138١٢٣٤٥٦٧٨",  # Arabic-Indic digits would be stored as a second spelling of the same number
    "١٣٨١٢٣٤٥٦٧٨",
    "१३८१२३४५६७८",  # Devanagari
])
def test_digits_from_other_scripts_are_refused(raw):
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


foreign_digits = st.characters(categories=["Nd"]).filter(lambda c: c not in "0123456789０１２３４５６７８９")


@given(mobiles, st.integers(0, 10), foreign_digits)
def test_a_digit_from_another_script_anywhere_is_refused(digits, position, digit):
    with pytest.raises(InvalidPhone):
        normalize_phone(digits[:position] + digit + digits[position + 1:])


@given(st.from_regex(re.compile(r"1[0-2][0-9]{9}", re.ASCII), fullmatch=True), prefixes)
def test_numbers_starting_10_11_or_12_are_refused(digits, prefix):
    with pytest.raises(InvalidPhone):
        normalize_phone(prefix + digits)


@given(st.from_regex(re.compile(r"1[3-9]([0-9]{8}|[0-9]{10})", re.ASCII), fullmatch=True))
def test_ten_or_twelve_digit_numbers_are_refused(digits):
    assert len(digits) in (10, 12)
    with pytest.raises(InvalidPhone):
        normalize_phone(digits)
    with pytest.raises(InvalidPhone):
        normalize_phone("+86" + digits)


@given(mobiles, st.integers(0, 10), st.characters(categories=["Lu", "Ll", "Lo"]))
def test_a_letter_anywhere_in_the_number_is_refused(digits, position, letter):
    with pytest.raises(InvalidPhone):
        normalize_phone(digits[:position] + letter + digits[position + 1:])


@given(mobiles, st.integers(0, 11), st.characters(categories=["Lu", "Ll", "Lo"]))
def test_a_letter_inserted_into_the_number_is_refused(digits, position, letter):
    with pytest.raises(InvalidPhone):
        normalize_phone(digits[:position] + letter + digits[position:])


@pytest.mark.parametrize("raw", ["", " ", "\u3000", "+86", "0086", "86", "--", "tel:13812345678"])
def test_empty_or_prefix_only_input_is_refused(raw):
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


@pytest.mark.parametrize("raw", [None, 13812345678, b"13812345678"])
def test_non_string_input_is_refused(raw):
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


texts_with_digits = st.builds(
    "{}{}{}".format, st.text(max_size=10),
    st.text(st.one_of(st.sampled_from("0123456789０１２３４５６７８９"), st.characters(categories=["Nd"])),
            min_size=1, max_size=20),
    st.text(max_size=10),
)


@given(st.one_of(texts_with_digits, typed_forms().map(lambda case: case[1] + "9")))
def test_invalid_phone_message_never_contains_the_full_input_digits(raw):
    digits = _digits(raw)
    assume(not is_phone(raw))
    with pytest.raises(InvalidPhone) as info:
        normalize_phone(raw)
    message = str(info.value)
    assert digits not in message
    assert len(_digits(message)) <= 7


@given(st.from_regex(re.compile(r"[0-9]{8,20}", re.ASCII), fullmatch=True))
def test_invalid_phone_message_for_long_digit_strings_masks_the_middle(digits):
    assume(not is_phone(digits))
    with pytest.raises(InvalidPhone) as info:
        normalize_phone(digits)
    message = str(info.value)
    assert digits not in message
    assert digits[:3] + "*" * (len(digits) - 7) + digits[-4:] in message


@given(mobiles)
def test_mask_phone_keeps_first_three_and_last_four(digits):
    masked = mask_phone("+86" + digits)
    assert masked == digits[:3] + "****" + digits[7:]
    assert mask_phone(digits) == masked
    assert len(_digits(masked)) == 7


def test_mask_phone_example_from_the_api():
    assert mask_phone("+8613812345678") == "138****5678"


@pytest.mark.parametrize("odd", ["+86123", "1234567890123", ""])
def test_mask_phone_hides_everything_when_not_eleven_digits(odd):
    assert set(mask_phone(odd)) <= {"*"}


@given(st.text())
def test_mask_phone_input_never_reveals_more_than_seven_digits(raw):
    masked = mask_phone_input(raw)
    assert len(_digits(masked)) <= 7
    digits = _digits(raw)
    if len(digits) >= 8:
        assert digits not in masked


@given(st.from_regex(re.compile(r"[0-9]{0,7}", re.ASCII), fullmatch=True))
def test_mask_phone_input_hides_short_inputs_entirely(digits):
    assert mask_phone_input(digits) == "*" * len(digits)


@given(typed_forms())
def test_is_phone_agrees_with_normalize_phone(case):
    _, typed = case
    assert is_phone(typed)
    assert not is_phone(typed + "0")
