"""A new recovery key: API.md "Credentials" (POST /me/recovery-key); the old key stops working."""

from __future__ import annotations

import json
import re

from credentials_testing import NEW_PASSWORD, WRONG_PASSWORD, bearer, events, login, me, notices, reset_by_key
from passport_testing import STRONG_PASSWORD, register_account

RECOVERY_KEY = re.compile(r"[A-Z2-9]{5}(?:-[A-Z2-9]{5}){4}")
KEY = "/api/v1/me/recovery-key"


def regenerate(client, token: str, password: str = STRONG_PASSWORD):
    return client.post(KEY, json={"password": password}, headers=bearer(token))


def test_a_new_key_replaces_the_old_one(client, rt):
    done = register_account(client, rt)
    answer = regenerate(client, done["session"]["token"])

    assert answer.status_code == 201, answer.text
    new_key = answer.json()["recovery_key"]
    assert set(answer.json()) == {"recovery_key"}
    assert RECOVERY_KEY.fullmatch(new_key) and new_key != done["recovery_key"]
    old = reset_by_key(client, done["phone"], done["recovery_key"])
    assert old.status_code == 400 and old.json()["code"] == "invalid_code"
    assert login(client, done["phone"], STRONG_PASSWORD).status_code == 201
    assert reset_by_key(client, done["phone"], new_key).status_code == 204
    assert login(client, done["phone"], NEW_PASSWORD).status_code == 201


def test_the_key_is_stored_only_as_an_argon2_hash_and_audited(client, rt):
    from passport.accounts.models import Account

    done = register_account(client, rt)
    new_key = regenerate(client, done["session"]["token"]).json()["recovery_key"]
    with rt.db.read() as db:
        stored = db.get(Account, done["account"]["id"]).recovery_key_hash
    assert stored.startswith("$argon2id$") and new_key not in stored
    [event] = events(rt, done["account"]["id"], "recovery_key.regenerated")
    assert event["result"] == "ok" and event["actor_id"] == done["account"]["id"]
    assert new_key not in json.dumps(event)


def test_the_owner_is_told_by_sms_without_the_key(client, rt):
    done = register_account(client, rt)
    new_key = regenerate(client, done["session"]["token"]).json()["recovery_key"]
    [notice] = notices(rt, done["phone"], "recovery_key_changed")
    assert "恢复密钥" in notice["text"] and "如非本人操作请立即冻结账号" in notice["text"]
    assert new_key not in json.dumps(notice)


def test_a_wrong_password_keeps_the_old_key(client, rt):
    done = register_account(client, rt)
    answer = regenerate(client, done["session"]["token"], WRONG_PASSWORD)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_password"
    assert answer.json()["errors"][0]["field"] == "password"
    [failure] = events(rt, done["account"]["id"], "recovery_key.regenerate")
    assert failure["result"] == "failed" and failure["reason"] == "wrong_password"
    assert me(client, done["session"]["token"]).status_code == 200
    assert reset_by_key(client, done["phone"], done["recovery_key"]).status_code == 204


def test_password_checks_share_one_budget_per_account(client, rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "password_check_per_hour", 2)
    done = register_account(client, rt)
    token = done["session"]["token"]
    assert regenerate(client, token, WRONG_PASSWORD).status_code == 400
    assert client.put("/api/v1/me/password", headers=bearer(token), json={
        "current_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD}).status_code == 400
    assert regenerate(client, token).status_code == 429


def test_a_new_key_needs_a_session(client):
    answer = client.post(KEY, json={"password": STRONG_PASSWORD})
    assert answer.status_code == 401 and answer.json()["code"] == "not_authenticated"
