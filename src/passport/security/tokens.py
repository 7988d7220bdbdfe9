"""Random tokens and their at-rest digests.

Session tokens carry 256 bits from ``secrets``; only their SHA-256 is stored, which is enough for
values with that much entropy. Short codes are keyed (HMAC) instead, since six digits are
enumerable from a plain hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_numeric_code(length: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(length))


def new_recovery_key() -> str:
    """Five groups of five from a 32-letter alphabet without look-alikes: 125 bits."""
    chars = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(25))
    return "-".join(chars[i:i + 5] for i in range(0, 25, 5))


def normalize_recovery_key(raw: str) -> str:
    chars = "".join(c for c in raw.upper() if c.isalnum())
    return "-".join(chars[i:i + 5] for i in range(0, len(chars), 5))


def keyed_digest(key: bytes, *parts: str) -> bytes:
    # surrogatepass: a digest must never raise on odd input, whatever reached it
    return hmac.new(key, "\x1f".join(parts).encode("utf-8", "surrogatepass"), hashlib.sha256).digest()


def same(a: bytes | str, b: bytes | str) -> bool:
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    return hmac.compare_digest(a, b)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
