"""Login with a second factor: 401 mfa_required, POST /sessions/mfa, lockout and its SMS notice
(API.md "Sessions", COMPLIANCE C4, C5)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pyotp
from sqlalchemy import func, select, update

from passport.accounts.models import Account
from passport.audit.models import AuditEvent
from passport.identity.phone import normalize_phone
from passport.sessions.models import LoginSession
from passport_testing import bearer, deliver_notices, last_code, outbox_messages, register_account

SESSIONS = "/api/v1/sessions"
MFA = "/api/v1/sessions/mfa"
WRONG_PASSWORD = "Wrong!password-7x"


def code_now(rt, secret: str) -> str:
    return pyotp.TOTP(secret).at(rt.clock.now())


def wrong_code(rt, secret: str) -> str:
    now = rt.clock.now()
    right = {pyotp.TOTP(secret).at(now + timedelta(seconds=shift)) for shift in (-30, 0, 30)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in right)


def with_totp(client, rt) -> tuple[dict, str]:
    """A registered account with TOTP on; the clock is then moved to the next step, so the code
    that confirmed it is not the current one."""
    done = register_account(client, rt)
    headers = bearer(done["session"]["token"])
    secret = client.post("/api/v1/me/totp", headers=headers).json()["secret"]
    assert client.post("/api/v1/me/totp/confirm", json={"code": code_now(rt, secret)},
                       headers=headers).status_code == 204
    rt.clock.advance(seconds=30)
    return done, secret


def password_login(client, done: dict, password: str | None = None):
    return client.post(SESSIONS, json={"login": done["phone"], "password": password or done["password"]})


def mfa_token(client, done: dict) -> str:
    answer = password_login(client, done)
    assert answer.status_code == 401 and answer.json()["code"] == "mfa_required", answer.text
    return answer.json()["mfa_token"]


def session_count(rt, account_id: str) -> int:
    with rt.db.read() as db:
        return db.scalar(select(func.count()).select_from(LoginSession).where(LoginSession.account_id == account_id))


def audit_of(rt, account_id: str, action: str) -> list[dict]:
    with rt.db.read() as db:
        rows = db.scalars(select(AuditEvent.details).where(AuditEvent.subject_id == account_id,
                                                           AuditEvent.action == action).order_by(AuditEvent.seq))
        return [json.loads(d) for d in rows]


def notices_to(rt, phone: str) -> list[dict]:
    deliver_notices(rt)
    return [m for m in outbox_messages(rt) if m["to"] == normalize_phone(phone) and m["purpose"] == "notice_locked"]


def test_right_password_with_totp_answers_mfa_required_and_opens_no_session(client, rt):
    done, secret = with_totp(client, rt)
    account_id = done["account"]["id"]
    sessions_before = session_count(rt, account_id)

    answer = password_login(client, done)
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["code"] == "mfa_required"
    assert body["title"] == "请输入身份验证器应用中的 6 位动态验证码。"
    assert body["expires_in"] == rt.settings.mfa_token_seconds
    assert body["mfa_token"] and "token" not in body and "account" not in body and "id" not in body
    assert "passport_session" not in answer.headers.get("set-cookie", "")
    assert session_count(rt, account_id) == sessions_before
    assert audit_of(rt, account_id, "login.mfa_required")[-1]["method"] == "password"

    second = client.post(MFA, json={"mfa_token": body["mfa_token"], "code": code_now(rt, secret)})
    assert second.status_code == 201, second.text
    opened = second.json()
    assert set(opened) >= {"id", "token", "expires_at", "account"}
    assert opened["account"]["id"] == account_id
    assert opened["account"]["phone"] == done["account"]["phone"]
    me = client.get("/api/v1/me", headers=bearer(opened["token"]))
    assert me.status_code == 200 and me.json()["id"] == account_id
    assert session_count(rt, account_id) == sessions_before + 1
    listed = {s["id"]: s for s in client.get(SESSIONS, headers=bearer(opened["token"])).json()}
    assert listed[opened["id"]]["method"] == "password"
    assert audit_of(rt, account_id, "login.succeeded")[-1] | {"channel": "api"} == {
        "method": "password", "second_factor": "totp", "channel": "api"}


def test_wrong_password_on_a_totp_account_is_just_a_wrong_password(client, rt):
    done, _secret = with_totp(client, rt)
    answer = password_login(client, done, WRONG_PASSWORD)
    assert answer.status_code == 401 and answer.json()["code"] == "invalid_credentials"
    assert "mfa_token" not in answer.json()


def test_sms_code_login_with_totp_needs_the_second_step(client, rt):
    done, secret = with_totp(client, rt)
    rt.clock.advance(seconds=61)
    assert client.post("/api/v1/verification-codes", json={"to": done["phone"], "purpose": "login"}).status_code == 202
    answer = client.post(SESSIONS, json={"phone": done["phone"], "code": last_code(rt, done["phone"], "login")})
    assert answer.status_code == 401 and answer.json()["code"] == "mfa_required"
    assert "token" not in answer.json()
    second = client.post(MFA, json={"mfa_token": answer.json()["mfa_token"], "code": code_now(rt, secret)})
    assert second.status_code == 201, second.text
    listed = {s["id"]: s for s in client.get(SESSIONS, headers=bearer(second.json()["token"])).json()}
    assert listed[second.json()["id"]]["method"] == "sms_code"


def test_an_mfa_token_works_once(client, rt):
    done, secret = with_totp(client, rt)
    token = mfa_token(client, done)
    assert client.post(MFA, json={"mfa_token": token, "code": code_now(rt, secret)}).status_code == 201
    rt.clock.advance(seconds=30)
    again = client.post(MFA, json={"mfa_token": token, "code": code_now(rt, secret)})
    assert again.status_code == 401 and again.json()["code"] == "invalid_credentials"
    by_key = client.post(MFA, json={"mfa_token": token, "recovery_key": done["recovery_key"]})
    assert by_key.status_code == 401 and by_key.json()["code"] == "invalid_credentials"


def test_bad_tampered_and_expired_tokens_answer_like_a_wrong_password(client, rt):
    done, secret = with_totp(client, rt)
    other, _ = with_totp(client, rt)
    token = mfa_token(client, done)
    account_id, expires, method, nonce, mac = token.split(".")
    wrong_password = password_login(client, done, WRONG_PASSWORD)
    forged = [
        "garbage",
        "",
        token + "x",
        ".".join((other["account"]["id"], expires, method, nonce, mac)),
        ".".join((account_id, str(int(expires) + 3600), method, nonce, mac)),
        ".".join((account_id, expires, "sms_code", nonce, mac)),
        ".".join((account_id, expires, method, nonce, mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB"))),
    ]
    for bad in forged:
        answer = client.post(MFA, json={"mfa_token": bad, "code": code_now(rt, secret)})
        if bad == "":
            assert answer.status_code == 422
            continue
        assert answer.status_code == 401, bad
        assert answer.content == wrong_password.content, bad

    rt.clock.advance(seconds=rt.settings.mfa_token_seconds + 1)
    expired = client.post(MFA, json={"mfa_token": token, "code": code_now(rt, secret)})
    assert expired.status_code == 401 and expired.content == wrong_password.content
    # Nothing above counted as a failure of the account.
    with rt.db.read() as db:
        assert db.get(Account, done["account"]["id"]).failed_logins == 1  # the one wrong password
    fresh = mfa_token(client, done)
    assert client.post(MFA, json={"mfa_token": fresh, "code": code_now(rt, secret)}).status_code == 201


def test_a_wrong_code_keeps_the_token_usable(client, rt):
    done, secret = with_totp(client, rt)
    token = mfa_token(client, done)
    wrong = client.post(MFA, json={"mfa_token": token, "code": wrong_code(rt, secret)})
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "invalid_totp" and wrong.json()["title"] == "动态验证码错误或已过期。"
    assert "token" not in wrong.json()
    assert client.post(MFA, json={"mfa_token": token, "code": code_now(rt, secret)}).status_code == 201
    # The right code reset the count.
    with rt.db.read() as db:
        assert db.get(Account, done["account"]["id"]).failed_logins == 0


def test_a_code_used_for_one_login_is_refused_for_the_next_in_its_window(client, rt):
    done, secret = with_totp(client, rt)
    account_id = done["account"]["id"]
    code = code_now(rt, secret)
    assert client.post(MFA, json={"mfa_token": mfa_token(client, done), "code": code}).status_code == 201
    sessions = session_count(rt, account_id)

    replay = client.post(MFA, json={"mfa_token": mfa_token(client, done), "code": code})
    assert replay.status_code == 400
    assert replay.json()["code"] == "invalid_totp"
    assert replay.json()["title"] == "该动态验证码已使用过，请等待下一个。"
    assert session_count(rt, account_id) == sessions
    with rt.db.read() as db:
        assert db.get(Account, account_id).failed_logins == 0  # a replay is not a guess

    rt.clock.advance(seconds=30)
    token = mfa_token(client, done)
    assert client.post(MFA, json={"mfa_token": token, "code": code_now(rt, secret)}).status_code == 201


def test_recovery_key_is_the_second_factor_of_last_resort(client, rt):
    done, secret = with_totp(client, rt)
    account_id = done["account"]["id"]
    token = mfa_token(client, done)
    wrong = client.post(MFA, json={"mfa_token": token, "recovery_key": "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE"})
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_recovery_key"
    answer = client.post(MFA, json={"mfa_token": token, "recovery_key": done["recovery_key"].lower()})
    assert answer.status_code == 201, answer.text
    assert client.get("/api/v1/me", headers=bearer(answer.json()["token"])).status_code == 200
    assert audit_of(rt, account_id, "login.succeeded")[-1]["second_factor"] == "recovery_key"
    failures = audit_of(rt, account_id, "login.failed")
    assert failures[-1]["reason"] == "wrong_recovery_key"
    assert done["recovery_key"] not in json.dumps(failures)
    # TOTP stays on, and works for the next login.
    rt.clock.advance(seconds=30)
    token = mfa_token(client, done)
    assert client.post(MFA, json={"mfa_token": token, "code": code_now(rt, secret)}).status_code == 201


def test_mfa_step_takes_exactly_one_factor(client, rt):
    done, secret = with_totp(client, rt)
    token = mfa_token(client, done)
    for body in ({"mfa_token": token}, {"mfa_token": token, "code": code_now(rt, secret), "recovery_key": "x"},
                 {"code": code_now(rt, secret)}):
        answer = client.post(MFA, json=body)
        assert answer.status_code == 422 and answer.json()["code"] == "validation_failed", body


def test_five_wrong_codes_lock_the_account_and_text_the_owner(client, rt):
    done, secret = with_totp(client, rt)
    account_id = done["account"]["id"]
    token = mfa_token(client, done)
    for _ in range(5):
        answer = client.post(MFA, json={"mfa_token": token, "code": wrong_code(rt, secret)})
        assert answer.status_code == 400 and answer.json()["code"] == "invalid_totp"

    refused = client.post(MFA, json={"mfa_token": token, "code": code_now(rt, secret)})
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_credentials"
    assert password_login(client, done).json()["code"] == "invalid_credentials"
    assert [d["reason"] for d in audit_of(rt, account_id, "login.failed")][:5] == ["wrong_totp"] * 5
    assert len(audit_of(rt, account_id, "login.locked")) == 1

    [notice] = notices_to(rt, done["phone"])
    assert notice["code"] is None
    assert "锁定 15 分钟" in notice["text"] and "重置密码" in notice["text"] and "冻结账号" in notice["text"]
    assert notice["text"].startswith("【奥集能】")
    said = json.dumps({k: v for k, v in notice.items() if k != "to"}, ensure_ascii=False)
    for secret_value in (done["password"], done["recovery_key"], secret, code_now(rt, secret), done["phone"]):
        assert secret_value not in said

    rt.clock.advance(minutes=15, seconds=1)
    token = mfa_token(client, done)
    assert client.post(MFA, json={"mfa_token": token, "code": code_now(rt, secret)}).status_code == 201


def test_a_right_password_does_not_reset_the_count_of_wrong_codes(client, rt):
    done, secret = with_totp(client, rt)
    for attempt in range(5):
        token = mfa_token(client, done)  # a fresh first step each time
        answer = client.post(MFA, json={"mfa_token": token, "code": wrong_code(rt, secret)})
        assert answer.status_code == 400, attempt
    assert password_login(client, done).json()["code"] == "invalid_credentials"
    assert len(notices_to(rt, done["phone"])) == 1


def test_an_sms_code_does_not_lift_a_lock_on_a_totp_account(client, rt):
    done, secret = with_totp(client, rt)
    token = mfa_token(client, done)
    for _ in range(5):
        client.post(MFA, json={"mfa_token": token, "code": wrong_code(rt, secret)})
    rt.clock.advance(seconds=61)
    assert client.post("/api/v1/verification-codes", json={"to": done["phone"], "purpose": "login"}).status_code == 202
    answer = client.post(SESSIONS, json={"phone": done["phone"], "code": last_code(rt, done["phone"], "login")})
    assert answer.status_code == 401 and answer.json()["code"] == "invalid_credentials"
    assert "mfa_token" not in answer.json()


def test_wrong_passwords_lock_the_account_and_text_the_owner_once(client, rt):
    done = register_account(client, rt)
    for _ in range(5):
        assert password_login(client, done, WRONG_PASSWORD).status_code == 401
    assert password_login(client, done, WRONG_PASSWORD).status_code == 401  # locked: no second notice
    [notice] = notices_to(rt, done["phone"])
    assert notice["purpose"] == "notice_locked" and notice["code"] is None
    assert f"{rt.settings.login_lock_minutes} 分钟" in notice["text"]
    assert WRONG_PASSWORD not in notice["text"] and done["password"] not in notice["text"]


def test_turning_totp_off_ends_outstanding_tokens(client, rt):
    done, secret = with_totp(client, rt)
    token = mfa_token(client, done)
    off = client.request("DELETE", "/api/v1/me/totp", json={"code": code_now(rt, secret)},
                         headers=bearer(done["session"]["token"]))
    assert off.status_code == 204
    rt.clock.advance(seconds=30)
    answer = client.post(MFA, json={"mfa_token": token, "code": code_now(rt, secret)})
    assert answer.status_code == 401 and answer.json()["code"] == "invalid_credentials"
    assert password_login(client, done).status_code == 201


def test_a_frozen_account_is_refused_at_the_second_step(client, rt):
    done, secret = with_totp(client, rt)
    token = mfa_token(client, done)
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == done["account"]["id"])
                   .values(status="frozen", status_reason="本人报告账号被盗"))
    answer = client.post(MFA, json={"mfa_token": token, "code": code_now(rt, secret)})
    assert answer.status_code == 403 and answer.json()["code"] == "account_frozen"
    assert answer.json()["reason"] == "本人报告账号被盗"


def together(base_url: str, requests: list) -> list[httpx.Response]:
    """Run ``requests[i](http)`` each in its own thread and client, released at once by a barrier."""
    barrier = threading.Barrier(len(requests))

    def run(request):
        with httpx.Client(base_url=base_url, timeout=60) as http:
            http.get("/healthz")
            barrier.wait(timeout=30)
            return request(http)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(run, requests))


def test_one_code_opens_one_session_under_concurrency(live_server, rt):
    with httpx.Client(base_url=live_server) as http:
        done, secret = with_totp(http, rt)
        token = mfa_token(http, done)
    account_id = done["account"]["id"]
    sessions = session_count(rt, account_id)
    body = {"mfa_token": token, "code": code_now(rt, secret)}
    answers = together(live_server, [lambda http: http.post(MFA, json=body)] * 10)

    counts = Counter((a.status_code, a.json().get("code") if a.status_code >= 400 else None) for a in answers)
    assert counts[(201, None)] == 1, counts
    assert counts[(400, "invalid_totp")] + counts[(401, "invalid_credentials")] == 9, counts
    assert session_count(rt, account_id) == sessions + 1
