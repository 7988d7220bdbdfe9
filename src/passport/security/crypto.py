"""Field encryption (AES-256-GCM) and blind indexes (HMAC-SHA256) for personal data at rest.

Ciphertext layout: ``0x01 | len(kid) | kid | nonce(12) | ciphertext+tag``. The key id inside the
ciphertext lets keys rotate: new writes use the first (active) key, reads find theirs by id.
The field name is bound as associated data, so a value cannot be moved to another column.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = 1


class CryptoError(ValueError):
    pass


def parse_keyring(spec: str, what: str = "encryption key") -> list[tuple[str, bytes]]:
    """``"k2:BASE64,k1:BASE64"`` → ``[("k2", key), ("k1", key)]``; the first is active."""
    keys = []
    for item in filter(None, (p.strip() for p in spec.split(","))):
        kid, sep, b64 = item.partition(":")
        if not sep or not kid or len(kid) > 32:
            raise CryptoError(f"{what}s are 'kid:base64key' separated by commas")
        key = base64.b64decode(b64)
        if len(key) != 32:
            raise CryptoError(f"{what} {kid!r} must be 32 bytes, got {len(key)}")
        keys.append((kid, key))
    if not keys:
        raise CryptoError(f"no {what} configured")
    return keys


class FieldCipher:
    def __init__(self, keyring: list[tuple[str, bytes]]) -> None:
        self.active_kid, active = keyring[0]
        self._active = AESGCM(active)
        self._by_kid = {kid: AESGCM(key) for kid, key in keyring}

    def encrypt(self, plaintext: str, field: str) -> bytes:
        kid = self.active_kid.encode()
        nonce = os.urandom(12)
        sealed = self._active.encrypt(nonce, plaintext.encode(), field.encode())
        return bytes([VERSION, len(kid)]) + kid + nonce + sealed

    def decrypt(self, blob: bytes, field: str) -> str:
        if not blob or blob[0] != VERSION:
            raise CryptoError("unknown ciphertext version")
        if len(blob) < 2 or len(blob) < 2 + blob[1] + 12 + 16:
            raise CryptoError("ciphertext is truncated")
        kid_len = blob[1]
        kid = blob[2:2 + kid_len].decode(errors="replace")
        nonce = blob[2 + kid_len:14 + kid_len]
        aead = self._by_kid.get(kid)
        if aead is None:
            raise CryptoError(f"ciphertext was made with key {kid!r}, which is not configured")
        return aead.decrypt(nonce, blob[14 + kid_len:], field.encode()).decode()

    @staticmethod
    def key_id(blob: bytes) -> str:
        return blob[2:2 + blob[1]].decode()

    def needs_reencryption(self, blob: bytes) -> bool:
        return self.key_id(blob) != self.active_kid


class BlindIndex:
    """Deterministic keyed digest of a normalised value, for equality look-ups on encrypted data."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise CryptoError("blind index key must be at least 32 bytes")
        self._key = key

    def __call__(self, kind: str, normalized_value: str) -> bytes:
        return hmac.new(self._key, f"{kind}:{normalized_value}".encode(), hashlib.sha256).digest()


class MacKeyring:
    """HMAC-SHA256 keys by key id (the audit chain's): the first signs what is new, each record and
    anchor names the id of the key that signed it, and a verifier looks that key up."""

    def __init__(self, keyring: list[tuple[str, bytes]]) -> None:
        self.current_kid, self.current = keyring[0]
        self._by_kid = dict(keyring)

    def key(self, kid: str | None) -> bytes | None:
        return self._by_kid.get(kid) if kid else None

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._by_kid)


def new_key_b64() -> str:
    return base64.b64encode(os.urandom(32)).decode()
