"""Masking of free text before it reaches a log or an audit detail.

Anything that looks like a mainland mobile number, an 18-digit ID number or an email address is
masked; keys that name secrets are dropped whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from passport.identity.email import mask_email
from passport.identity.phone import mask_phone

SECRET_KEYS = frozenset({
    "password", "new_password", "current_password", "code", "token", "recovery_key", "secret",
    "authorization", "cookie", "csrf", "mfa_token", "totp", "access_key_secret", "session",
})

_PHONE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
_ID_NUMBER = re.compile(r"(?<![\dA-Za-z])(\d{4})\d{10}(\d{3}[\dXx])(?![\dA-Za-z])")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def mask_text(text: str) -> str:
    text = _ID_NUMBER.sub(lambda m: f"{m.group(1)}**********{m.group(2).upper()}", text)
    text = _PHONE.sub(lambda m: mask_phone(m.group(1) + m.group(2) + m.group(3)), text)
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


def mask_value(key: str, value: Any) -> Any:
    if key.lower() in SECRET_KEYS:
        return "[redacted]"
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return mask_mapping(value)
    if isinstance(value, list | tuple):
        return [mask_value(key, v) for v in value]
    return value


def mask_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: mask_value(k, v) for k, v in data.items()}
