"""The hash chain holds under concurrent load and names the first bad record when a row is edited or
deleted directly in the database (COMPLIANCE L1; issue 4), through the CLI and the admin API.

The chain is global and shared by the whole suite: every tampering test restores the row (or rolls
back) so later tests still see an intact chain."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import delete, func, insert, select, update
from typer.testing import CliRunner

from passport.audit import service as audit
from passport.audit.models import AuditEvent
from passport.cli import app as cli_app
from passport.security.passwords import Hasher
from passport_testing import DATABASE_URL, STRONG_PASSWORD, make_staff, new_phone, register_account

ACCOUNTS = 100
LOGINS = 200
_events = AuditEvent.__table__


@pytest.fixture()
def cli(rt, monkeypatch):
    """Run ``passport …`` against the suite's database."""
    monkeypatch.setenv("PASSPORT_ENV", "test")
    monkeypatch.setenv("PASSPORT_DATABASE_URL", rt.settings.resolved_database_url)
    monkeypatch.setenv("PASSPORT_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.delenv("PASSPORT_REDIS_URL", raising=False)
    # The CLI configures logging for its process; here that would point structlog at CliRunner's stdout.
    monkeypatch.setattr("passport.logs.configure_logging", lambda *args, **kwargs: None)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli_app, list(args))


def seq_stats(rt) -> tuple[int, int, int]:
    with rt.db.read() as db:
        return db.execute(select(func.min(_events.c.seq), func.max(_events.c.seq), func.count())).one()


@contextmanager
def committed(rt, statement_for_row):
    """Change one row for real (the CLI reads through its own connection); put it back afterwards."""
    with rt.db.read() as db:
        victim = db.execute(select(_events).order_by(_events.c.seq.desc()).offset(1).limit(1)).one()._asdict()
    with rt.db.write() as db:
        db.execute(statement_for_row(victim["seq"]))
    try:
        yield victim
    finally:
        with rt.db.write() as db:
            db.execute(delete(_events).where(_events.c.seq == victim["seq"]))
            db.execute(insert(_events), victim)
        with rt.db.read() as db:
            assert audit.verify(db).ok


# On PostgreSQL the password login runs on the event loop; with one hashing slot the loop hashes too.
SLOTS = [1, 2] if (DATABASE_URL or "").startswith("postgresql") else [None]


@pytest.mark.parametrize("slots", SLOTS)
def test_chain_verifies_after_concurrent_logins_and_staff_actions(client, rt, live_server, slots, monkeypatch,
                                                                   request):
    if slots is not None:
        settings = rt.settings
        hasher = Hasher(settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism, slots)
        monkeypatch.setattr(rt, "hasher", hasher)
        request.addfinalizer(hasher.close)
    phones = [new_phone() for _ in range(ACCOUNTS)]
    for phone in phones:
        register_account(client, rt, phone)
    auditor = make_staff(rt, "auditor")
    low, _, _ = seq_stats(rt)

    def password_login(phone):
        with httpx.Client(base_url=live_server, timeout=120) as http:
            return http.post("/api/v1/sessions", json={"login": phone, "password": STRONG_PASSWORD}).status_code

    def staff_creation(_):
        make_staff(rt, random.choice(["reviewer", "operator", "auditor"]))
        return 201

    def audit_search(_):
        with httpx.Client(base_url=live_server, timeout=120, headers=auditor["headers"]) as http:
            return http.get("/api/v1/admin/audit", params={"action": "login.succeeded", "limit": 5}).status_code

    jobs = [(password_login, phone) for phone in phones * (LOGINS // ACCOUNTS)]
    jobs += [(staff_creation, i) for i in range(15)] + [(audit_search, i) for i in range(15)]
    random.shuffle(jobs)
    with ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(lambda job: job[0](job[1]), jobs))

    assert codes.count(201) == LOGINS + 15, sorted(set(codes))
    assert codes.count(200) == 15
    with rt.db.read() as db:
        report = audit.verify(db, batch=97)  # batches that do not divide the count
        logins = db.scalar(select(func.count()).select_from(_events).where(
            _events.c.action == "login.succeeded", _events.c.seq > low))
    first, last, count = seq_stats(rt)
    assert report == audit.ChainReport(True, count)
    assert last - first + 1 == count  # no gaps
    assert logins >= LOGINS


def test_cli_verify_passes_on_an_intact_chain(rt, cli):
    _, _, count = seq_stats(rt)
    result = cli("audit", "verify")
    assert result.exit_code == 0, result.output
    assert f"ok: {count} records" in result.output


def test_an_edited_record_is_named_by_the_cli_and_the_api(rt, cli, client):
    auditor = make_staff(rt, "auditor")
    with committed(rt, lambda seq: update(_events).where(_events.c.seq == seq).values(
            details='{"channel":"api","forged":true}')) as victim:
        result = cli("audit", "verify")
        assert result.exit_code == 1
        assert f"seq {victim['seq']}: hash mismatch" in result.output
        answer = client.post("/api/v1/admin/audit/verify", headers=auditor["headers"])
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["ok"], body["first_bad"]) == (False, victim["seq"])
        assert body["reason"].startswith("hash mismatch")
    assert cli("audit", "verify").exit_code == 0


