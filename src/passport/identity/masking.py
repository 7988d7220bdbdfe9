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

_SECRET_PARTS = ("password", "token", "secret", "recovery_key", "cookie")


def is_secret_key(key: str) -> bool:
    """Exact secret names, and any key that names a password, token, secret or code
    (``old_password``, ``access_token``, ``sms_code``)."""
    lowered = key.lower()
    return (lowered in SECRET_KEYS or any(part in lowered for part in _SECRET_PARTS)
            or lowered.endswith("_code") and lowered not in _NOT_SECRET_CODES)


_NOT_SECRET_CODES = frozenset({"error_code", "status_code", "provider_code", "country_code", "template_code"})

_PHONE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
# Bounded by digits only: "ID110101199003071234" is still an ID number (GB/T 35273 §7.2).
_ID_NUMBER = re.compile(r"(?<!\d)(\d{4})\d{10}(\d{3}[\dXx])(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Record ids (32 hex digits) and digests (SHA-1/256/512 in hex) are not personal data, and a digit
# run inside one must stay as it is: a masked chain hash would no longer name its record.
_HEX_ID_OR_DIGEST = re.compile(r"[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}|[0-9a-f]{128}")


def mask_text(text: str) -> str:
    text = _ID_NUMBER.sub(lambda m: f"{m.group(1)}**********{m.group(2).upper()}", text)
    text = _PHONE.sub(lambda m: mask_phone(m.group(1) + m.group(2) + m.group(3)), text)
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


def mask_value(key: str, value: Any) -> Any:
    if is_secret_key(key):
        return "[redacted]"
    if isinstance(value, str):
        return value if _HEX_ID_OR_DIGEST.fullmatch(value) else mask_text(value)
    if isinstance(value, Mapping):
        return mask_mapping(value)
    if isinstance(value, list | tuple):
        return [mask_value(key, v) for v in value]
    return value


def mask_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: mask_value(k, v) for k, v in data.items()}
