"""Unified social credit codes (GB 32100): properties, each wrong part named, and a differential test
against python-stdnum's independent ``stdnum.cn.uscc``."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import uscc as stdnum_uscc

from passport.identity.uscc import ALPHABET, InvalidUscc, check_character, is_uscc, normalize_uscc

codes_chars = st.sampled_from(ALPHABET)


@st.composite
def usccs(draw) -> str:
    head = draw(st.text(alphabet=ALPHABET, min_size=2, max_size=2))
    region = draw(st.text(alphabet="0123456789", min_size=6, max_size=6))
    organisation = draw(st.text(alphabet=ALPHABET, min_size=9, max_size=9))
    body = head + region + organisation
    return body + check_character(body)


def test_published_examples():
    for code in ("91110000600037341L", "91350100M000100Y43"):
        assert normalize_uscc(code) == code
        assert stdnum_uscc.is_valid(code)


@given(usccs(), st.sampled_from(["", " ", "-"]))
def test_valid_codes_normalise_from_how_people_type_them(code, separator):
    typed = f"{code[:2]}{separator}{code[2:8]}{separator}{code[8:]}".lower()
    assert normalize_uscc(typed) == code
    assert normalize_uscc(code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))) == code


@given(usccs(), st.integers(0, 17), st.integers(1, 30))
def test_any_single_substitution_is_caught(code, position, shift):
    changed = ALPHABET[(ALPHABET.index(code[position]) + shift) % 31]
    # 31 is prime and every weight is coprime with it: any one-character change moves the sum.
    assert not is_uscc(code[:position] + changed + code[position + 1:])


@given(usccs(), st.integers(0, 17), st.sampled_from("IOSVZ"))
def test_letters_outside_the_charset_are_refused_with_their_position(code, position, letter):
    with pytest.raises(InvalidUscc) as caught:
        normalize_uscc(code[:position] + letter + code[position + 1:])
    assert caught.value.part == "charset" and caught.value.position == position + 1


@given(st.text(max_size=30))
def test_anything_else_raises_only_invalid_uscc(text):
    try:
        normalize_uscc(text)
    except InvalidUscc as exc:
        assert exc.part in ("length", "charset", "region", "check")


def part_of(code: str) -> str:
    with pytest.raises(InvalidUscc) as caught:
        normalize_uscc(code)
    return caught.value.part


def test_each_wrong_part_is_named():
    assert part_of("91110000600037341") == "length"
    assert part_of("91110000600037341LL") == "length"
    assert part_of("9111000060003734IL") == "charset"
    body = "9111A000600037341"
    assert part_of(body + check_character(body)) == "region"
    assert part_of("91110000600037341M") == "check"


@given(usccs())
def test_check_character_agrees_with_stdnum(code):
    assert stdnum_uscc.calc_check_digit(code[:17]) == code[17]


def test_validity_agrees_with_stdnum_on_generated_codes():
    """stdnum wants the first eight characters to be digits; GB 32100 allows letters in the first two
    (registration authority and category, e.g. Y and N). Everywhere else the two must agree."""
    rng = random.Random(11714)
    compared = both_valid = 0
    for _ in range(6000):
        body = (rng.choice("123456789Y") + rng.choice("1239") + "".join(rng.choice("0123456789") for _ in range(6))
                + "".join(rng.choice(ALPHABET) for _ in range(9)))
        code = body + (check_character(body) if rng.random() < 0.7 else rng.choice(ALPHABET))
        roll = rng.random()
        if roll < 0.05:
            code = code[:rng.randrange(18)]
        elif roll < 0.15:
            position = rng.randrange(18)
            code = code[:position] + rng.choice(ALPHABET + "IOSVZ-a") + code[position + 1:]
        mine, theirs = is_uscc(code), stdnum_uscc.is_valid(code)
        compared += 1
        both_valid += mine and theirs
        if mine != theirs:
            assert mine and not code[:2].isdigit(), code
    assert compared == 6000 and both_valid > 3000
