"""Changing the mobile number without handing the account to whoever knows the password (issue 15):
the old number's code on the normal path, a hold with "this was not me" links on the recovery-key
path, and every completed change ends the other sessions."""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select, update

from credentials_testing import WRONG_KEY, WRONG_PASSWORD, account_row, events, login, me, notices, send_code
from passport.accounts.models import EMAIL, Account
from passport.accounts.models import PHONE as PHONE_FIELD
from passport.credentials import phone as phone_change
from passport.credentials.models import PhoneChange
from passport.notify.models import InboxMessage, OutboxNotice
from passport.worker import run_once
from passport_testing import (
    STRONG_PASSWORD,
    bearer,
    deliver_notices,
    email_outbox_messages,
    last_code,
    new_phone,
    register_account,
)

PHONE = "/api/v1/me/phone"
HELD = "/api/v1/me/phone-change"
NOT_ME = "/api/v1/phone-changes/not-me"


def masked(phone: str) -> str:
    return f"{phone[:3]}****{phone[7:]}"


def old_code(client, rt, done: dict, token: str | None = None) -> str:
    rt.clock.advance(seconds=61)
    sent = client.post("/api/v1/me/verification-codes", json={"purpose": "change_phone_old"},
                       headers=bearer(token or done["session"]["token"]))
    assert sent.status_code == 202, sent.text
    return last_code(rt, done["phone"], "change_phone_old")


def change(client, token: str, phone: str, code: str, old: str | None, password: str = STRONG_PASSWORD):
    body = {"phone": phone, "code": code, "password": password} | ({"old_code": old} if old is not None else {})
    return client.put(PHONE, headers=bearer(token), json=body)


def hold(client, token: str, phone: str, code: str, key: str, password: str = STRONG_PASSWORD):
    return client.post(HELD, headers=bearer(token),
                       json={"phone": phone, "code": code, "recovery_key": key, "password": password})


def held_change(client, rt, done: dict | None = None, *, email: str | None = None) -> tuple[dict, str, dict]:
    """An account (with a verified email if given) whose change to a fresh number is held."""
    done = done or register_account(client, rt)
    if email:
        with rt.db.write() as db:
            db.execute(update(Account).where(Account.id == done["account"]["id"]).values(
                email_enc=rt.keys.cipher.encrypt(email, EMAIL, done["account"]["id"]),
                email_bidx=rt.keys.blind_index("email", email)))
    fresh = new_phone()
    answer = hold(client, done["session"]["token"], fresh, send_code(client, rt, fresh, "change_phone"),
                  done["recovery_key"])
    assert answer.status_code == 202, answer.text
    return done, fresh, answer.json()


def phone_of(rt, account_id: str) -> str:
    return rt.keys.cipher.decrypt(account_row(rt, account_id).phone_enc, PHONE_FIELD, account_id)


def not_me_link(rt, phone: str) -> str:
    [notice] = notices(rt, phone, "phone_change_held")
    return re.search(r"https?://\S+/phone-change/not-me\?token=\S+", notice["text"]).group(0)


def token_of(link: str) -> str:
    return parse_qs(urlparse(link).query)["token"][0]


# --- the normal path ---------------------------------------------------------------------------------

def test_a_thief_with_the_password_and_a_session_cannot_change_the_phone_without_the_old_numbers_code(client, rt):
    owner = register_account(client, rt)
    thief_token = login(client, owner["phone"], status=201).json()["token"]
    thiefs = new_phone()
    code = send_code(client, rt, thiefs, "change_phone")
    missing = change(client, thief_token, thiefs, code, None)
    assert missing.status_code == 400 and missing.json()["code"] == "old_code_required", missing.text
    assert missing.json()["errors"][0]["field"] == "old_code"
    # A code the owner asked for goes to the owner's phone; the thief can only guess.
    old_code(client, rt, owner, thief_token)
    guessed = change(client, thief_token, thiefs, code, "000000")
    assert guessed.status_code == 400 and guessed.json()["code"] == "invalid_old_code"
    assert phone_of(rt, owner["account"]["id"]) == "+86" + owner["phone"]
    assert me(client, owner["session"]["token"]).status_code == 200
    refused = events(rt, owner["account"]["id"], "phone.change")
    assert [(e["result"], e["reason"]) for e in refused] == [("failed", "old_code_required"),
                                                             ("failed", "invalid_old_code")]
    assert refused[0]["to"] == masked(thiefs) and thiefs not in json.dumps(refused)


