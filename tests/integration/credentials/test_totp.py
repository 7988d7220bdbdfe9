"""TOTP second factor through the API: enrol, confirm, disable, replay protection (API.md
"Credentials", RFC 6238)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pyotp
from sqlalchemy import select

from passport.accounts.models import TOTP_SECRET, Account
from passport.audit.models import AuditEvent
from passport_testing import bearer, register_account

TOTP = "/api/v1/me/totp"


def code_now(rt, secret: str, **shift: float) -> str:
    return pyotp.TOTP(secret).at(rt.clock.now() + timedelta(**shift))


def mid_step(rt) -> None:
    """Move the clock to the middle of a 30-second step, so no step boundary passes during a test
    that names exact steps."""
    rt.clock.advance(seconds=(45 - rt.clock.now().timestamp() % 30) % 30)


def account_row(rt, account_id: str) -> Account:
    with rt.db.read() as db:
        return db.get(Account, account_id)


def actions(rt, account_id: str, prefix: str = "totp.") -> list[tuple[str, str, dict]]:
    with rt.db.read() as db:
        rows = db.execute(select(AuditEvent.action, AuditEvent.result, AuditEvent.details)
                          .where(AuditEvent.subject_id == account_id, AuditEvent.action.startswith(prefix))
                          .order_by(AuditEvent.seq)).all()
    return [(r.action, r.result, json.loads(r.details)) for r in rows]


def enrolled(client, rt) -> tuple[dict, dict, str]:
    """A fresh account with a secret issued (not confirmed): (registration, headers, secret)."""
    done = register_account(client, rt)
    headers = bearer(done["session"]["token"])
    answer = client.post(TOTP, headers=headers)
    assert answer.status_code == 200, answer.text
    return done, headers, answer.json()["secret"]


def enabled(client, rt) -> tuple[dict, dict, str]:
    done, headers, secret = enrolled(client, rt)
    answer = client.post(f"{TOTP}/confirm", json={"code": code_now(rt, secret)}, headers=headers)
    assert answer.status_code == 204, answer.text
    return done, headers, secret


def disable(client, headers: dict, **body):
    return client.request("DELETE", TOTP, json=body, headers=headers)


def test_enrol_confirm_disable(client, rt):
    done, headers, secret = enrolled(client, rt)
    mid_step(rt)
    account_id = done["account"]["id"]
    assert len(secret) == 32 and pyotp.TOTP(secret).now().isdigit()
    assert client.get(TOTP, headers=headers).json() == {"enabled": False, "enabled_at": None, "pending": True}
    stored = account_row(rt, account_id)
    assert stored.totp_secret_enc and secret.encode() not in stored.totp_secret_enc
    assert rt.keys.cipher.decrypt(stored.totp_secret_enc, TOTP_SECRET, stored.id) == secret
    assert stored.totp_enabled_at is None

    confirmed = client.post(f"{TOTP}/confirm", json={"code": code_now(rt, secret)}, headers=headers)
    assert confirmed.status_code == 204, confirmed.text
    status = client.get(TOTP, headers=headers).json()
    assert status["enabled"] is True and status["pending"] is False and status["enabled_at"].endswith("Z")
    assert account_row(rt, account_id).totp_last_step == int(rt.clock.now().timestamp()) // 30

    rt.clock.advance(seconds=30)
    assert disable(client, headers, code=code_now(rt, secret)).status_code == 204
    assert client.get(TOTP, headers=headers).json() == {"enabled": False, "enabled_at": None, "pending": False}
    stored = account_row(rt, account_id)
    assert (stored.totp_secret_enc, stored.totp_enabled_at, stored.totp_last_step) == (None, None, None)
    assert [(a, r) for a, r, _ in actions(rt, account_id)] == [
        ("totp.enrolled", "ok"), ("totp.enabled", "ok"), ("totp.disabled", "ok")]
    assert actions(rt, account_id)[-1][2]["by"] == "totp"


def test_otpauth_uri_names_the_issuer_and_the_masked_phone_only(client, rt):
    done = register_account(client, rt)
    answer = client.post(TOTP, headers=bearer(done["session"]["token"])).json()
    uri = urlsplit(answer["otpauth_uri"])
    phone = done["phone"]
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == f"/奥集能:{phone[:3]}****{phone[7:]}"
    query = parse_qs(uri.query)
    assert query["issuer"] == ["奥集能"] and query["secret"] == [answer["secret"]]
    assert phone[3:7] not in answer["otpauth_uri"]
    # What the authenticator app will compute from the URI is what the server checks.
    parsed = pyotp.parse_uri(answer["otpauth_uri"])
    assert (parsed.digits, parsed.interval, parsed.issuer) == (6, 30, "奥集能")


def test_an_unconfirmed_secret_does_not_change_login(client, rt):
    done, _headers, _secret = enrolled(client, rt)
    login = client.post("/api/v1/sessions", json={"login": done["phone"], "password": done["password"]})
    assert login.status_code == 201 and login.json()["token"]


def test_enrolling_again_issues_a_new_secret_until_confirmed_then_refuses(client, rt):
    done, headers, first = enrolled(client, rt)
    second = client.post(TOTP, headers=headers).json()["secret"]
    assert second != first
    # Only the newest secret confirms.
    stale = client.post(f"{TOTP}/confirm", json={"code": code_now(rt, first)}, headers=headers)
    assert stale.status_code == 400 and stale.json()["code"] == "invalid_totp"
    assert client.post(f"{TOTP}/confirm", json={"code": code_now(rt, second)}, headers=headers).status_code == 204

    again = client.post(TOTP, headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "totp_already_enabled"
    stored = account_row(rt, done["account"]["id"])
    assert rt.keys.cipher.decrypt(stored.totp_secret_enc, TOTP_SECRET, stored.id) == second


def test_wrong_codes_are_refused_and_change_nothing(client, rt):
    done, headers, secret = enrolled(client, rt)
    right = code_now(rt, secret)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for code in (wrong, "12345", "1234567", "abcdef", "１２３４５６", ""):
        answer = client.post(f"{TOTP}/confirm", json={"code": code}, headers=headers)
        if code == "":
            assert answer.status_code == 422
            continue
        assert answer.status_code == 400, code
        body = answer.json()
        assert body["code"] == "invalid_totp" and body["errors"][0]["field"] == "code"
        assert body["title"] == "动态验证码错误或已过期。"
    stored = account_row(rt, done["account"]["id"])
    assert stored.totp_enabled_at is None and stored.totp_last_step is None
    reasons = [d["reason"] for a, _, d in actions(rt, done["account"]["id"]) if a == "totp.rejected"]
    assert reasons == ["wrong_code"] * 5
    # A code with spaces, as some apps show it, is fine.
    spaced = f"{right[:3]} {right[3:]}"
    assert client.post(f"{TOTP}/confirm", json={"code": spaced}, headers=headers).status_code == 204


def test_one_step_of_clock_drift_either_way_and_no_more(client, rt):
    _done, headers, secret = enrolled(client, rt)
    mid_step(rt)
    for shift in (-90, -60, 60, 90):
        answer = client.post(f"{TOTP}/confirm", json={"code": code_now(rt, secret, seconds=shift)}, headers=headers)
        assert answer.status_code == 400, shift
    late = client.post(f"{TOTP}/confirm", json={"code": code_now(rt, secret, seconds=-30)}, headers=headers)
    assert late.status_code == 204
    # The step after it (the current one) is still unused.
    rt.clock.advance(seconds=1)
    assert disable(client, headers, code=code_now(rt, secret)).status_code == 204


def test_a_code_is_accepted_once_even_in_its_own_window(client, rt):
    done, headers, secret = enabled(client, rt)
    account_id = done["account"]["id"]
    used = code_now(rt, secret)
    before = account_row(rt, account_id)

    replay = disable(client, headers, code=used)
    assert replay.status_code == 400
    assert replay.json()["code"] == "invalid_totp"
    assert replay.json()["title"] == "该动态验证码已使用过，请等待下一个。"
    assert replay.headers["content-type"].startswith("application/problem+json")
    english = client.request("DELETE", TOTP, json={"code": used}, headers=headers | {"Accept-Language": "en"})
    assert english.json()["title"] == "This code was already used. Wait for the next one."
    after = account_row(rt, account_id)
    assert (after.totp_enabled_at, after.totp_last_step, after.totp_secret_enc) == (
        before.totp_enabled_at, before.totp_last_step, before.totp_secret_enc)
    assert [d["reason"] for a, _, d in actions(rt, account_id) if a == "totp.rejected"] == ["replayed", "replayed"]

    rt.clock.advance(seconds=30)
    assert disable(client, headers, code=code_now(rt, secret)).status_code == 204


def test_disable_with_the_recovery_key(client, rt):
    done, headers, _secret = enabled(client, rt)
    key = done["recovery_key"]
    wrong = disable(client, headers, recovery_key="AAAAA-BBBBB-CCCCC-DDDDD-EEEEE")
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_recovery_key"
    assert client.get(TOTP, headers=headers).json()["enabled"] is True
    # Typed loosely: lower case, no dashes.
    assert disable(client, headers, recovery_key=key.replace("-", "").lower()).status_code == 204
    assert client.get(TOTP, headers=headers).json()["enabled"] is False
    assert actions(rt, done["account"]["id"])[-1][:2] == ("totp.disabled", "ok")
    assert actions(rt, done["account"]["id"])[-1][2]["by"] == "recovery_key"


def test_disable_takes_exactly_one_factor(client, rt):
    _done, headers, secret = enabled(client, rt)
    for body in ({}, {"code": code_now(rt, secret), "recovery_key": "x"}, {"code": "123456", "extra": 1}):
        answer = disable(client, headers, **body)
        assert answer.status_code == 422 and answer.json()["code"] == "validation_failed", body
    assert client.get(TOTP, headers=headers).json()["enabled"] is True


def test_wrong_state_answers_409(client, rt):
    done = register_account(client, rt)
    headers = bearer(done["session"]["token"])
    confirm = client.post(f"{TOTP}/confirm", json={"code": "123456"}, headers=headers)
    assert confirm.status_code == 409 and confirm.json()["code"] == "totp_not_enrolled"
    off = disable(client, headers, code="123456")
    assert off.status_code == 409 and off.json()["code"] == "totp_not_enabled"


def test_totp_endpoints_need_a_session(client):
    client.cookies.clear()
    assert client.get(TOTP).status_code == 401
    assert client.post(TOTP).status_code == 401
    assert client.post(f"{TOTP}/confirm", json={"code": "123456"}).status_code == 401
    assert disable(client, {}, code="123456").status_code == 401


def test_code_guesses_are_rate_limited_per_account(client, rt):
    _done, headers, _secret = enrolled(client, rt)
    answers = [client.post(f"{TOTP}/confirm", json={"code": "000000"}, headers=headers).status_code
               for _ in range(11)]
    assert set(answers[:10]) <= {400, 204}  # 000000 could be right, once in a million
    assert answers[10] == 429


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


def test_one_code_confirms_once_under_concurrency(live_server, rt):
    with httpx.Client(base_url=live_server) as http:
        done = register_account(http, rt)
        headers = bearer(done["session"]["token"])
        secret = http.post(TOTP, headers=headers).json()["secret"]
    code = code_now(rt, secret)
    answers = together(live_server, [lambda http: http.post(f"{TOTP}/confirm", json={"code": code},
                                                            headers=headers)] * 8)
    counts = Counter((a.status_code, a.json()["code"] if a.status_code >= 400 else None) for a in answers)
    assert counts[(204, None)] == 1, counts
    assert counts[(400, "invalid_totp")] + counts[(409, "totp_not_enrolled")] == 7, counts
    assert [a for a, r, _ in actions(rt, done["account"]["id"]) if r == "ok"] == ["totp.enrolled", "totp.enabled"]


def test_one_code_disables_once_under_concurrency(live_server, rt):
    with httpx.Client(base_url=live_server) as http:
        done = register_account(http, rt)
        headers = bearer(done["session"]["token"])
        secret = http.post(TOTP, headers=headers).json()["secret"]
        assert http.post(f"{TOTP}/confirm", json={"code": code_now(rt, secret)}, headers=headers).status_code == 204
    rt.clock.advance(seconds=30)
    code = code_now(rt, secret)
    answers = together(live_server, [lambda http: http.request("DELETE", TOTP, json={"code": code},
                                                               headers=headers)] * 8)
    counts = Counter((a.status_code, a.json()["code"] if a.status_code >= 400 else None) for a in answers)
    assert counts[(204, None)] == 1, counts
    assert counts[(400, "invalid_totp")] + counts[(409, "totp_not_enabled")] == 7, counts
    assert [a for a, r, _ in actions(rt, done["account"]["id"]) if r == "ok"].count("totp.disabled") == 1