def test_a_deleted_record_is_named_as_a_gap(rt, cli, client):
    auditor = make_staff(rt, "auditor")
    with committed(rt, lambda seq: delete(_events).where(_events.c.seq == seq)) as victim:
        result = cli("audit", "verify")
        assert result.exit_code == 1
        assert f"seq {victim['seq'] + 1}: gap in seq: record {victim['seq']} missing" in result.output
        body = client.post("/api/v1/admin/audit/verify", headers=auditor["headers"]).json()
        assert (body["ok"], body["first_bad"]) == (False, victim["seq"] + 1)
    assert cli("audit", "verify").exit_code == 0


class _Rollback(Exception):
    pass


def test_a_rehashed_record_with_a_foreign_link_is_a_broken_link(rt):
    make_staff(rt, "operator")
    with pytest.raises(_Rollback), rt.db.write() as db:
        victim = db.execute(select(_events).order_by(_events.c.seq.desc()).limit(1)).one()._asdict()
        forged = victim | {"prev_hash": "f" * 64}
        forged["hash"] = audit.hashlib.sha256(audit.canonical(forged)).hexdigest()
        db.execute(update(_events).where(_events.c.seq == victim["seq"]).values(
            prev_hash=forged["prev_hash"], hash=forged["hash"]))
        report = audit.verify(db)
        assert (report.ok, report.first_bad) == (False, victim["seq"])
        assert report.reason.startswith("broken link")
        raise _Rollback


def test_a_removed_beginning_without_a_checkpoint_is_refused(rt):
    make_staff(rt, "operator")
    with pytest.raises(_Rollback), rt.db.write() as db:
        first = db.scalar(select(func.min(_events.c.seq)))
        db.execute(delete(_events).where(_events.c.seq == first))
        report = audit.verify(db)
        assert (report.ok, report.first_bad) == (False, first + 1)
        assert "retention checkpoint" in report.reason
        raise _Rollback


def test_a_chain_cut_off_at_its_end_is_named(rt):
    """Deleting the newest records leaves a chain that links up perfectly; the head still names them."""
    make_staff(rt, "operator")
    make_staff(rt, "operator")
    with pytest.raises(_Rollback), rt.db.write() as db:
        newest = db.execute(select(_events.c.seq).order_by(_events.c.seq.desc()).limit(1)).scalar_one()
        db.execute(delete(_events).where(_events.c.seq >= newest - 1))
        report = audit.verify(db)
        assert (report.ok, report.first_bad) == (False, newest - 1)
        assert report.reason == f"records {newest - 1}-{newest} missing: the chain head names record {newest}"
        raise _Rollback
    with rt.db.read() as db:
        assert audit.verify(db).ok


def test_appends_move_the_head_to_the_newest_record(rt):
    make_staff(rt, "operator")
    with rt.db.read() as db:
        newest = db.execute(select(_events.c.seq, _events.c.hash).order_by(_events.c.seq.desc()).limit(1)).one()
        head = db.execute(select(audit._head.c.seq, audit._head.c.hash)).one()
    assert tuple(head) == tuple(newest)