def test_a_change_ends_every_other_session_and_rotates_this_ones_token(client, rt):
    done = register_account(client, rt)
    this, other = done["session"]["token"], login(client, done["phone"], status=201).json()["token"]
    fresh = new_phone()
    answer = change(client, this, fresh, send_code(client, rt, fresh, "change_phone"), old_code(client, rt, done))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["account"]["phone"] == masked(fresh) and body["token"] not in (this, other)
    assert me(client, body["token"]).status_code == 200
    assert me(client, this).status_code == 401 and me(client, other).status_code == 401
    [changed] = events(rt, done["account"]["id"], "phone.changed")
    assert changed["method"] == "old_phone_code" and changed["sessions_revoked"] == 1 and changed["session_rotated"]
    assert changed["from"] == masked(done["phone"]) and changed["to"] == masked(fresh)


def test_a_cookie_session_gets_its_new_cookie(client, rt):
    done = register_account(client, rt)
    fresh = new_phone()
    code, old = send_code(client, rt, fresh, "change_phone"), old_code(client, rt, done)
    client.cookies.set("passport_session", done["session"]["token"])
    client.cookies.set("passport_csrf", "csrf-value")
    answer = client.put(PHONE, headers={"X-CSRF-Token": "csrf-value"},
                        json={"phone": fresh, "code": code, "old_code": old, "password": STRONG_PASSWORD})
    assert answer.status_code == 200, answer.text
    assert answer.cookies.get("passport_session") == answer.json()["token"] != done["session"]["token"]
    client.cookies.clear()


# --- the recovery-key path: a hold -----------------------------------------------------------------

def test_a_held_change_tells_the_old_number_the_email_and_the_inbox_and_changes_nothing_yet(client, rt):
    address = f"owner-{uuid.uuid4().hex[:10]}@example.com"
    done, fresh, held = held_change(client, rt, email=address)
    assert held["status"] == "held" and held["phone"] == masked(fresh)
    assert held["seconds_left"] == rt.settings.phone_change_hold_days * 86400
    assert phone_of(rt, done["account"]["id"]) == "+86" + done["phone"]
    assert client.get(HELD, headers=bearer(done["session"]["token"])).json()["id"] == held["id"]
    link = not_me_link(rt, done["phone"])  # the SMS to the old number
    [mail] = [m for m in email_outbox_messages(rt) if m["to"] == address and m["purpose"] == "phone_change_held"]
    assert link in mail["text"] and masked(fresh) in mail["text"] and fresh not in mail["text"]
    inbox = client.get("/api/v1/me/messages", headers=bearer(done["session"]["token"])).json()["items"]
    assert any(link in m["text"] for m in inbox if m["title"] == "有人申请更换您的绑定手机号")
    # The link is signed when the notice is rendered: no stored row holds its token.
    with rt.db.read() as db:
        stored = [r.params for r in db.scalars(select(OutboxNotice).where(
            OutboxNotice.account_id == done["account"]["id"]))] + [r.params for r in db.scalars(
                select(InboxMessage).where(InboxMessage.account_id == done["account"]["id"]))]
        row = db.get(PhoneChange, held["id"])
    assert stored and not any(token_of(link) in p for p in stored)
    assert fresh.encode() not in row.new_phone_enc
    [event] = events(rt, done["account"]["id"], "phone.change_held")
    assert event["method"] == "recovery_key" and event["change"] == held["id"] and event["to"] == masked(fresh)


