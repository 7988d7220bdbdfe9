"""Resident ID numbers (GB 11643-1999) and the residence permits of Hong Kong, Macao and Taiwan
residents that share its format; person names and their masks (COMPLIANCE R1, D5).

``110105194912310029``: six-digit address code, birth date ``YYYYMMDD``, three-digit sequence, and
an ISO 7064 MOD 11-2 check character (``0-9`` or ``X``; a lower-case ``x`` is accepted and stored
upper-case).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

LENGTH = 18
EARLIEST_BIRTH_YEAR = 1900
# GB/T 2260 province-level codes, plus 81/82/83 of the residence permits for Hong Kong, Macao and
# Taiwan residents (港澳台居民居住证, 2018), which use the same 18-character format.
PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42",
    "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82", "83",
})
# ISO 7064 MOD 11-2: weight of position i (from the left, 0-based) is 2^(17-i) mod 11.
WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
CHECK_CHARACTERS = "10X98765432"  # indexed by the weighted sum mod 11
_SEPARATORS = re.compile(r"[\s\-\u00a0\u3000]")
_FULLWIDTH = str.maketrans("０１２３４５６７８９ｘＸ", "0123456789xX")


class InvalidIdNumber(ValueError):
    """``part`` names what is wrong: length, format, region, date, sequence or check."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part


@dataclass(frozen=True)
class ResidentId:
    number: str
    region: str
    birth_date: date
    sequence: str

    @property
    def is_residence_permit(self) -> bool:
        return self.region[:2] in ("81", "82", "83")

    def age_on(self, day: date) -> int:
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def check_character(body: str) -> str:
    """The check character of the first 17 digits."""
    return CHECK_CHARACTERS[sum(int(c) * w for c, w in zip(body, WEIGHTS, strict=True)) % 11]


def clean(raw: str) -> str:
    if not isinstance(raw, str):
        raise InvalidIdNumber("format", "the ID number must be text")
    return _SEPARATORS.sub("", raw.translate(_FULLWIDTH)).upper()


def parse_id_number(raw: str, today: date) -> ResidentId:
    """Check every part in turn and return the number with upper-case X, or raise InvalidIdNumber.
    ``today`` is the date where the holder lives: a birth date after it is refused."""
    number = clean(raw)
    if len(number) != LENGTH:
        raise InvalidIdNumber("length", f"the ID number has {len(number)} characters, not 18")
    if not (number[:17].isascii() and number[:17].isdigit()) or number[17] not in "0123456789X":
        raise InvalidIdNumber("format", "the first 17 characters must be digits and the last a digit or X")
    region = number[:6]
    if region[:2] not in PROVINCES:
        raise InvalidIdNumber("region", f"{region[:2]} is not a province code")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdNumber("date", "the birth date is not a real date") from None
    if born.year < EARLIEST_BIRTH_YEAR:
        raise InvalidIdNumber("date", f"the birth year is before {EARLIEST_BIRTH_YEAR}")
    if born > today:
        raise InvalidIdNumber("date", "the birth date is in the future")
    sequence = number[14:17]
    if sequence == "000":
        raise InvalidIdNumber("sequence", "the sequence code 000 is never issued")
    if number[17] != check_character(number[:17]):
        raise InvalidIdNumber("check", "the check character does not match")
    return ResidentId(number, region, born, sequence)


def is_id_number(raw: str, today: date) -> bool:
    try:
        parse_id_number(raw, today)
    except InvalidIdNumber:
        return False
    return True


def mask_id_number(number: str) -> str:
    """``11010519491231002X`` → ``1101**********002X`` (GB/T 35273 §7.2)."""
    if len(number) != LENGTH:
        return "*" * len(number)
    return f"{number[:4]}{'*' * 10}{number[-4:]}"


# --- person names ------------------------------------------------------------------------------------

NAME_MIN, NAME_MAX = 2, 30
MIDDLE_DOT = "\u00b7"
# Dots people type between the parts of a transliterated name (阿卜杜·热合曼): one stored form.
_DOTS = str.maketrans({"\u2022": MIDDLE_DOT, "\u30fb": MIDDLE_DOT, "\uff65": MIDDLE_DOT, "\u2027": MIDDLE_DOT,
                       "\u22c5": MIDDLE_DOT, "\u0387": MIDDLE_DOT, "\uff0e": MIDDLE_DOT})
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


class InvalidName(ValueError):
    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part


def normalize_person_name(raw: str) -> str:
    """A name as on the ID card: 2-30 Chinese characters, parts joined by single middle dots."""
    if not isinstance(raw, str):
        raise InvalidName("characters", "the name must be text")
    name = unicodedata.normalize("NFC", raw.strip()).translate(_DOTS)
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise InvalidName("length", "the name must be 2 to 30 characters")
    if name[0] == MIDDLE_DOT or name[-1] == MIDDLE_DOT or MIDDLE_DOT * 2 in name:
        raise InvalidName("dot", "a middle dot goes only between two parts of the name")
    if not all(c == MIDDLE_DOT or _HAN.fullmatch(c) for c in name):
        raise InvalidName("characters", "the name must be Chinese characters as on the ID card")
    return name


def mask_person_name(name: str) -> str:
    """``张三`` → ``张*``, ``张小三`` → ``张*三``: the public never sees a real name (后台实名，前台自愿)."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
