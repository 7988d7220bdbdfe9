"""Test support shared by the suites. Integration tests run on SQLite by default, on PostgreSQL when
PASSPORT_TEST_DATABASE_URL is set, and count rate limits in Redis when PASSPORT_TEST_REDIS_URL is set
(`.ci/run` runs the suite both ways)."""

from __future__ import annotations

import json
import os
import random
import re
import socket
import uuid
from datetime import date, timedelta
from pathlib import Path

os.environ.setdefault("PASSPORT_ENV", "test")

DATABASE_URL = os.environ.get("PASSPORT_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("PASSPORT_TEST_REDIS_URL")
AGREEMENT_VERSIONS = {"user-agreement": "1.0", "privacy-policy": "1.0"}
STRONG_PASSWORD = "Qz7!mountain-Lark"
ID_REGIONS = ("110105", "310104", "440305", "510107", "650102", "810000", "330106")

def new_phone() -> str:
    return f"1{random.choice('3456789')}{random.randrange(10**9):09d}"


def bearer(token: str, **headers: str) -> dict:
    """Request headers for an API session: ``Authorization: Bearer <token>``, plus any other headers
    given as keywords (``bearer(token, **{"User-Agent": ...})``)."""
    return {"Authorization": f"Bearer {token}"} | headers


def csrf(client) -> str:
    """The CSRF token the pages keep in the ``passport_csrf`` cookie (load a page first)."""
    return client.cookies.get("passport_csrf")


def csrf_of(html: str) -> str:
    """The CSRF token a page's form carries in its hidden ``csrf_token`` field."""
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, login_: str, password: str = STRONG_PASSWORD, *, status: int | None = None, **headers: str):
    """POST /api/v1/sessions with a login (a phone number in any form, or an email address) and a
    password; returns the answer. With ``status``, first asserts the answer has it. Other keywords are
    request headers (``login(client, phone, **{"User-Agent": ...})``)."""
    answer = client.post("/api/v1/sessions", json={"login": login_, "password": password}, headers=headers or None)
    if status is not None:
        assert answer.status_code == status, answer.text
    return answer


def step_up(client, token: str, password: str = STRONG_PASSWORD, **headers: str) -> str:
    """POST /api/v1/me/step-up with the password (a sensitive change needs it within
    PASSPORT_STEP_UP_MINUTES); asserts it worked and returns the new token: the old one no longer works."""
    answer = client.post("/api/v1/me/step-up", json={"password": password}, headers=bearer(token, **headers))
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def login_with_code(client, phone: str, code: str):
    """POST /api/v1/sessions with a phone number and an SMS login code; returns the answer."""
    return client.post("/api/v1/sessions", json={"phone": phone, "code": code})


def login_form(client, login_: str, password: str = STRONG_PASSWORD, *, follow_redirects: bool = False,
               **headers: str):
    """The /login password form as a browser without JavaScript sends it: load the page (for its CSRF
    cookie), then post the form; returns the answer (303 when it logs in). Other keywords are request
    headers, sent with both requests."""
    client.get("/login", headers=headers or None)
    return client.post("/login", headers=headers or None, follow_redirects=follow_redirects, data={
        "csrf_token": csrf(client), "method": "password", "login": login_, "password": password})


def new_id_number(born: date | None = None, region: str | None = None) -> str:
    """A fresh valid resident ID number (check character included)."""
    from passport.identity import resident_id

    born = born or date(1960, 1, 1) + timedelta(days=random.randrange(40 * 365))
    body = f"{region or random.choice(ID_REGIONS)}{born:%Y%m%d}{random.randrange(1, 1000):03d}"
    return body + resident_id.check_character(body)


def new_uscc() -> str:
    """A fresh valid unified social credit code (USCC)."""
    from passport.identity import uscc

    body = "91" + random.choice(("110000", "310115", "440300")) + "".join(
        random.choice(uscc.ALPHABET) for _ in range(9))
    return body + uscc.check_character(body)


def reset_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    if url.startswith("postgresql"):
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()


def make_settings(data_dir: Path, **overrides):
    from passport.settings import Settings

    values = dict(
        env="test", data_dir=data_dir, database_url=DATABASE_URL, redis_url=REDIS_URL,
        code_per_ip_hour=100_000, login_per_ip_minute=100_000, register_per_ip_hour=100_000,
        qr_login_per_ip_minute=100_000, passkey_per_ip_minute=100_000,
        log_json=True,
    )
    values.update(overrides)
    return Settings(**values)