def test_the_hold_path_needs_the_recovery_key_and_one_change_at_a_time(client, rt):
    done = register_account(client, rt)
    token, fresh = done["session"]["token"], new_phone()
    code = send_code(client, rt, fresh, "change_phone")
    wrong_key = hold(client, token, fresh, code, WRONG_KEY)
    assert wrong_key.status_code == 400 and wrong_key.json()["code"] == "invalid_recovery_key"
    wrong_password = hold(client, token, fresh, code, done["recovery_key"], WRONG_PASSWORD)
    assert wrong_password.status_code == 400 and wrong_password.json()["code"] == "invalid_password"
    assert client.get(HELD, headers=bearer(token)).status_code == 404
    _, _, first = held_change(client, rt, done)
    other = new_phone()
    again = hold(client, token, other, send_code(client, rt, other, "change_phone"), done["recovery_key"])
    assert again.status_code == 409 and again.json()["code"] == "phone_change_pending"
    assert [e["reason"] for e in events(rt, done["account"]["id"], "phone.change")] == [
        "invalid_recovery_key", "wrong_password", "pending"]


def test_the_owner_cancels_a_held_change(client, rt):
    done, fresh, held = held_change(client, rt)
    token = done["session"]["token"]
    assert client.delete(HELD, headers=bearer(token)).status_code == 204
    assert client.get(HELD, headers=bearer(token)).status_code == 404
    assert client.delete(HELD, headers=bearer(token)).status_code == 404
    assert notices(rt, done["phone"], "phone_change_cancelled")
    [event] = events(rt, done["account"]["id"], "phone.change_cancelled")
    assert event["by"] == "owner" and event["change"] == held["id"]
    rt.clock.advance(days=rt.settings.phone_change_hold_days + 1)
    run_once(rt)
    assert phone_of(rt, done["account"]["id"]) == "+86" + done["phone"]
    with rt.db.read() as db:
        assert db.get(PhoneChange, held["id"]).new_phone_enc is None


def test_the_not_me_link_cancels_the_change_and_freezes_the_account(client, rt):
    done, fresh, held = held_change(client, rt)
    token = token_of(not_me_link(rt, done["phone"]))
    forged = client.post(NOT_ME, json={"token": held["id"] + ".AAAAAAAAAAAAAAAAAAAAAA"})
    assert forged.status_code == 400 and forged.json()["code"] == "invalid_link"
    answer = client.post(NOT_ME, json={"token": token})
    assert answer.status_code == 200 and answer.json() == {"frozen": True}, answer.text
    assert account_row(rt, done["account"]["id"]).status == "frozen"
    assert me(client, done["session"]["token"]).status_code == 401
    assert login(client, done["phone"]).json()["code"] == "account_frozen"
    again = client.post(NOT_ME, json={"token": token})
    assert again.status_code == 400 and again.json()["code"] == "invalid_link"  # single use
    [event] = events(rt, done["account"]["id"], "phone.change_cancelled")
    assert event["by"] == "not_me"
    [frozen] = events(rt, done["account"]["id"], "account.frozen")
    assert frozen["method"] == "phone_change_link"
    rt.clock.advance(days=rt.settings.phone_change_hold_days + 1)
    run_once(rt)
    assert phone_of(rt, done["account"]["id"]) == "+86" + done["phone"]


def test_a_freeze_by_the_old_number_cancels_the_held_change(client, rt):
    done, _, held = held_change(client, rt)
    code = send_code(client, rt, done["phone"], "freeze")
    assert client.post("/api/v1/account-freezes", json={"phone": done["phone"], "code": code}).status_code == 204
    with rt.db.read() as db:
        change = db.get(PhoneChange, held["id"])
        assert (change.status, change.outcome, change.new_phone_enc) == ("cancelled", "frozen", None)


