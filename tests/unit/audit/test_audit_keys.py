"""The audit chain's keys (PASSPORT_AUDIT_KEYS) and MAC pieces: how keys load in each environment,
and that the HMAC pads PostgreSQL hashes around a record's link give exactly Python's HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from passport.audit.service import GENESIS, _pads, content, record_key, record_mac
from passport.security.keys import DEV_AUDIT_KID, load_audit_keys
from passport.settings import Settings

KEY = base64.b64encode(bytes(range(32))).decode()
OLD = base64.b64encode(bytes(32)).decode()
ROW = {"at": datetime(2026, 12, 8, tzinfo=UTC), "actor_type": "user", "actor_id": "a", "subject_type": None,
       "subject_id": None, "action": "login.succeeded", "result": "ok", "ip": "127.0.0.1", "user_agent": "ua",
       "details": '{"channel":"api"}'}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("PASSPORT_"):
            monkeypatch.delenv(name)


def test_configured_keys_sign_with_the_first_and_verify_with_any():
    keys = load_audit_keys(Settings(audit_keys=f"a2:{KEY},a1:{OLD}"), b"secret")
    assert (keys.current_kid, keys.current) == ("a2", bytes(range(32)))
    assert keys.key("a1") == bytes(32) and keys.key("a3") is None and keys.key(None) is None
    assert keys.kids == ("a2", "a1")


def test_dev_and_test_derive_a_key_from_the_secret_key():
    one = load_audit_keys(Settings(env="test"), b"secret one")
    assert one.current_kid == DEV_AUDIT_KID and len(one.current) == 32
    assert load_audit_keys(Settings(env="dev"), b"secret one").current == one.current
    assert load_audit_keys(Settings(env="test"), b"secret two").current != one.current


def test_prod_without_audit_keys_is_refused():
    settings = Settings.model_construct(env="prod")  # past the settings check, as load_keys is
    with pytest.raises(RuntimeError, match="PASSPORT_AUDIT_KEYS is required"):
        load_audit_keys(settings, b"secret")


@pytest.mark.parametrize("spec", [f"a1:{OLD[:8]}", "nokey", "a1:!!!"])
def test_malformed_audit_keys_are_named(spec):
    with pytest.raises(RuntimeError, match="PASSPORT_AUDIT_KEYS"):
        load_audit_keys(Settings(audit_keys=spec), b"secret")


def test_the_pads_postgresql_hashes_make_the_same_mac_as_python():
    key = record_key(bytes(range(32)), "a1", content(ROW))
    ipad, opad = _pads(key)
    message = (GENESIS + "ab" * 32).encode()
    spelled_out = hashlib.sha256(opad + hashlib.sha256(ipad + message).digest()).hexdigest()
    assert spelled_out == record_mac(key, GENESIS, "ab" * 32) == hmac.new(key, message, "sha256").hexdigest()


def test_the_record_key_depends_on_the_audit_key_its_id_and_every_content_field():
    key = record_key(bytes(range(32)), "a1", content(ROW))
    assert record_key(bytes(32), "a1", content(ROW)) != key
    assert record_key(bytes(range(32)), "a2", content(ROW)) != key
    for name in ROW:
        changed = ROW | {name: "x" if name != "at" else datetime(2026, 12, 9, tzinfo=UTC)}
        assert record_key(bytes(range(32)), "a1", content(changed)) != key, name
