"""Finalisation (COMPLIANCE D2, D3): with a zero-day cooling-off, `passport worker --once` deletes or
replaces every personal field of the account; a dump of the whole database then holds no trace of its
phone, email, real name or ID number, in clear or as a blind index; the same phone registers anew.
Workers share the work, each request is finalised once, and a worker killed half way (SIGKILL) leaves
nothing half done: the next run completes it."""

from __future__ import annotations

import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import MetaData, select

from passport.accounts.models import Account
from passport.audit import service as audit
from passport.audit.models import AuditEvent
from passport.cancellation import service
from passport.cancellation.models import CancellationRequest
from passport.notify.models import OutboxNotice
from passport.worker import run_once
from passport_testing import bearer, last_email_code, outbox_messages, register_account


def worker_env(rt, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PASSPORT_ENV="test", PASSPORT_DATA_DIR=str(rt.settings.data_dir),
               PASSPORT_DATABASE_URL=rt.settings.resolved_database_url, PASSPORT_LOG_JSON="true",
               PASSPORT_CANCELLATION_COOLING_OFF_DAYS=str(rt.settings.cancellation_cooling_off_days))
    if rt.settings.redis_url:
        env["PASSPORT_REDIS_URL"] = rt.settings.redis_url
    return env | extra


def worker_command() -> list[str]:
    script = Path(sys.executable).parent / "passport"
    return [str(script), "worker", "--once"] if script.exists() else [sys.executable, "-m", "passport", "worker",
                                                                      "--once"]


# ``passport worker --once`` that sleeps 3 s after each finalisation step, so that the test can kill
# it half way: the pause is injected here, the service has no test hook.
PAUSING_WORKER = [sys.executable, "-c", "\n".join((
    "import sys, time",
    "from passport.cancellation import service",
    "logged = service._step",
    "service._step = lambda rt, request, step: (logged(rt, request, step), time.sleep(3))",
    "from passport.cli import app",
    "sys.exit(app(['worker', '--once']))",
))]


def dump(rt) -> str:
    """Every row of every table (reflected, so every domain's tables are in), bytes as hex and as text."""
    metadata = MetaData()
    metadata.reflect(bind=rt.db.engine)
    assert {"accounts", "sessions", "verification_codes", "audit_events", "cancellation_requests"} <= set(
        metadata.tables)
    lines = []
    with rt.db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in zip(table.columns, row, strict=True):
                    if isinstance(value, bytes | bytearray | memoryview):
                        value = f"{bytes(value).hex()} {bytes(value).decode('latin-1')}"
                    lines.append(f"{table.name}.{column.name}\t{value}")
    return "\n".join(lines)


