"""Unified social credit codes of organisations (GB 32100-2015, COMPLIANCE R2).

``91110000600037341L``: registration authority (1 character), organisation category (1), address
code (6 digits), organisation code (9), check character (1); every character from
``0-9 A-Z`` without I, O, S, V and Z; check = (31 - sum(value × 3^(i-1) mod 31) mod 31) mod 31.
"""

from __future__ import annotations

import re

LENGTH = 18
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALUES = {c: i for i, c in enumerate(ALPHABET)}
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_SEPARATORS = re.compile(r"[\s\-\u00a0\u3000]")
_FULLWIDTH = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)}
                           | {chr(0xFF21 + i): chr(0x41 + i) for i in range(26)}
                           | {chr(0xFF41 + i): chr(0x61 + i) for i in range(26)})


class InvalidUscc(ValueError):
    """``part`` names what is wrong: length, charset, region or check."""

    def __init__(self, part: str, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.part = part
        self.position = position


def check_character(body: str) -> str:
    """The check character of the first 17 characters."""
    total = sum(VALUES[c] * w for c, w in zip(body, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def normalize_uscc(raw: str) -> str:
    """The code upper-cased without spaces or dashes, or raise InvalidUscc."""
    if not isinstance(raw, str):
        raise InvalidUscc("charset", "the code must be text")
    code = _SEPARATORS.sub("", raw.translate(_FULLWIDTH)).upper()
    if len(code) != LENGTH:
        raise InvalidUscc("length", f"the code has {len(code)} characters, not 18")
    for position, c in enumerate(code, start=1):
        if c not in VALUES:
            raise InvalidUscc("charset", f"character {position} is not one of 0-9 and A-Z without I O S V Z",
                              position)
    if not (code[2:8].isascii() and code[2:8].isdigit()):
        raise InvalidUscc("region", "characters 3 to 8 (the address code) must be digits")
    if code[17] != check_character(code[:17]):
        raise InvalidUscc("check", "the check character does not match", 18)
    return code


def is_uscc(raw: str) -> bool:
    try:
        normalize_uscc(raw)
    except InvalidUscc:
        return False
    return True
