from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from passport.errors import DomainError
from passport.security.policy import MAX_LENGTH, check_password, password_problems

PHONE = "+8613812345678"
STRONG = "Qz7!mountain-Lark"
LEAKED = frozenset(FREQUENCY_LISTS["passwords"])


def test_a_strong_password_has_no_problems():
    assert password_problems(STRONG) == []
    assert password_problems(STRONG, phone=PHONE) == []
    check_password(STRONG, phone=PHONE)


@pytest.mark.parametrize("password", [
    "Tr0ub4dor&3", "correct-Horse-battery-9", "长城Great-Wall-8848", "Xk9#vLq2",
])
def test_other_strong_passwords_pass(password):
    assert password_problems(password, phone=PHONE) == []


@pytest.mark.parametrize("password", ["", "Aa1!", "Qz7!mou"])
def test_a_password_under_eight_characters_is_too_short(password):
    assert "too_short" in password_problems(password)


def test_eight_characters_is_long_enough():
    assert "too_short" not in password_problems("Qz7!mqun")


@given(st.text(max_size=7))
def test_any_password_shorter_than_eight_is_refused(password):
    assert "too_short" in password_problems(password)
    with pytest.raises(DomainError) as info:
        check_password(password)
    assert "too_short" in [error.message for error in info.value.errors]


def test_a_password_over_the_maximum_length_is_refused():
    assert "too_long" in password_problems("Qz7!" + "mountain-Lark" * 10)
    assert len("Qz7!" + "mountain-Lark" * 10) > MAX_LENGTH


@pytest.mark.parametrize("password", [
    "mountainlark", "MOUNTAINLARK", "mountainLARK", "mountain-lark", "83917264051", "mountain8391",
    "密码密码密码密码ab",
])
def test_fewer_than_three_character_classes_is_refused(password):
    assert "too_few_classes" in password_problems(password)


@pytest.mark.parametrize("password", [
    "Mountain-lark", "mountain-lark7", "MOUNTAIN-LARK7", "Mountainlark7", "山川Mountainlark",
])
def test_three_character_classes_are_enough(password):
    assert "too_few_classes" not in password_problems(password)


def test_min_classes_and_length_are_configurable():
    assert password_problems("mountainlark", min_classes=1) == []
    assert "too_short" in password_problems(STRONG, min_length=20)


@pytest.mark.parametrize("password", [
    "Ab!13812345678", "x13812345678Y!", "Zq!c12345678",  # the whole number, or its last eight digits
    "Zq!1381234x", "+8613812345678Zq!",  # its first seven
])
def test_a_password_containing_the_phone_number_is_refused(password):
    assert "contains_phone" in password_problems(password, phone=PHONE)
    assert "contains_phone" not in password_problems(password)


def test_the_phone_rule_accepts_the_national_form_too():
    assert "contains_phone" in password_problems("Ab!13812345678", phone="13812345678")


def test_other_digits_do_not_count_as_the_phone_number():
    assert "contains_phone" not in password_problems("Zq!mountain-1399", phone=PHONE)


def test_the_common_password_list_is_the_one_the_examples_assume():
    # Facts about zxcvbn's list that the examples below rely on.
    assert {"password", "p@ssw0rd", "passw0rd", "password123", "qwerty123", "iloveyou", "admin123"} <= LEAKED
    assert "password123!" not in LEAKED
    assert "p@ssword" not in LEAKED


@pytest.mark.parametrize("password", [
    "Password123!",  # "password123" is listed; the "!" adds nothing
    "P@ssw0rd", "P@ssw0rd!", "P@ssw0rd123", "Passw0rd!",  # "p@ssw0rd" and "passw0rd" are listed
    "P@ssword1", "P@$$w0rd1", "Pa$$word1", "P@55w0rd!",  # l33t spellings of "password"
    "Qwerty123!", "Iloveyou1!", "Admin@123", "Letmein!1", "Football1!", "1qaz@WSX",
])
def test_common_passwords_and_their_variants_are_refused(password):
    assert "common_password" in password_problems(password)


@pytest.mark.parametrize("password", ["Password", "password1", "PASSWORD12", "Qwerty", "iloveyou"])
def test_common_passwords_are_refused_in_any_case(password):
    assert "common_password" in password_problems(password)


def test_a_listed_word_inside_a_strong_password_is_accepted():
    assert "common_password" not in password_problems("Wrong!password-7x")
    assert "common_password" not in password_problems(STRONG)  # contains "mountain"


def test_check_password_raises_weak_password_with_one_field_error_per_problem():
    password = "13812345678"
    problems = password_problems(password, phone=PHONE)
    assert set(problems) == {"too_few_classes", "contains_phone", "too_guessable"}
    with pytest.raises(DomainError) as info:
        check_password(password, phone=PHONE)
    error = info.value
    assert error.code == "weak_password"
    assert error.status == 422
    assert [(e.field, e.code, e.message) for e in error.errors] == [
        ("password", "weak_password", problem) for problem in problems
    ]


def test_check_password_reports_every_problem_at_once():
    with pytest.raises(DomainError) as info:
        check_password("pass", field="new_password")
    assert {e.message for e in info.value.errors} == {"too_short", "too_few_classes", "common_password"}
    assert {e.field for e in info.value.errors} == {"new_password"}


def test_check_password_returns_nothing_for_a_good_password():
    assert check_password(STRONG, phone=PHONE) is None


@pytest.mark.parametrize("password", ["12345678Aa", "iloveyou1A", "Woaini1314!", "Zhang@123456", "Aini5201314!"])
def test_guessable_and_chinese_common_passwords_are_refused(password):
    assert {"common_password", "too_guessable"} & set(password_problems(password))
