"""Nothing a user types as a secret or an identifier is kept in clear (ARCHITECTURE "Storage",
COMPLIANCE D5, C6; STYLE "never log an unmasked phone").

Named to run last in this directory: every phone number the suite used (``USED_PHONES``), every
code the outbox delivered and every password used must be absent from a full dump of the database,
and from the JSON logs.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sqlite3
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import structlog
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select

import passport_testing
from passport.logs import configure_logging
from passport_testing import STRONG_PASSWORD, last_code, new_phone, outbox_messages, register_account

WRONG_PASSWORD = "Wrong!password-7x"
WEAK_PASSWORD = "weakpass"


@dataclass
class Activity:
    phones: list[str] = field(default_factory=list)
    passwords: list[str] = field(default_factory=lambda: [STRONG_PASSWORD, WRONG_PASSWORD, WEAK_PASSWORD])
    codes: list[str] = field(default_factory=list)


def _login(client, login: str, password: str):
    return client.post("/api/v1/sessions", json={"login": login, "password": password})


def _send(client, phone: str, purpose: str):
    answer = client.post("/api/v1/verification-codes", json={"to": phone, "purpose": purpose})
    assert answer.status_code == 202, answer.text


@pytest.fixture(scope="module")
def activity(app, rt) -> Activity:
    """Registrations, logins good and bad, code logins and unused codes for a few fresh numbers."""
    done = Activity()
    with TestClient(app) as client:
        for i in range(3):
            password = f"Zz{i}!harbour-Finch"
            done.passwords.append(password)
            account = register_account(client, rt, password=password)
            phone = account["phone"]
            done.phones.append(phone)
            done.codes.append(last_code(rt, phone, "register"))
            assert _login(client, phone, WRONG_PASSWORD).status_code == 401
            assert _login(client, f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}", password).status_code == 201
            rt.clock.advance(seconds=61)
            _send(client, phone, "login")
            done.codes.append(last_code(rt, phone, "login"))
            by_code = client.post("/api/v1/sessions", json={"phone": phone, "code": done.codes[-1]})
            assert by_code.status_code == 201
            rt.clock.advance(seconds=61)
            _send(client, phone, "reset_password")  # sent, never used
            done.codes.append(last_code(rt, phone, "reset_password"))
        stranger = new_phone()
        done.phones.append(stranger)
        _send(client, stranger, "login")
        assert _login(client, stranger, STRONG_PASSWORD).status_code == 401
        lone = new_phone()
        done.phones.append(lone)
        _send(client, lone, "register")
        done.codes.append(last_code(rt, lone, "register"))
        refused = client.post("/api/v1/accounts", json={
            "phone": lone, "code": done.codes[-1], "password": WEAK_PASSWORD, "nickname": "x",
            "agreements": passport_testing.AGREEMENT_VERSIONS})
        assert refused.status_code == 422
    return done


def phone_needles() -> list[str]:
    phones = sorted(passport_testing.USED_PHONES)
    assert phones, "the suite used no phone numbers"
    return phones + ["+86" + p for p in phones]


def all_codes(rt, activity: Activity) -> set[str]:
    """Every code the suite delivered, and the ones this module used."""
    return {m["code"] for m in outbox_messages(rt) if m.get("code")} | set(activity.codes)


def code_pattern(codes: set[str]) -> re.Pattern[str]:
    # A code as a value of its own: not a slice of a longer hex digest, uuid or timestamp fraction.
    alternatives = "|".join(sorted(codes))
    return re.compile(rf"(?<![0-9A-Za-z.])(?:{alternatives})(?![0-9A-Za-z])")


def find_leaks(rt, text: str, activity: Activity) -> list[str]:
    leaks = [f"phone {n[:3]}…{n[-2:]}" for n in phone_needles() if n in text]
    leaks += [f"password {p[:3]}…" for p in activity.passwords if p in text]
    codes = all_codes(rt, activity)
    assert len(codes) >= len(activity.codes) > 0
    leaks += [f"code {m.group(0)}" for m in code_pattern(codes).finditer(text)]
    return leaks


def select_dump(rt) -> str:
    """Every row of every table (reflected, so tables added later are included), as text."""
    metadata = MetaData()
    metadata.reflect(bind=rt.db.engine)
    assert {"accounts", "verification_codes", "sessions", "audit_events", "consents"} <= set(metadata.tables)
    lines = []
    with rt.db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in zip(table.columns, row, strict=True):
                    if isinstance(value, bytes | bytearray | memoryview):
                        value = bytes(value).decode("latin-1")
                    lines.append(f"{table.name}.{column.name}\t{value}")
    return "\n".join(lines)


def test_select_dump_of_every_table_holds_no_phone_password_or_code(rt, activity):
    dump = select_dump(rt)
    assert len(dump) > 10_000
    assert find_leaks(rt, dump, activity) == []


def test_sqlite_files_hold_no_phone_password_or_code(rt, activity):
    if not rt.db.is_sqlite:
        pytest.skip("the database is not SQLite")
    path = Path(rt.db.engine.url.database)
    raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    assert len(raw) > 10_000
    assert find_leaks(rt, raw.decode("latin-1"), activity) == []
    with sqlite3.connect(path) as conn:
        dump = "\n".join(conn.iterdump())
    assert "INSERT INTO" in dump
    assert find_leaks(rt, dump, activity) == []


def test_pg_dump_holds_no_phone_password_or_code(rt, activity):
    if rt.db.is_sqlite:
        pytest.skip("the database is not PostgreSQL")
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.skip("pg_dump is not installed; the SELECT dump above still covers every table")
    url = re.sub(r"^postgresql\+\w+://", "postgresql://", rt.settings.resolved_database_url)
    done = subprocess.run([pg_dump, "--data-only", "--no-owner", url], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "COPY public.audit_events" in done.stdout
    assert find_leaks(rt, done.stdout, activity) == []


@contextmanager
def service_logging():
    """The service's own log configuration, writing to the current (captured) stderr; restored
    afterwards. Call it in the test body: pytest gives each phase its own capture stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    was_configured, old_config = structlog.is_configured(), dict(structlog.get_config())
    configure_logging("INFO", json=True)
    # Module-level loggers must not keep this test's stream once it is gone.
    structlog.configure(cache_logger_on_first_use=False)
    try:
        yield
    finally:
        if was_configured:
            structlog.configure(**old_config)
        else:
            structlog.reset_defaults()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def test_json_logs_hold_no_full_phone_number(app, rt, capsys):
    phone = new_phone()
    password = "Yy5!lantern-Heron"
    with service_logging(), TestClient(app) as client:
        account = register_account(client, rt, phone=phone, password=password)
        assert _login(client, f"+86 {phone}", password).status_code == 201
        assert _login(client, phone, WRONG_PASSWORD).status_code == 401
        rt.clock.advance(seconds=61)
        _send(client, phone, "login")
        code = last_code(rt, phone, "login")
        assert client.post("/api/v1/sessions", json={"phone": phone, "code": code}).status_code == 201
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {account['session']['token']}"}
                          ).status_code == 200
        structlog.get_logger("passport.test").warning(
            "probe", to=phone, note=f"call +86 {phone[:3]} {phone[3:7]} {phone[7:]}",
            nested={"phone": "+86" + phone}, password=password, code=code)

    captured = capsys.readouterr()
    lines = [line for line in (captured.err + captured.out).splitlines() if line.startswith("{")]
    events = [json.loads(line) for line in lines]
    assert [e["purpose"] for e in events if e.get("event") == "notice.sent"] == ["register", "login"]
    assert any(e.get("event") == "probe" for e in events)
    text = "\n".join(lines)
    spaced = f"{phone[:3]} {phone[3:7]} {phone[7:]}"
    for needle in (phone, "+86" + phone, spaced, phone[3:], password):
        assert needle not in text, needle
    assert not code_pattern({code}).search(text)
    probe = next(e for e in events if e.get("event") == "probe")
    assert probe["to"] == f"{phone[:3]}****{phone[7:]}"
