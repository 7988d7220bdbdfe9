"""Change and reset the password: API.md "Credentials", COMPLIANCE C2 (change, reset by phone) and C5
(policy, lock); enumeration safety on /password-resets and /verification-codes."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from credentials_testing import (
    CODES,
    NEW_PASSWORD,
    RESETS,
    WRONG_KEY,
    WRONG_PASSWORD,
    account_row,
    assert_password_unchanged,
    bearer,
    events,
    login,
    me,
    notices,
    reset_by_code,
    reset_by_key,
)
from credentials_testing import send_code as send_any_code
from passport.credentials.models import VerificationCode
from passport_testing import STRONG_PASSWORD, last_code, new_phone, register_account

PASSWORD = "/api/v1/me/password"


def send_code(client, rt, phone: str, purpose: str = "reset_password") -> str:
    return send_any_code(client, rt, phone, purpose)


def change(client, token: str, current: str, new: str):
    return client.put(PASSWORD, json={"current_password": current, "new_password": new}, headers=bearer(token))


def assert_invalid_code(answer, field: str = "code") -> dict:
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["code"] == "invalid_code"
    assert [e["field"] for e in body["errors"]] == [field]
    return body


# --- change password -------------------------------------------------------------------------------

def test_change_password_ends_every_session_and_rotates_this_one(client, rt):
    # Issue 15: the session that changed the password gets a new token; the one it used (perhaps
    # stolen along with the password) answers 401 like every other session of the account.
    done = register_account(client, rt)
    phone, other = done["phone"], done["session"]["token"]
    current = login(client, phone, STRONG_PASSWORD).json()["token"]

    answer = change(client, current, STRONG_PASSWORD, NEW_PASSWORD)

    assert answer.status_code == 200, answer.text
    issued = answer.json()
    assert set(issued) == {"id", "token", "expires_at"}
    assert issued["token"] not in (current, other)
    assert me(client, issued["token"]).status_code == 200
    for ended in (current, other):
        gone = me(client, ended)
        assert gone.status_code == 401 and gone.json()["code"] == "not_authenticated"
    assert change(client, current, NEW_PASSWORD, "Zq7#another-Pass").status_code == 401
    assert login(client, phone, STRONG_PASSWORD).status_code == 401
    assert login(client, phone, NEW_PASSWORD).status_code == 201
    [event] = events(rt, done["account"]["id"], "password.changed")
    assert event["result"] == "ok" and event["sessions_revoked"] == 1 and event["actor_id"] == done["account"]["id"]
    assert event["session_rotated"] is True
    listed = client.get("/api/v1/sessions", headers=bearer(issued["token"])).json()
    assert [s["id"] for s in listed if s["current"]] == [issued["id"]]


def test_change_password_with_a_cookie_sets_the_new_cookie(client, rt):
    done = register_account(client, rt)
    old = done["session"]["token"]
    client.cookies.set("passport_session", old)
    client.cookies.set("passport_csrf", "csrf-value")
    answer = client.put(PASSWORD, json={"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD},
                        headers={"X-CSRF-Token": "csrf-value"})
    assert answer.status_code == 200, answer.text
    new = answer.cookies.get("passport_session")
    assert new == answer.json()["token"] != old
    client.cookies.clear()
    client.cookies.set("passport_session", new)
    assert client.get("/api/v1/me").status_code == 200
    client.cookies.clear()
    assert me(client, old).status_code == 401


def test_change_password_notifies_the_owner_by_sms_without_the_password(client, rt):
    done = register_account(client, rt)
    assert change(client, done["session"]["token"], STRONG_PASSWORD, NEW_PASSWORD).status_code == 200

    [notice] = notices(rt, done["phone"], "password_changed")
    assert "密码已于" in notice["text"] and "修改" in notice["text"]
    assert "如非本人操作请立即冻结账号" in notice["text"] and "/account-stolen" in notice["text"]
    assert notice["code"] is None
    assert NEW_PASSWORD not in json.dumps(notice, ensure_ascii=False)
    assert STRONG_PASSWORD not in json.dumps(notice, ensure_ascii=False)


def test_wrong_current_password_changes_nothing_and_does_not_lock_login(client, rt):
    done = register_account(client, rt)
    phone, token = done["phone"], done["session"]["token"]
    other = login(client, phone, STRONG_PASSWORD).json()["token"]

    for _ in range(rt.settings.login_max_failures + 1):
        answer = change(client, token, WRONG_PASSWORD, NEW_PASSWORD)
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert body["code"] == "invalid_password"
        assert body["errors"] == [{"field": "current_password", "code": "invalid_password",
                                   "message": "当前密码错误。"}]

    assert me(client, other).status_code == 200
    assert account_row(rt, done["account"]["id"]).failed_logins == 0
    assert_password_unchanged(client, phone)  # and no login lock either
    assert not notices(rt, phone, "password_changed")
    failures = events(rt, done["account"]["id"], "password.change")
    assert len(failures) == rt.settings.login_max_failures + 1
    assert {f["result"] for f in failures} == {"failed"} and {f["reason"] for f in failures} == {"wrong_password"}


def test_current_password_checks_are_rate_limited_per_account(client, rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "password_check_per_hour", 3)
    done = register_account(client, rt)
    token = done["session"]["token"]
    for _ in range(3):
        assert change(client, token, WRONG_PASSWORD, NEW_PASSWORD).status_code == 400
    over = change(client, token, STRONG_PASSWORD, NEW_PASSWORD)
    assert over.status_code == 429 and over.json()["code"] == "rate_limited"
    assert int(over.headers["Retry-After"]) >= 1
    assert_password_unchanged(client, done["phone"])
    # Another account keeps its own budget.
    other = register_account(client, rt)
    assert change(client, other["session"]["token"], STRONG_PASSWORD, NEW_PASSWORD).status_code == 200


@pytest.mark.parametrize("weak", ["password", "short1!", "abcdefgh", "{national}Aa!"], ids=[
    "common", "too-short", "one-class", "contains-phone"])
def test_weak_new_password_is_refused_and_nothing_changes(client, rt, weak):
    done = register_account(client, rt)
    weak = weak.format(national=done["phone"])
    answer = change(client, done["session"]["token"], STRONG_PASSWORD, weak)
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "weak_password"
    assert {e["field"] for e in body["errors"]} == {"new_password"}
    assert_password_unchanged(client, done["phone"])


def test_new_password_must_differ_from_the_current_one(client, rt):
    done = register_account(client, rt)
    answer = change(client, done["session"]["token"], STRONG_PASSWORD, STRONG_PASSWORD)
    assert answer.status_code == 422
    assert answer.json()["code"] == "same_password"
    assert answer.json()["errors"][0]["field"] == "new_password"
    assert not events(rt, done["account"]["id"], "password.changed")


def test_change_password_needs_a_session_and_the_csrf_token_with_a_cookie(client, rt):
    done = register_account(client, rt)
    anonymous = client.put(PASSWORD, json={"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD})
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"

    client.cookies.set("passport_session", done["session"]["token"])
    client.cookies.set("passport_csrf", "csrf-value")
    body = {"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}
    forged = client.put(PASSWORD, json=body)
    assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed"
    assert_password_unchanged(client, done["phone"])
    assert client.put(PASSWORD, json=body, headers={"X-CSRF-Token": "csrf-value"}).status_code == 200


def test_change_password_refuses_unknown_fields(client, rt):
    done = register_account(client, rt)
    answer = client.put(PASSWORD, headers=bearer(done["session"]["token"]),
                        json={"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD, "admin": True})
    assert answer.status_code == 422 and answer.json()["code"] == "validation_failed"


# --- reset by SMS code -----------------------------------------------------------------------------

def test_reset_by_sms_code_ends_every_session_and_sets_the_new_password(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    other = login(client, phone, STRONG_PASSWORD).json()["token"]
    code = send_code(client, rt, phone)

    answer = reset_by_code(client, phone, code)

    assert answer.status_code == 204, answer.text
    for token in (done["session"]["token"], other):
        assert me(client, token).status_code == 401
    assert login(client, phone, STRONG_PASSWORD).status_code == 401
    assert login(client, phone, NEW_PASSWORD).status_code == 201
    [event] = events(rt, done["account"]["id"], "password.reset")
    assert event["result"] == "ok" and event["method"] == "sms_code" and event["sessions_revoked"] == 2


def test_reset_sends_a_notice_that_never_holds_the_new_password(client, rt):
    done = register_account(client, rt)
    code = send_code(client, rt, done["phone"])
    assert reset_by_code(client, done["phone"], code).status_code == 204

    [notice] = notices(rt, done["phone"], "password_reset")
    assert "密码已于" in notice["text"] and "重置" in notice["text"] and "如非本人操作请立即冻结账号" in notice["text"]
    assert NEW_PASSWORD not in json.dumps(notice, ensure_ascii=False)
    assert code not in notice["text"]


def test_reset_accepts_every_documented_phone_form(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    code = send_code(client, rt, phone)
    assert reset_by_code(client, f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}", code).status_code == 204
    assert login(client, phone, NEW_PASSWORD).status_code == 201


def test_reset_lifts_a_password_lock(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    for _ in range(rt.settings.login_max_failures):
        login(client, phone, WRONG_PASSWORD)
    assert account_row(rt, done["account"]["id"]).locked_until is not None
    code = send_code(client, rt, phone)
    assert reset_by_code(client, phone, code).status_code == 204
    row = account_row(rt, done["account"]["id"])
    assert row.locked_until is None and row.failed_logins == 0
    assert login(client, phone, NEW_PASSWORD).status_code == 201


def test_weak_new_password_leaves_the_code_usable(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    code = send_code(client, rt, phone)

    weak = reset_by_code(client, phone, code, "password1")
    assert weak.status_code == 422 and weak.json()["code"] == "weak_password"
    assert weak.json()["errors"][0]["field"] == "new_password"
    assert_password_unchanged(client, phone)
    assert me(client, done["session"]["token"]).status_code == 200

    assert reset_by_code(client, phone, code).status_code == 204
    assert login(client, phone, NEW_PASSWORD).status_code == 201


def test_a_code_works_once(client, rt):
    done = register_account(client, rt)
    code = send_code(client, rt, done["phone"])
    assert reset_by_code(client, done["phone"], code).status_code == 204
    again = reset_by_code(client, done["phone"], code, "Xq4!second-Osprey")
    assert_invalid_code(again)
    assert login(client, done["phone"], NEW_PASSWORD).status_code == 201


def test_an_expired_code_is_refused(client, rt):
    done = register_account(client, rt)
    code = send_code(client, rt, done["phone"])
    rt.clock.advance(seconds=rt.settings.code_ttl_seconds + 1)
    assert_invalid_code(reset_by_code(client, done["phone"], code))
    assert_password_unchanged(client, done["phone"])


@pytest.mark.parametrize("purpose", ["login", "freeze", "unfreeze"])
def test_a_code_of_another_purpose_is_refused(client, rt, purpose):
    done = register_account(client, rt)
    code = send_code(client, rt, done["phone"], purpose)
    assert_invalid_code(reset_by_code(client, done["phone"], code))
    assert_password_unchanged(client, done["phone"])
    # Unused, the code still does what it was sent for.
    if purpose == "login":
        assert client.post("/api/v1/sessions", json={"phone": done["phone"], "code": code}).status_code == 201


def test_a_code_sent_to_another_number_is_refused(client, rt):
    mine, theirs = register_account(client, rt), register_account(client, rt)
    code = send_code(client, rt, theirs["phone"])
    assert_invalid_code(reset_by_code(client, mine["phone"], code))
    assert_password_unchanged(client, mine["phone"])
    assert_password_unchanged(client, theirs["phone"])


def test_wrong_codes_are_counted_and_the_fifth_burns_the_code(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    code = send_code(client, rt, phone)
    wrong = [f"{(int(code) + i) % 10**6:06d}" for i in range(1, rt.settings.code_max_attempts + 1)]
    for guess in wrong:
        assert_invalid_code(reset_by_code(client, phone, guess))
    with rt.db.read() as db:
        attempts = db.scalar(select(VerificationCode.attempts).where(
            VerificationCode.target_bidx == rt.keys.blind_index("phone", "+86" + phone),
            VerificationCode.purpose == "reset_password"))
    assert attempts == rt.settings.code_max_attempts
    assert_invalid_code(reset_by_code(client, phone, code))
    assert_password_unchanged(client, phone)
    failures = events(rt, done["account"]["id"], "password.reset")
    assert len(failures) == rt.settings.code_max_attempts + 1
    assert {(f["result"], f["reason"], f["method"]) for f in failures} == {("failed", "invalid_code", "sms_code")}


# --- reset by recovery key -------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", [
    pytest.param(lambda k: k, id="as-shown"),
    pytest.param(lambda k: k.lower(), id="lower-case"),
    pytest.param(lambda k: k.replace("-", ""), id="no-dashes"),
    pytest.param(lambda k: " " + k.replace("-", " ") + " ", id="spaces"),
])
def test_reset_by_recovery_key(client, rt, spelling):
    done = register_account(client, rt)
    phone = done["phone"]
    answer = reset_by_key(client, phone, spelling(done["recovery_key"]))
    assert answer.status_code == 204, answer.text
    assert me(client, done["session"]["token"]).status_code == 401
    assert login(client, phone, NEW_PASSWORD).status_code == 201
    [event] = events(rt, done["account"]["id"], "password.reset")
    assert event["method"] == "recovery_key"
    assert len(notices(rt, phone, "password_reset")) == 1


def test_a_wrong_recovery_key_changes_nothing(client, rt):
    done = register_account(client, rt)
    someone_else = register_account(client, rt)
    for key in (WRONG_KEY, someone_else["recovery_key"], "x"):
        assert_invalid_code(reset_by_key(client, done["phone"], key), "recovery_key")
    assert_password_unchanged(client, done["phone"])
    assert me(client, done["session"]["token"]).status_code == 200
    failures = events(rt, done["account"]["id"], "password.reset")
    assert [f["reason"] for f in failures] == ["invalid_recovery_key"] * 3


def test_recovery_key_tries_are_limited_per_number(client, rt):
    done = register_account(client, rt)
    limit = rt.settings.recovery_key_per_phone_hour
    for _ in range(limit):
        assert_invalid_code(reset_by_key(client, done["phone"], WRONG_KEY), "recovery_key")
    over = reset_by_key(client, done["phone"], done["recovery_key"])
    assert over.status_code == 429 and over.json()["code"] == "rate_limited"
    assert int(over.headers["Retry-After"]) > 60
    assert_password_unchanged(client, done["phone"])
    # The SMS path stays open to the owner, and other numbers keep their own budget.
    code = send_code(client, rt, done["phone"])
    assert reset_by_code(client, done["phone"], code).status_code == 204
    other = register_account(client, rt)
    assert reset_by_key(client, other["phone"], other["recovery_key"]).status_code == 204


def test_resets_are_limited_per_ip(client, rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "recovery_per_ip_hour", 3)
    done = register_account(client, rt)
    for _ in range(3):
        assert_invalid_code(reset_by_code(client, new_phone(), "123456"))
    for over in (reset_by_key(client, done["phone"], done["recovery_key"]),
                 reset_by_code(client, done["phone"], "123456")):
        assert over.status_code == 429 and over.json()["code"] == "rate_limited"
    assert_password_unchanged(client, done["phone"])


@pytest.mark.parametrize("body", [
    {"phone": "13800138000", "new_password": NEW_PASSWORD},
    {"phone": "13800138000", "code": "123456", "recovery_key": WRONG_KEY,
     "new_password": NEW_PASSWORD},
    {"phone": "13800138000", "code": "123456"},
], ids=["no-proof", "both-proofs", "no-password"])
def test_a_reset_needs_exactly_one_proof_and_a_password(client, body):
    answer = client.post(RESETS, json=body)
    assert answer.status_code == 422 and answer.json()["code"] == "validation_failed"


def test_an_invalid_number_is_a_validation_error(client):
    answer = reset_by_code(client, "12345", "123456")
    assert answer.status_code == 422 and answer.json()["code"] == "invalid_phone"


# --- enumeration safety ----------------------------------------------------------------------------

def test_unknown_and_known_numbers_get_identical_answers(client, rt):
    done = register_account(client, rt)
    known, unknown = done["phone"], new_phone()

    by_code = [reset_by_code(client, phone, "123456") for phone in (known, unknown)]
    by_key = [reset_by_key(client, phone, WRONG_KEY) for phone in (known, unknown)]
    rt.clock.advance(seconds=61)
    sends = [client.post(CODES, json={"to": phone, "purpose": "reset_password"}) for phone in (known, unknown)]

    for pair, status in ((by_code, 400), (by_key, 400), (sends, 202)):
        assert pair[0].status_code == pair[1].status_code == status
        assert pair[0].content == pair[1].content
        assert pair[0].headers["content-type"] == pair[1].headers["content-type"]
    assert sends[0].json() == {"expires_in": 300, "resend_after": 60}
    # Only the number with an account got a code.
    assert notices(rt, known, "reset_password") and not notices(rt, unknown, "reset_password")
    assert_password_unchanged(client, known)


def test_a_reset_for_an_unknown_number_costs_the_same_argon2_work(client, rt, monkeypatch):
    """Timing: the key path runs one verification (a decoy without an account) and one hash either way."""
    done = register_account(client, rt)
    calls: Counter = Counter()
    verify, hash_ = rt.hasher.verify, rt.hasher.hash

    def counted_verify(stored, secret):
        calls["verify"] += 1
        return verify(stored, secret)

    def counted_hash(secret):
        calls["hash"] += 1
        return hash_(secret)

    monkeypatch.setattr(rt.hasher, "verify", counted_verify)
    monkeypatch.setattr(rt.hasher, "hash", counted_hash)
    work = {}
    for name, answer in (("known", lambda: reset_by_key(client, done["phone"], WRONG_KEY)),
                         ("unknown", lambda: reset_by_key(client, new_phone(), WRONG_KEY)),
                         ("known-sms", lambda: reset_by_code(client, done["phone"], "123456")),
                         ("unknown-sms", lambda: reset_by_code(client, new_phone(), "123456"))):
        calls.clear()
        assert answer().status_code == 400
        work[name] = dict(calls)
    assert work["known"] == work["unknown"] == {"verify": 1, "hash": 1}
    assert work["known-sms"] == work["unknown-sms"]


# --- one code, many requests at once ---------------------------------------------------------------

def together(base_url: str, requests: list) -> list[httpx.Response]:
    """Run ``requests[i](http)`` in its own thread with its own client, all released at once."""
    barrier = threading.Barrier(len(requests))

    def run(request):
        with httpx.Client(base_url=base_url, timeout=60) as http:
            http.get("/healthz")  # connect before the barrier, so that the requests really overlap
            barrier.wait(timeout=30)
            return request(http)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(run, requests))


def test_one_reset_code_used_at_once_by_many_requests_resets_once(live_server, rt):
    n = 20
    phone = new_phone()
    with httpx.Client(base_url=live_server) as http:
        registered = register_account(http, rt, phone=phone, nickname="并发重置")
        rt.clock.advance(seconds=61)
        assert http.post(CODES, json={"to": phone, "purpose": "reset_password"}).status_code == 202
    code = last_code(rt, phone, "reset_password")
    passwords = [f"Par{i}!allel-Heron" for i in range(n)]

    def attempt(password):
        return lambda http: http.post(RESETS, json={"phone": phone, "code": code, "new_password": password})

    answers = together(live_server, [attempt(p) for p in passwords])

    counts = Counter((a.status_code, a.json()["code"] if a.status_code >= 400 else None) for a in answers)
    assert counts == Counter({(204, None): 1, (400, "invalid_code"): n - 1}), counts
    [winner] = [p for p, a in zip(passwords, answers, strict=True) if a.status_code == 204]
    loser = next(p for p in passwords if p != winner)
    with httpx.Client(base_url=live_server) as http:
        assert http.post("/api/v1/sessions", json={"login": phone, "password": winner}).status_code == 201
        assert http.post("/api/v1/sessions", json={"login": phone, "password": loser}).status_code == 401
    results = Counter(e["result"] for e in events(rt, registered["account"]["id"], "password.reset"))
    assert results == Counter({"ok": 1, "failed": n - 1})
    assert len(notices(rt, phone, "password_reset")) == 1


def test_a_session_that_ended_meanwhile_changes_no_password_and_gets_no_new_token(client, rt):
    from passport.audit.service import Origin
    from passport.credentials import service as credentials
    from passport.errors import DomainError
    from passport.sessions import service as sessions

    done = register_account(client, rt)
    token = done["session"]["token"]
    principal = sessions.authenticate(rt, token)  # read, then the owner signs this session out
    assert client.delete("/api/v1/sessions/current", headers=bearer(token)).status_code == 204
    with pytest.raises(DomainError) as refused:
        credentials.change_password(rt, Origin(ip="203.0.113.9", user_agent="t", channel="api"), principal,
                                    current_password=STRONG_PASSWORD, new_password=NEW_PASSWORD)
    assert refused.value.code == "not_authenticated"
    assert_password_unchanged(client, done["phone"])
    assert not events(rt, done["account"]["id"], "password.changed")
