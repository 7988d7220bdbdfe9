"""Field encryption (AES-256-GCM) and blind indexes (HMAC-SHA256) for personal data at rest.

Ciphertext layout: ``version | len(kid) | kid | nonce(12) | ciphertext+tag``. The key id inside the
ciphertext lets keys rotate: new writes use the first (active) key, reads find theirs by id.

The AES-GCM associated data binds the value to its place. Version 2 (every new write) binds the
table, the column and the row's id, so a ciphertext copied to another row or column does not
decrypt. Version 1 (older rows) bound the field name only; it still decrypts until
``passport keys rotate`` has rewritten it as version 2.

Blind indexes take one key, or two while they rotate (the first current, the second previous): a
look-up asks for both digests, writes use the current one (``passport keys rotate`` recomputes the
stored ones, after which the previous key can go).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

LEGACY_VERSION = 1  # associated data: the field name
VERSION = 2  # associated data: table, column and row id
SEALED = "sealed"  # Column.info key: the column holds ciphertexts of this Field
INDEXED = "blind_index"  # Column.info key: the column holds the blind index described by this Indexed


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


@dataclass(frozen=True)
class Field:
    """Where ciphertexts live: ``table.column``, and the field name version 1 ciphertexts were bound to."""

    table: str
    column: str
    legacy: str

    def bound_to(self, row_id: str | int) -> bytes:
        return f"{self.table}\x1f{self.column}\x1f{row_id}".encode()


@dataclass(frozen=True)
class Indexed:
    """A blind-index column: its kind, the column holding the value encrypted, and the normalisation
    applied before hashing (e.g. email addresses compare case-insensitively)."""

    kind: str
    source: str
    normalize: object = None

    def of(self, value: str) -> str:
        return self.normalize(value) if callable(self.normalize) else value


class FieldCipher:
    def __init__(self, keyring: list[tuple[str, bytes]]) -> None:
        self.active_kid, active = keyring[0]
        self._active = AESGCM(active)
        self._by_kid = {kid: AESGCM(key) for kid, key in keyring}

    @property
    def key_ids(self) -> list[str]:
        return list(self._by_kid)

    def encrypt(self, plaintext: str, field: Field, row_id: str | int) -> bytes:
        kid = self.active_kid.encode()
        nonce = os.urandom(12)
        sealed = self._active.encrypt(nonce, plaintext.encode(), field.bound_to(row_id))
        return bytes([VERSION, len(kid)]) + kid + nonce + sealed

    def decrypt(self, blob: bytes, field: Field, row_id: str | int) -> str:
        if not blob or blob[0] not in (VERSION, LEGACY_VERSION):
            raise CryptoError("unknown ciphertext version")
        if len(blob) < 2 or len(blob) < 2 + blob[1] + 12 + 16:
            raise CryptoError("ciphertext is truncated")
        kid_len = blob[1]
        kid = blob[2:2 + kid_len].decode(errors="replace")
        nonce = blob[2 + kid_len:14 + kid_len]
        aead = self._by_kid.get(kid)
        if aead is None:
            raise CryptoError(f"ciphertext was made with key {kid!r}, which is not configured")
        associated = field.bound_to(row_id) if blob[0] == VERSION else field.legacy.encode()
        return aead.decrypt(nonce, blob[14 + kid_len:], associated).decode()

    @staticmethod
    def key_id(blob: bytes) -> str:
        return blob[2:2 + blob[1]].decode(errors="replace")

    def needs_reencryption(self, blob: bytes) -> bool:
        """Made with another key than the active one, or in the version 1 format."""
        return blob[0] != VERSION or self.key_id(blob) != self.active_kid


def parse_key_list(spec: str, name: str, most: int | None = None) -> list[bytes]:
    """``"BASE64,BASE64"`` (the first current, the others previous ones, still accepted) → keys."""
    keys = [base64.b64decode(item) for item in filter(None, (p.strip() for p in spec.split(",")))]
    if not keys:
        raise CryptoError(f"no {name} configured")
    if most is not None and len(keys) > most:
        raise CryptoError(f"at most {most} {name}s (the current one, then the previous one)")
    return keys


class BlindIndex:
    """Deterministic keyed digest of a normalised value, for equality look-ups on encrypted data.

    With two keys (during a rotation) ``__call__`` gives the current digest, which writes store, and
    ``lookup`` both, which reads match with ``IN``."""

    def __init__(self, key: bytes | list[bytes]) -> None:
        keys = [key] if isinstance(key, bytes) else list(key)
        if not keys or len(keys) > 2:
            raise CryptoError("one blind index key, or two while rotating (the current one first)")
        if any(len(k) < 32 for k in keys):
            raise CryptoError("blind index key must be at least 32 bytes")
        self._keys = keys

    @property
    def rotating(self) -> bool:
        return len(self._keys) > 1

    def __call__(self, kind: str, normalized_value: str) -> bytes:
        return self._digest(self._keys[0], kind, normalized_value)

    def lookup(self, kind: str, normalized_value: str) -> tuple[bytes, bytes]:
        """The current digest and the previous key's (the current one twice when not rotating)."""
        return (self._digest(self._keys[0], kind, normalized_value),
                self._digest(self._keys[-1], kind, normalized_value))

    @staticmethod
    def _digest(key: bytes, kind: str, normalized_value: str) -> bytes:
        return hmac.new(key, f"{kind}:{normalized_value}".encode(), hashlib.sha256).digest()


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
