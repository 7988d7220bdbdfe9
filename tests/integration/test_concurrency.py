"""Races on a real socket: one code, one number, many simultaneous requests (SQLite and PostgreSQL).

Each test fires N requests from N threads, released together by a barrier, at the uvicorn server.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from passport.accounts.models import Account
from passport.credentials.models import VerificationCode
from passport.sessions.models import LoginSession
from passport_testing import AGREEMENT_VERSIONS, STRONG_PASSWORD, last_code, new_phone, outbox_messages

N = 20


def together(base_url: str, requests: list) -> list[httpx.Response]:
    """Run ``requests[i](http)`` in its own thread with its own client, all starting at once."""
    barrier = threading.Barrier(len(requests))

    def run(request):
        with httpx.Client(base_url=base_url, timeout=60) as http:
            http.get("/healthz")  # connect before the barrier, so the requests really overlap
            barrier.wait(timeout=30)
            return request(http)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(run, requests))


def outcome(answers: list[httpx.Response]) -> Counter:
    return Counter((a.status_code, a.json().get("code") if a.status_code >= 400 else None) for a in answers)


def send_code(base_url: str, phone: str, purpose: str) -> None:
    answer = httpx.post(f"{base_url}/api/v1/verification-codes", json={"to": phone, "purpose": purpose})
    assert answer.status_code == 202, answer.text


def bidx(rt, phone: str) -> bytes:
    return rt.keys.blind_index("phone", "+86" + phone)


def test_one_code_registers_one_account(live_server, rt):
    phone = new_phone()
    send_code(live_server, phone, "register")
    body = {"phone": phone, "code": last_code(rt, phone, "register"), "password": STRONG_PASSWORD,
            "nickname": "并发", "agreements": AGREEMENT_VERSIONS}
    answers = together(live_server, [lambda http: http.post("/api/v1/accounts", json=body)] * N)

    counts = outcome(answers)
    assert counts[(201, None)] == 1, counts
    assert counts[(422, "invalid_code")] + counts[(409, "phone_taken")] == N - 1, counts
    with rt.db.read() as db:
        assert db.scalar(select(func.count()).select_from(Account)
                         .where(Account.phone_bidx == bidx(rt, phone))) == 1


def test_one_login_code_opens_one_session(live_server, rt):
    phone = new_phone()
    send_code(live_server, phone, "register")
    registered = httpx.post(f"{live_server}/api/v1/accounts", json={
        "phone": phone, "code": last_code(rt, phone, "register"), "password": STRONG_PASSWORD,
        "nickname": "并发", "agreements": AGREEMENT_VERSIONS})
    assert registered.status_code == 201
    account_id = registered.json()["account"]["id"]
    rt.clock.advance(seconds=61)
    send_code(live_server, phone, "login")
    body = {"phone": phone, "code": last_code(rt, phone, "login")}
    answers = together(live_server, [lambda http: http.post("/api/v1/sessions", json=body)] * N)

    counts = outcome(answers)
    assert counts == Counter({(201, None): 1, (401, "invalid_credentials"): N - 1}), counts
    with rt.db.read() as db:
        methods = db.scalars(select(LoginSession.method).where(LoginSession.account_id == account_id)).all()
    assert sorted(methods) == ["register", "sms_code"]


def test_simultaneous_sends_deliver_one_code(live_server, rt):
    phone = new_phone()
    request = lambda http: http.post("/api/v1/verification-codes", json={"to": phone, "purpose": "register"})  # noqa: E731
    answers = together(live_server, [request] * N)

    counts = outcome(answers)
    assert counts == Counter({(202, None): 1, (429, "rate_limited"): N - 1}), counts
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers if a.status_code == 429)
    assert len([m for m in outbox_messages(rt) if m["to"] == "+86" + phone]) == 1
    with rt.db.read() as db:
        assert db.scalar(select(func.count()).select_from(VerificationCode)
                         .where(VerificationCode.target_bidx == bidx(rt, phone))) == 1


def test_simultaneous_wrong_guesses_get_no_more_than_five_tries(live_server, rt):
    phone = new_phone()
    send_code(live_server, phone, "register")
    code = last_code(rt, phone, "register")
    wrong = [f"{(int(code) + i) % 10**6:06d}" for i in range(1, N + 1)]

    def guess(candidate):
        return lambda http: http.post("/api/v1/accounts", json={
            "phone": phone, "code": candidate, "password": STRONG_PASSWORD, "nickname": "猜",
            "agreements": AGREEMENT_VERSIONS})

    answers = together(live_server, [guess(c) for c in wrong])
    assert outcome(answers) == Counter({(422, "invalid_code"): N})
    with rt.db.read() as db:
        attempts = db.scalar(select(VerificationCode.attempts)
                             .where(VerificationCode.target_bidx == bidx(rt, phone)))
    # Every guess that was compared with the code is counted; only five may be.
    assert attempts == rt.settings.code_max_attempts
    late = httpx.post(f"{live_server}/api/v1/accounts", json={
        "phone": phone, "code": code, "password": STRONG_PASSWORD, "nickname": "猜",
        "agreements": AGREEMENT_VERSIONS})
    assert late.status_code == 422 and late.json()["code"] == "invalid_code"
