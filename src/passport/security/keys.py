"""Key material: from settings (inline or file://) or, in dev and test, generated under the data dir."""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from passport.security.crypto import (
    BlindIndex,
    CryptoError,
    FieldCipher,
    MacKeyring,
    new_key_b64,
    parse_key_list,
    parse_keyring,
)
from passport.settings import Settings


@dataclass(frozen=True)
class Keys:
    cipher: FieldCipher
    blind_index: BlindIndex
    secret: bytes  # HMAC key for verification codes, second-step login tokens and unsubscribe links
    audit: MacKeyring  # the audit chain's HMAC keys (PASSPORT_AUDIT_KEYS)
    # The current secret first, then the previous one while it rotates: what was made with either is
    # accepted, what is made now uses the current one.
    secrets: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not self.secrets:
            object.__setattr__(self, "secrets", (self.secret,))


def dev_keys_file(settings: Settings) -> Path:
    return settings.data_dir / "keys" / "dev-keys.json"


def ensure_dev_keys(settings: Settings) -> dict[str, str]:
    path = dev_keys_file(settings)
    if path.exists():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    keys = {
        "encryption_keys": f"dev1:{new_key_b64()}",
        "blind_index_key": new_key_b64(),
        "secret_key": new_key_b64(),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(keys, indent=2))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return keys


def load_keys(settings: Settings) -> Keys:
    values = {name: settings.secret(name) for name in ("encryption_keys", "blind_index_key", "secret_key")}
    if not all(values.values()):
        if not settings.is_dev:
            raise RuntimeError(
                "PASSPORT_ENCRYPTION_KEYS, PASSPORT_BLIND_INDEX_KEY and PASSPORT_SECRET_KEY are required")
        dev = ensure_dev_keys(settings)
        values = {name: values[name] or dev[name] for name in values}
    secrets = parse_key_list(values["secret_key"], "secret key", most=2)
    return Keys(
        cipher=FieldCipher(parse_keyring(values["encryption_keys"])),
        blind_index=BlindIndex(parse_key_list(values["blind_index_key"], "blind index key", most=2)),
        secret=secrets[0],
        secrets=tuple(secrets),
        audit=load_audit_keys(settings, secrets[0]),
    )


# The key of ``Session.info`` under which every session of the runtime's database carries ``Keys.audit``.
AUDIT_KEYS = "passport.audit_keys"

# Dev and test only: the audit key is derived from the secret key, so every process on one data
# dir (server, worker, CLI) signs and verifies with the same key.
DEV_AUDIT_KID = "dev"


def load_audit_keys(settings: Settings, secret: bytes) -> MacKeyring:
    """PASSPORT_AUDIT_KEYS ("kid:base64(32 bytes)", first signs); required outside dev and test."""
    spec = settings.secret("audit_keys")
    if not spec:
        if not settings.is_dev:
            raise RuntimeError("PASSPORT_AUDIT_KEYS is required")
        return MacKeyring([(DEV_AUDIT_KID, hmac.digest(secret, b"passport audit chain key (dev and test)", "sha256"))])
    try:
        return MacKeyring(parse_keyring(spec, "audit key"))
    except (CryptoError, ValueError) as error:
        raise RuntimeError(f"PASSPORT_AUDIT_KEYS: {error}") from None
