"""Nothing a user types as a secret or an identifier is kept in clear (ARCHITECTURE "Storage",
COMPLIANCE D5, C6; STYLE "never log an unmasked phone").

A module fixture registers accounts and uses them the way people do: logins good and bad, code
logins, an unused reset code, a bound and a pending email address, real-name claims (checked at once
and left for review), an organisation application and a TOTP second factor. None of the phone
numbers, email addresses, passwords, codes, recovery keys, session tokens, TOTP secrets, real names,
ID numbers, legal representatives or contact phones it typed may appear in a dump of the database:
the SQLite file's bytes, or on PostgreSQL every table's rows (and pg_dump's output when installed).
Every phone number, address and code the outboxes hold so far is looked for as well. The public
values the fixture typed (nickname, organisation name, USCC) must be found, so a dump that misses the
fixture's rows cannot pass. The JSON logs must hold no full phone number either.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
import sqlite3
import subprocess
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest
import structlog
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select

from passport.logs import configure_logging
from passport_testing import (
    STRONG_PASSWORD,
    bearer,
    email_outbox_messages,
    last_code,
    last_email_code,
    login,
    login_with_code,
    new_id_number,
    new_phone,
    new_uscc,
    outbox_messages,
    register,
    register_account,
)

WRONG_PASSWORD = "Wrong!password-7x"
WEAK_PASSWORD = "weakpass"
JPEG = b"\xff\xd8\xff\xe0" + bytes(64)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
TABLES = {"accounts", "verification_codes", "sessions", "audit_events", "consents", "realname_attempts",
          "organizations", "reviews", "notice_outbox"}


@dataclass
class Typed:
    """What the fixture typed: ``secret`` values by kind (none may be stored in clear), the codes it
    used, and ``public`` values that are stored as they are (each dump must show them)."""

    secret: dict[str, set[str]] = field(default_factory=dict)
    codes: set[str] = field(default_factory=set)
    public: set[str] = field(default_factory=set)

    def add(self, kind: str, *values: str) -> None:
        self.secret.setdefault(kind, set()).update(values)

    def phone(self, phone: str) -> None:
        self.add("phone", phone, "+86" + phone, spaced(phone))


def spaced(phone: str) -> str:
    return f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"


def new_name() -> str:
    """A Chinese name no other test uses, so finding it means this module stored it."""
    return random.choice("赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨") + "".join(random.sample("澜峤珩琰瑾璟曦玥煦霁岚溪棠砚", 2))


def send(client, phone: str, purpose: str) -> None:
    answer = client.post("/api/v1/verification-codes", json={"to": phone, "purpose": purpose})
    assert answer.status_code == 202, answer.text


@pytest.fixture(scope="module")
def typed(app, rt) -> Typed:
    done = Typed(public={nickname := f"明文探针{uuid.uuid4().hex[:6]}"})
    done.add("password", STRONG_PASSWORD, WRONG_PASSWORD, WEAK_PASSWORD)
    with TestClient(app) as client, pytest.MonkeyPatch.context() as patch:
        people = []
        for i in range(3):
            password = f"Zz{i}!harbour-{uuid.uuid4().hex[:6]}"
            person = register_account(client, rt, password=password, nickname=nickname)
            phone = person["phone"]
            people.append(person)
            done.phone(phone)
            done.add("password", password)
            done.add("recovery key", person["recovery_key"])
            done.add("session token", person["session"]["token"])
            done.codes.add(last_code(rt, phone, "register"))
            assert login(client, phone, WRONG_PASSWORD).status_code == 401
            done.add("session token", login(client, spaced(phone), password, status=201).json()["token"])
            rt.clock.advance(seconds=61)
            send(client, phone, "login")
            done.codes.add(code := last_code(rt, phone, "login"))
            by_code = login_with_code(client, phone, code)
            assert by_code.status_code == 201, by_code.text
            done.add("session token", by_code.json()["token"])
            rt.clock.advance(seconds=61)
            send(client, phone, "reset_password")  # sent, never used
            done.codes.add(last_code(rt, phone, "reset_password"))
        first, second, third = (bearer(p["session"]["token"]) for p in people)

        stranger = new_phone()
        done.phone(stranger)
        send(client, stranger, "login")
        assert login(client, stranger).status_code == 401
        lone = new_phone()
        done.phone(lone)
        send(client, lone, "register")
        done.codes.add(code := last_code(rt, lone, "register"))
        assert register(client, lone, code, password=WEAK_PASSWORD, nickname="x").status_code == 422

        bound, pending = (f"{who}.{uuid.uuid4().hex[:10]}@example.com" for who in ("bound", "pending"))
        done.add("email", bound, pending)
        for headers, address in ((first, bound), (second, pending)):
            asked = client.post("/api/v1/me/email", json={"email": address}, headers=headers)
            assert asked.status_code == 202, asked.text
            done.codes.add(last_email_code(rt, address, "bind_email"))
        verified = client.post("/api/v1/me/email/verify", json={"code": last_email_code(rt, bound, "bind_email")},
                               headers=first)
        assert verified.status_code == 204, verified.text

        name, number = new_name(), new_id_number()
        done.add("real name", name)
        done.add("ID number", number)
        patch.setattr(rt.settings, "realname_provider", "dev")
        checked = client.post("/api/v1/me/real-name", json={"name": name, "id_number": number}, headers=first)
        assert checked.status_code == 200 and checked.json()["status"] == "verified", checked.text
        name, number = new_name(), new_id_number()
        done.add("real name", name)
        done.add("ID number", number)
        patch.setattr(rt.settings, "realname_provider", "manual")
        claimed = client.post("/api/v1/me/real-name/manual", data={"name": name, "id_number": number},
                              files={"document": ("id.jpg", JPEG, "image/jpeg")}, headers=second)
        assert claimed.status_code == 200 and claimed.json()["status"] == "pending", claimed.text

        representative, contact = new_name(), new_phone()
        organisation, code = f"明文探针{uuid.uuid4().hex[:6]}工作室", new_uscc()
        done.add("legal representative", representative)
        done.phone(contact)
        done.public |= {organisation, code}
        applied = client.post("/api/v1/organizations", data={
            "name": organisation, "uscc": code, "legal_representative": representative, "contact_phone": contact,
        }, files={"license": ("licence.png", PNG, "image/png")}, headers=first)
        assert applied.status_code == 202, applied.text

        issued = client.post("/api/v1/me/totp", headers=third)
        assert issued.status_code == 200, issued.text
        secret = issued.json()["secret"]
        done.add("TOTP secret", secret)
        totp = pyotp.TOTP(secret).at(rt.clock.now())
        done.codes.add(totp)
        confirmed = client.post("/api/v1/me/totp/confirm", json={"code": totp}, headers=third)
        assert confirmed.status_code == 204, confirmed.text
    return done


def outbox_needles(rt, typed: Typed) -> tuple[list[tuple[str, str]], set[str]]:
    """(kind, value) pairs to look for: what the fixture typed, and every phone number and address
    the outboxes sent to so far; and every code they delivered."""
    needles = [(kind, value) for kind, values in typed.secret.items() for value in values]
    for message in outbox_messages(rt):
        to = message["to"]
        needles += [("outbox phone", to)] + ([("outbox phone", to[3:])] if to.startswith("+86") else [])
    needles += [("outbox email", m["to"]) for m in email_outbox_messages(rt)]
    codes = typed.codes | {m["code"] for m in outbox_messages(rt) + email_outbox_messages(rt) if m.get("code")}
    return needles, codes


def code_pattern(codes: set[str]) -> re.Pattern[bytes]:
    # A code as a value of its own: not a slice of a longer hex digest, uuid or timestamp fraction.
    alternatives = "|".join(sorted(codes))
    return re.compile(rf"(?<![0-9A-Za-z.])(?:{alternatives})(?![0-9A-Za-z])".encode())


def find_leaks(rt, dump: bytes, typed: Typed) -> list[str]:
    missing = [value for value in typed.public if value.encode() not in dump]
    assert missing == [], "the dump does not show the fixture's rows"
    needles, codes = outbox_needles(rt, typed)
    folded = dump.lower()
    leaks = [f"{kind} {value[:3]}…{value[-2:]}" for kind, value in needles
             if value.encode() in dump or ("@" in value and value.lower().encode() in folded)]
    assert len(codes) >= len(typed.codes) > 0
    leaks += [f"code {m.group(0).decode()}" for m in code_pattern(codes).finditer(dump)]
    return leaks


def select_dump(rt) -> bytes:
    """Every row of every table (reflected, so tables added later are included): text as UTF-8,
    binary columns as they are."""
    metadata = MetaData()
    metadata.reflect(bind=rt.db.engine)
    assert TABLES <= set(metadata.tables)
    lines = []
    with rt.db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in zip(table.columns, row, strict=True):
                    if isinstance(value, bytes | bytearray | memoryview):
                        value = bytes(value)
                    else:
                        value = str(value).encode()
                    lines.append(f"{table.name}.{column.name}\t".encode() + value)
    return b"\n".join(lines)


def test_select_dump_of_every_table_holds_no_plaintext_personal_data(rt, typed):
    dump = select_dump(rt)
    assert len(dump) > 10_000
    assert find_leaks(rt, dump, typed) == []


def test_sqlite_files_hold_no_plaintext_personal_data(rt, typed):
    if not rt.db.is_sqlite:
        pytest.skip("the database is not SQLite")
    path = Path(rt.db.engine.url.database)
    raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    assert len(raw) > 10_000
    assert find_leaks(rt, raw, typed) == []
    with sqlite3.connect(path) as conn:
        dump = "\n".join(conn.iterdump())
    assert "INSERT INTO" in dump
    assert find_leaks(rt, dump.encode(), typed) == []


def test_pg_dump_holds_no_plaintext_personal_data(rt, typed):
    if rt.db.is_sqlite:
        pytest.skip("the database is not PostgreSQL")
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.skip("pg_dump is not installed; the SELECT dump above still covers every table")
    url = re.sub(r"^postgresql\+\w+://", "postgresql://", rt.settings.resolved_database_url)
    done = subprocess.run([pg_dump, "--data-only", "--no-owner", url], capture_output=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"COPY public.audit_events" in done.stdout
    assert find_leaks(rt, done.stdout, typed) == []


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
        assert login(client, f"+86 {phone}", password).status_code == 201
        assert login(client, phone, WRONG_PASSWORD).status_code == 401
        rt.clock.advance(seconds=61)
        send(client, phone, "login")
        code = last_code(rt, phone, "login")
        assert login_with_code(client, phone, code).status_code == 201
        assert client.get("/api/v1/me", headers=bearer(account["session"]["token"])).status_code == 200
        structlog.get_logger("passport.test").warning(
            "probe", to=phone, note=f"call +86 {phone[:3]} {phone[3:7]} {phone[7:]}",
            nested={"phone": "+86" + phone}, password=password, code=code)

    captured = capsys.readouterr()
    lines = [line for line in (captured.err + captured.out).splitlines() if line.startswith("{")]
    events = [json.loads(line) for line in lines]
    assert [e["purpose"] for e in events if e.get("event") == "notice.sent"] == ["register", "login"]
    assert any(e.get("event") == "probe" for e in events)
    text = "\n".join(lines)
    spaced_phone = f"{phone[:3]} {phone[3:7]} {phone[7:]}"
    for needle in (phone, "+86" + phone, spaced_phone, phone[3:], password):
        assert needle not in text, needle
    assert not code_pattern({code}).search(text.encode())
    probe = next(e for e in events if e.get("event") == "probe")
    assert probe["to"] == f"{phone[:3]}****{phone[7:]}"