def make_runtime(settings):
    from passport.db import migrate
    from passport.runtime import build_runtime
    from passport.security.ratelimit import RateLimiter

    reset_database(settings.resolved_database_url)
    migrate(settings.resolved_database_url)
    rt = build_runtime(settings)
    rt.limiter = RateLimiter(settings.redis_url, namespace=f"test-{uuid.uuid4().hex[:8]}")
    return rt


def publish_agreements(rt) -> None:
    from passport.agreements import service
    from passport.audit.service import Origin

    for kind, version in AGREEMENT_VERSIONS.items():
        service.publish(rt, Origin(channel="cli"), kind=kind, version=version, title=kind,
                        body=f"# {kind}\n\nTest text of {kind} {version}.\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deliver_notices(rt) -> int:
    """Run the worker's notice delivery until nothing is due (what `passport worker` does every second)."""
    from passport.notify.outbox import deliver_due

    total = 0
    while delivered := deliver_due(rt):
        total += delivered
    return total


def outbox_messages(rt) -> list[dict]:
    path = rt.settings.outbox_dir / "sms.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def last_code(rt, phone: str, purpose: str) -> str:
    from passport.identity.phone import normalize_phone

    wanted = normalize_phone(phone)
    for message in reversed(outbox_messages(rt)):
        if message["to"] == wanted and message["purpose"] == purpose:
            return message["code"]
    raise AssertionError(f"no {purpose} code was sent")


def register(client, phone: str, code: str, *, password: str = STRONG_PASSWORD, nickname: str = "测试用户",
             agreements: dict[str, str] | None = None):
    """POST /api/v1/accounts with a code already sent (and the current agreement versions unless
    others are given); returns the answer, whatever it is."""
    return client.post("/api/v1/accounts", json={
        "phone": phone, "code": code, "password": password, "nickname": nickname,
        "agreements": AGREEMENT_VERSIONS if agreements is None else agreements,
    })


def register_account(client, rt, phone: str | None = None, password: str = STRONG_PASSWORD,
                     nickname: str = "测试用户", agreements: dict[str, str] | None = None) -> dict:
    """Register through the API (send the code, read it from the outbox, register); returns the 201
    body plus the phone and password used."""
    phone = phone or new_phone()
    sent = client.post("/api/v1/verification-codes", json={"to": phone, "purpose": "register"})
    assert sent.status_code == 202, sent.text
    answer = register(client, phone, last_code(rt, phone, "register"), password=password, nickname=nickname,
                      agreements=agreements)
    assert answer.status_code == 201, answer.text
    return answer.json() | {"phone": phone, "password": password}


def email_outbox_messages(rt) -> list[dict]:
    path = rt.settings.outbox_dir / "email.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def last_email_code(rt, address: str, purpose: str) -> str:
    for message in reversed(email_outbox_messages(rt)):
        if message["to"].casefold() == address.casefold() and message["purpose"] == purpose:
            return message["code"]
    raise AssertionError(f"no {purpose} email code was sent")


def make_staff(rt, role: str, login: str | None = None) -> dict:
    """An active staff member with a password, a TOTP secret and an open session, made directly
    (the enrolment and two-factor login flows have their own tests). Returns login, password,
    totp secret, id and bearer token."""
    import pyotp

    from passport.admin import service as admin
    from passport.admin.models import STAFF_TOTP_SECRET, Staff
    from passport.audit.service import Origin

    login = login or f"{role}-{uuid.uuid4().hex[:8]}"
    staff_id, _ = admin.create_staff(rt, Origin(channel="cli"), login=login, role=role)
    secret = pyotp.random_base32()
    password = STRONG_PASSWORD
    with rt.db.write() as db:
        staff = db.get(Staff, staff_id)
        staff.status = "active"
        staff.enrolment_hash = None
        staff.password_hash = rt.hasher.hash(password)
        staff.totp_secret_enc = rt.keys.cipher.encrypt(secret, STAFF_TOTP_SECRET, staff_id)
        token = admin.start_staff_session(rt, db, staff, Origin(channel="api"))
    return {"id": staff_id, "login": login, "password": password, "totp_secret": secret, "token": token,
            "headers": bearer(token)}


def run_coroutine(coroutine):
    """``asyncio.run`` on a thread of its own: the browser tests' Playwright keeps an event loop running
    on the main thread for the rest of the session, where ``asyncio.run`` refuses to start another."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()
