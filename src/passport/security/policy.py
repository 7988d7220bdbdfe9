"""Password policy (COMPLIANCE C5, 等保2.0 身份鉴别).

At least 8 characters and 3 of 4 character classes; must not contain the phone number; must not
be a common password (zxcvbn's frequency list of leaked passwords) or trivially guessable.
"""

from __future__ import annotations

import re
from functools import lru_cache

from passport.errors import DomainError, FieldError

MAX_LENGTH = 128
_CLASSES = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"\d"), re.compile(r"[^a-zA-Z\d]"))


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    # zxcvbn (its lists are megabytes) is loaded on purpose on the first password check, not at import.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problems(password: str, *, phone: str | None = None, min_length: int = 8,
                      min_classes: int = 3) -> list[str]:
    """Return the stable codes of every rule the password breaks; empty when it is acceptable."""
    problems: list[str] = []
    if len(password) < min_length:
        problems.append("too_short")
    if len(password) > MAX_LENGTH:
        problems.append("too_long")
    if sum(1 for c in _CLASSES if c.search(password)) < min_classes:
        problems.append("too_few_classes")
    if phone:
        national = phone.removeprefix("+86")
        if national[-8:] in password or national[:7] in password:
            problems.append("contains_phone")
    lowered = password.lower()
    stripped = re.sub(r"[\d\W_]+$", "", lowered)
    score = _score(password)
    if lowered in _common_passwords() or (len(stripped) >= 4 and stripped in _common_passwords() and score < 3) \
            or _listed_in_leet(password) or _chinese_common(lowered):
        problems.append("common_password")
    elif score < 2:
        problems.append("too_guessable")
    return problems


def _listed_in_leet(password: str) -> bool:
    """``P@ssword1``, ``Pa$$word!``: a listed password in l33t spelling, then only digits or symbols."""
    from zxcvbn import zxcvbn  # loaded on first use, as above

    if not password:
        return False
    result = zxcvbn(password[:64])
    first = next(iter(result["sequence"]), None)
    return bool(first and result["score"] < 3 and first["pattern"] == "dictionary"
                and first.get("dictionary_name") == "passwords" and first["i"] == 0
                and re.fullmatch(r"[\d\W_]*", password[first["j"] + 1:64]))


# Bases of passwords common on Chinese sites that an English-centred list misses (pinyin phrases,
# "520"/"1314" love numbers), matched once digits and symbols are removed.
_CHINESE_BASES = frozenset({
    "woaini", "woaiwojia", "aini", "wodemima", "mima", "zhangwei", "wangwei", "woshishui", "nihao",
    "laopo", "laogong", "baobao", "qwe", "qwer", "asdf", "zxcv", "abc", "a", "aa", "qq", "wang", "zhang", "li",
    "liu", "chen", "yang", "huang", "zhao", "zhou", "wu", "xu", "sun", "ma", "zhu", "hu", "guo", "he", "lin",
})


def _chinese_common(lowered: str) -> bool:
    letters = re.sub(r"[^a-z]", "", lowered)
    digits = re.sub(r"\D", "", lowered)
    love_numbers = any(n in digits for n in ("5201314", "1314520", "1314", "520"))
    return letters in _CHINESE_BASES and (love_numbers or len(set(digits)) <= 2 or digits in "0123456789")


def _score(password: str) -> int:
    from zxcvbn import zxcvbn  # loaded on first use, as above

    return zxcvbn(password[:64])["score"] if password else 0


def check_password(password: str, *, phone: str | None = None, min_length: int = 8,
                   min_classes: int = 3, field: str = "password") -> None:
    problems = password_problems(password, phone=phone, min_length=min_length, min_classes=min_classes)
    if problems:
        raise DomainError(
            "weak_password",
            "The password is too weak: use at least 8 characters with 3 of: lower case, upper case, "
            "digits, symbols; not your phone number and not a common password.",
            422,
            [FieldError(field, "weak_password", p) for p in problems],
        )