def pg_dump(rt) -> str | None:
    if rt.db.is_sqlite or shutil.which("pg_dump") is None:
        return None
    url = re.sub(r"^postgresql\+\w+://", "postgresql://", rt.settings.resolved_database_url)
    done = subprocess.run(["pg_dump", "--data-only", "--no-owner", url], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def traces(text: str, needles: dict[str, str]) -> list[str]:
    return [name for name, needle in needles.items() if needle in text]


def row(rt, account_id: str) -> Account:
    with rt.db.read() as db:
        return db.get(Account, account_id)


def cancelled_events(rt, account_id: str) -> int:
    with rt.db.read() as db:
        return len(db.scalars(select(AuditEvent.seq).where(AuditEvent.action == "account.cancelled",
                                                           AuditEvent.subject_id == account_id)).all())


def test_full_journey_leaves_no_trace_and_the_phone_registers_again(client, rt, member, zero_day, dev_realname,
                                                                     id_numbers):
    email = f"gone-{member.id[:8]}@example.com"
    assert client.post("/api/v1/me/email", json={"email": email}, headers=member.headers).status_code == 202
    assert client.post("/api/v1/me/email/verify", json={"code": last_email_code(rt, email, "bind_email")},
                       headers=member.headers).status_code == 204
    name, id_number = "欧阳" + random.choice("明华军芳丽强") + random.choice("伟敏静磊洋勇"), id_numbers()
    verified = client.post("/api/v1/me/real-name", json={"name": name, "id_number": id_number},
                           headers=member.headers)
    assert verified.status_code == 200 and verified.json()["status"] == "verified", verified.text
    nickname = f"旧号{member.id[:6]}"
    assert client.patch("/api/v1/me", json={"nickname": nickname, "bio": "我的简介 bio-" + member.id[:6]},
                        headers=member.headers).status_code == 200
    before = row(rt, member.id)
    assert before.real_name_enc and before.id_number_bidx and before.email_bidx
    needles = {"phone": member.phone, "+86 phone": "+86" + member.phone, "email": email, "name": name,
               "id number": id_number, "nickname": nickname, "bio": "bio-" + member.id[:6],
               "phone blind index": before.phone_bidx.hex(), "email blind index": before.email_bidx.hex(),
               "id number blind index": before.id_number_bidx.hex()}
    assert set(traces(dump(rt), needles)) >= {"phone blind index", "email blind index", "id number blind index",
                                              "nickname"}

    assert member.request().status_code == 202
    done = subprocess.run(worker_command(), env=worker_env(rt), capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["finalised"] >= 1

    tombstone = row(rt, member.id)
    assert tombstone.status == "cancelled" and tombstone.nickname == service.TOMBSTONE_NICKNAME
    for column in ("phone_enc", "phone_bidx", "email_enc", "email_bidx", "email_pending_enc", "real_name_enc",
                   "id_number_enc", "id_number_bidx", "password_hash", "recovery_key_hash", "totp_secret_enc",
                   "bio"):
        assert getattr(tombstone, column) is None, column
    assert traces(dump(rt), needles) == []
    assert traces(pg_dump(rt) or "", needles) == []
    assert cancelled_events(rt, member.id) == 1
    with rt.db.read() as db:
        assert audit.verify(db).ok
        # The last notice was queued for the phone before it was erased; once sent, the outbox keeps
        # no trace of the number, not even encrypted.
        final = db.scalars(select(OutboxNotice).where(OutboxNotice.account_id == member.id,
                                                      OutboxNotice.template == "cancellation_finalised")).all()
    assert len(final) == 1 and final[0].channel == "sms"
    assert (final[0].status, final[0].recipient_enc) == ("sent", None)
    assert [m for m in outbox_messages(rt)
            if m["to"] == "+86" + member.phone and m["purpose"] == "cancellation_finalised"]

    # The old session and credentials are gone; the number and the address are free again.
    assert member.me().status_code == 401
    login = client.post("/api/v1/sessions", json={"login": member.phone, "password": member.password})
    assert login.status_code == 401
    again = register_account(client, rt, phone=member.phone)
    assert again["account"]["id"] != member.id
    headers = bearer(again["session"]["token"])
    assert client.post("/api/v1/me/email", json={"email": email}, headers=headers).status_code == 202
    assert client.post("/api/v1/me/email/verify", json={"code": last_email_code(rt, email, "bind_email")},
                       headers=headers).status_code == 204
    assert client.post("/api/v1/me/real-name", json={"name": name, "id_number": id_number},
                       headers=headers).json()["status"] == "verified"


def test_workers_in_parallel_finalise_each_request_once(rt, make_member, zero_day):
    members = [make_member() for _ in range(6)]
    for m in members:
        assert m.request().status_code == 202
    start, counts, failures = threading.Barrier(3), [], []

    def work() -> None:
        start.wait()
        try:
            counts.append(service.finalise_due(rt))
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert sum(counts) >= len(members)
    for m in members:
        assert row(rt, m.id).status == "cancelled"
        assert cancelled_events(rt, m.id) == 1
    assert service.finalise_due(rt) == 0


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)


def test_a_worker_killed_half_way_leaves_nothing_half_done_and_the_next_run_completes(rt, member, zero_day):
    assert member.request().status_code == 202
    env = worker_env(rt, PASSPORT_LOG_LEVEL="DEBUG")
    proc = subprocess.Popen(PAUSING_WORKER, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stderr, lines), daemon=True).start()
    steps, deadline = [], time.monotonic() + 60
    try:
        while "sessions" not in steps:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if '"cancellation.finalise_step"' in line:
                steps.append(json.loads(line)["step"])
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert steps == ["notices", "final_notice", "real_name", "sessions"]
    assert proc.returncode == -signal.SIGKILL

    # Killed while it slept after deleting the sessions, inside its unit of work: nothing of it stayed.
    still = row(rt, member.id)
    assert still.status == "cancelling" and still.phone_bidx is not None
    rt.sessions_cache.clear()
    assert member.me().status_code == 200

    deadline = time.monotonic() + 30
    while row(rt, member.id).status != "cancelled" and time.monotonic() < deadline:
        run_once(rt)  # PostgreSQL may need a moment to end the killed worker's transaction
        time.sleep(0.2)
    assert row(rt, member.id).status == "cancelled"
    assert row(rt, member.id).phone_bidx is None
    assert member.me().status_code == 401
    assert cancelled_events(rt, member.id) == 1
    with rt.db.read() as db:
        assert audit.verify(db).ok
        assert db.scalars(select(CancellationRequest.status).where(CancellationRequest.account_id == member.id)
                          ).all() == ["finalised"]
    run_once(rt)
    assert cancelled_events(rt, member.id) == 1  # idempotent


def test_one_account_that_fails_to_finalise_does_not_hold_up_the_others(rt, make_member, zero_day, monkeypatch):
    broken, fine = make_member(), make_member()
    for m in (broken, fine):
        assert m.request().status_code == 202
    real_erase = service.realname.erase_account

    def failing(rt_, db, account_id):
        if account_id == broken.id:
            raise RuntimeError("document store unavailable")
        return real_erase(rt_, db, account_id)

    monkeypatch.setattr(service.realname, "erase_account", failing)
    assert service.finalise_due(rt) == 1
    assert row(rt, fine.id).status == "cancelled"
    assert row(rt, broken.id).status == "cancelling" and row(rt, broken.id).phone_bidx is not None
    monkeypatch.setattr(service.realname, "erase_account", real_erase)
    assert service.finalise_due(rt) == 1
    assert row(rt, broken.id).status == "cancelled"