def test_an_expired_hold_is_applied_by_the_worker_and_ends_every_session(client, rt):
    done, fresh, held = held_change(client, rt)
    other = login(client, done["phone"], status=201).json()["token"]
    rt.clock.advance(days=rt.settings.phone_change_hold_days, seconds=-60)
    assert phone_change.apply_due(rt) == 0  # not yet
    assert phone_of(rt, done["account"]["id"]) == "+86" + done["phone"]
    rt.clock.advance(seconds=61)
    assert run_once(rt)["phone_changes"] == 1
    assert phone_of(rt, done["account"]["id"]) == "+86" + fresh
    assert me(client, done["session"]["token"]).status_code == 401 and me(client, other).status_code == 401
    assert login(client, fresh).status_code == 201 and login(client, done["phone"]).status_code == 401
    assert notices(rt, done["phone"], "phone_changed")  # to the old number
    [event] = events(rt, done["account"]["id"], "phone.changed")
    assert event["method"] == "recovery_key" and event["change"] == held["id"] and event["sessions_revoked"] == 2
    with rt.db.read() as db:
        change = db.get(PhoneChange, held["id"])
        assert (change.status, change.new_phone_enc) == ("applied", None)
    assert client.post(NOT_ME, json={"token": phone_change.not_me_token(rt, held["id"])}).status_code == 400


def test_a_hold_whose_number_was_taken_meanwhile_fails_without_saying_why(client, rt):
    done, fresh, held = held_change(client, rt)
    rt.clock.advance(seconds=61)
    register_account(client, rt, phone=fresh)  # the number's holder registers it during the hold
    rt.clock.advance(days=rt.settings.phone_change_hold_days + 1)
    assert phone_change.apply_due(rt) == 1
    assert phone_of(rt, done["account"]["id"]) == "+86" + done["phone"]
    assert events(rt, done["account"]["id"], "phone.changed") == []
    [told] = notices(rt, done["phone"], "phone_change_failed")
    assert "注册" not in told["text"] and "registered" not in told["text"]
    [event] = events(rt, done["account"]["id"], "phone.change_failed")
    assert event["reason"] == "phone_taken"


@pytest.mark.parametrize("path", ["normal", "hold"])
def test_a_number_held_by_another_account_is_named_only_after_its_code(client, rt, path):
    done, other = register_account(client, rt), register_account(client, rt)
    token = done["session"]["token"]
    if path == "normal":
        wrong = change(client, token, other["phone"], "000000", old_code(client, rt, done))
        proved = change(client, token, other["phone"], send_code(client, rt, other["phone"], "change_phone"),
                        old_code(client, rt, done))
    else:
        wrong = hold(client, token, other["phone"], "000000", done["recovery_key"])
        proved = hold(client, token, other["phone"], send_code(client, rt, other["phone"], "change_phone"),
                      done["recovery_key"])
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_code"
    assert proved.status_code == 409 and proved.json()["code"] == "phone_taken"
    deliver_notices(rt)


def test_operators_list_and_cancel_held_changes(client, rt, monkeypatch):
    from typer.testing import CliRunner

    from passport.cli import app as cli_app

    monkeypatch.setenv("PASSPORT_ENV", "test")
    monkeypatch.setenv("PASSPORT_DATABASE_URL", rt.settings.resolved_database_url)
    monkeypatch.setenv("PASSPORT_DATA_DIR", str(rt.settings.data_dir))
    if rt.settings.redis_url:
        monkeypatch.setenv("PASSPORT_REDIS_URL", rt.settings.redis_url)
    monkeypatch.setattr("passport.logs.configure_logging", lambda *args, **kwargs: None)
    done, fresh, held = held_change(client, rt)
    listed = CliRunner().invoke(cli_app, ["phone-changes", "list"])
    assert listed.exit_code == 0, listed.output
    [row] = [json.loads(line) for line in listed.output.splitlines() if held["id"] in line]
    assert row["account_id"] == done["account"]["id"] and row["phone"] == masked(fresh)
    assert fresh not in listed.output
    cancelled = CliRunner().invoke(cli_app, ["phone-changes", "cancel", done["account"]["id"]])
    assert cancelled.exit_code == 0, cancelled.output
    assert events(rt, done["account"]["id"], "phone.change_cancelled")[0]["by"] == "operator"
    assert notices(rt, done["phone"], "phone_change_cancelled")
    again = CliRunner().invoke(cli_app, ["phone-changes", "cancel", done["account"]["id"]])
    assert again.exit_code == 2 and "not_found" in again.output
