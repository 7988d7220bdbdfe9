"""Mainland China mobile numbers (COMPLIANCE C1).

Accepted as typed (``13812345678``, ``+86 138 1234 5678``, ``8613812345678``, ``0086-138…``),
stored and returned as E.164 (``+8613812345678``). The prefix check is only a format check:
ownership is what the SMS code proves.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-().\u00a0\u3000]")
# [0-9], not \d: \d also matches other scripts' digits, which would store a second spelling of a number.
_MOBILE = re.compile(r"1[3-9][0-9]{9}")


class InvalidPhone(ValueError):
    pass


def normalize_phone(raw: str) -> str:
    """Return ``+86`` followed by the 11-digit number, or raise InvalidPhone."""
    if not isinstance(raw, str):
        raise InvalidPhone("phone must be a string")
    # Full-width digits and plus sign as typed on Chinese input methods.
    text = raw.strip().translate(_FULLWIDTH)
    text = _SEPARATORS.sub("", text)
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif text.startswith("86") and len(text) == 13:
        text = text[2:]
    if not _MOBILE.fullmatch(text):
        raise InvalidPhone(f"not a mainland mobile number: {mask_phone_input(raw)!r}")
    return "+86" + text


def is_phone(raw: str) -> bool:
    try:
        normalize_phone(raw)
    except InvalidPhone:
        return False
    return True


def national(phone: str) -> str:
    """``+8613812345678`` → ``13812345678``."""
    return phone.removeprefix("+86")


def mask_phone(phone: str) -> str:
    """``+8613812345678`` → ``138****5678`` (GB/T 35273 §7.2: hide the middle four digits)."""
    digits = national(phone)
    if len(digits) != 11:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[7:]}"


def mask_phone_input(raw: str) -> str:
    """Mask anything phone-like for messages and logs without assuming it is valid."""
    digits = re.sub(r"\D", "", str(raw))
    if len(digits) < 8:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


_FULLWIDTH = str.maketrans("０１２３４５６７８９＋－（）", "0123456789+-()")
