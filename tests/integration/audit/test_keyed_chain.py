"""The keyed, anchored audit chain (issue 15, COMPLIANCE L1): someone who can write to the database
but holds no audit key cannot rewrite the log so that ``passport audit verify`` still passes, even
when every hash is recomputed and the head row moved; a cut-off end is caught by an anchor written
before it; keys rotate (each record names its key id) and an unknown key id fails.

The chain is shared by the whole suite: every test puts the rows and the head back (``restored``)."""

from __future__ import annotations

import base64
import hashlib
import json
from contextlib import contextmanager

import pytest
from sqlalchemy import delete, insert, select, update
from typer.testing import CliRunner

from passport.audit import service as audit
from passport.audit.models import AuditChainHead, AuditEvent
from passport.cli import app as cli_app
from passport_testing import make_staff

_events = AuditEvent.__table__
_head = AuditChainHead.__table__
WRONG_KEY = bytes(range(32))


@pytest.fixture()
def cli(rt, monkeypatch):
    """Run ``passport …`` against the suite's database (as test_chain does)."""
    monkeypatch.setenv("PASSPORT_ENV", "test")
    monkeypatch.setenv("PASSPORT_DATABASE_URL", rt.settings.resolved_database_url)
    monkeypatch.setenv("PASSPORT_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.delenv("PASSPORT_REDIS_URL", raising=False)
    monkeypatch.delenv("PASSPORT_AUDIT_KEYS", raising=False)
    monkeypatch.setattr("passport.logs.configure_logging", lambda *args, **kwargs: None)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli_app, list(args))


def newest_seq(rt) -> int:
    with rt.db.read() as db:
        return db.scalar(select(_head.c.seq))


@contextmanager
def restored(rt, since: int):
    """Let the test change records from seq ``since`` on (and the head) for real; put them back after."""
    with rt.db.read() as db:
        rows = [r._asdict() for r in db.execute(select(_events).where(_events.c.seq >= since))]
        head = db.execute(select(_head)).one()._asdict()
    try:
        yield
    finally:
        with rt.db.write() as db:
            db.execute(delete(_events).where(_events.c.seq >= since))
            if rows:
                db.execute(insert(_events), rows)
            db.execute(update(_head).values(head))
        with rt.db.read() as db:
            assert audit.verify(db).ok


def rewrite(rt, victim: int, *, scheme: str, key: bytes = WRONG_KEY, key_id: str | None = None) -> None:
    """What an attacker with write access does: change record ``victim``, recompute the hash of it
    and every later record, re-sign them as ``scheme`` says, and move the head to the new newest.
    ``unkeyed``: strip key id and MAC (the hash-only chain of before); ``keyed``: MACs made with
    ``key`` under ``key_id`` (default: the real current key id)."""
    with rt.db.write() as db:
        prev = db.execute(select(_events).where(_events.c.seq == victim - 1)).one()._asdict()
        later = [r._asdict() for r in db.execute(select(_events).where(_events.c.seq >= victim)
                                                  .order_by(_events.c.seq))]
        later[0]["details"] = json.dumps({"channel": "api", "forged": True})
        prev_link = audit._link(prev)
        prev_hash = prev["hash"]
        for row in later:
            row["prev_hash"] = prev_hash
            row["hash"] = hashlib.sha256(audit.canonical(row)).hexdigest()
            if scheme == "unkeyed":
                row["key_id"] = row["mac"] = None
            else:
                row["key_id"] = key_id or rt.keys.audit.current_kid
                row_key = audit.record_key(key, row["key_id"], audit.content(row))
                row["mac"] = audit.record_mac(row_key, prev_link, row["hash"])
            db.execute(update(_events).where(_events.c.seq == row["seq"]).values(
                details=row["details"], prev_hash=row["prev_hash"], hash=row["hash"], key_id=row["key_id"],
                mac=row["mac"]))
            prev_hash, prev_link = row["hash"], audit._link(row)
        db.execute(update(_head).values(seq=later[-1]["seq"], hash=prev_hash, mac=prev_link))


def three_more_records(rt) -> int:
    """Append three records; returns the seq of the first."""
    first = newest_seq(rt) + 1
    for _ in range(3):
        make_staff(rt, "operator")
    return first


def test_records_carry_the_current_key_id_and_a_mac(rt):
    first = three_more_records(rt)
    with rt.db.read() as db:
        rows = db.execute(select(_events).where(_events.c.seq >= first).order_by(_events.c.seq)).all()
        head = db.execute(select(_head)).one()
    assert {r.key_id for r in rows} == {rt.keys.audit.current_kid}
    assert all(len(r.mac) == 64 for r in rows)
    assert head.mac == rows[-1].mac


@pytest.mark.parametrize(("scheme", "key_id", "reason"), [
    ("unkeyed", None, "record without MAC after the keyed records began"),
    ("keyed", None, "MAC mismatch: the record was changed or the chain rewritten without the audit key"),
    ("keyed", "k9", "record signed with audit key 'k9', which is not configured"),
])
def test_a_rewritten_chain_with_recomputed_hashes_and_head_fails_verify(rt, cli, scheme, key_id, reason):
    victim = three_more_records(rt) + 1
    with restored(rt, victim):
        rewrite(rt, victim, scheme=scheme, key_id=key_id)
        with rt.db.read() as db:  # the hash chain alone would pass: every hash and the head fit
            assert _hash_chain_fits(db)
        result = cli("audit", "verify")
        assert result.exit_code == 1, result.output
        assert f"bad: record seq {victim}: {reason}" in result.output


def _hash_chain_fits(db) -> bool:
    rows = db.execute(select(_events).order_by(_events.c.seq)).all()
    head = db.execute(select(_head)).one()
    links = all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    hashes = all(hashlib.sha256(audit.canonical(r._mapping)).hexdigest() == r.hash for r in rows)
    return links and hashes and (head.seq, head.hash) == (rows[-1].seq, rows[-1].hash)


def test_a_chain_stripped_of_every_mac_fails_verify(rt, cli):
    with rt.db.read() as db:
        first = db.scalar(select(_events.c.seq).order_by(_events.c.seq).limit(1))
    with restored(rt, first):
        with rt.db.write() as db:
            db.execute(update(_events).values(key_id=None, mac=None))
            db.execute(update(_head).values(mac=_head.c.hash))
        result = cli("audit", "verify")
        assert result.exit_code == 1, result.output
        assert f"bad: record seq {first}: no record carries a MAC" in result.output


def test_anchor_writes_a_signed_line_of_the_new_head_and_verify_checks_it(rt, cli, tmp_path):
    anchors = tmp_path / "anchors.jsonl"
    assert cli("audit", "anchor", "--output", str(anchors)).exit_code == 0
    stdout = cli("audit", "anchor")
    assert stdout.exit_code == 0, stdout.output
    anchors.write_text(anchors.read_text() + stdout.output)
    lines = [json.loads(line) for line in anchors.read_text().splitlines()]
    assert [set(a) for a in lines] == [{"type", "version", "seq", "mac", "at", "key_id", "signature"}] * 2
    with rt.db.read() as db:
        row = db.execute(select(_events).where(_events.c.seq == lines[1]["seq"])).one()
        head = db.execute(select(_head)).one()
    assert (row.action, row.mac, row.key_id) == ("audit.anchored", lines[1]["mac"], rt.keys.audit.current_kid)
    assert lines[0]["seq"] + 1 == lines[1]["seq"] == head.seq
    result = cli("audit", "verify", "--anchor", str(anchors))
    assert result.exit_code == 0, result.output
    assert "2 anchored records match" in result.output


def test_a_rewrite_below_an_anchor_fails_against_it_even_when_made_with_the_key(rt, cli, tmp_path):
    """Someone who took the audit key can make MACs; an anchor written before still catches it."""
    victim = three_more_records(rt)
    anchors = tmp_path / "anchors.jsonl"
    assert cli("audit", "anchor", "--output", str(anchors)).exit_code == 0
    anchored = json.loads(anchors.read_text())["seq"]
    with restored(rt, victim):
        rewrite(rt, victim, scheme="keyed", key=rt.keys.audit.current)
        assert cli("audit", "verify").exit_code == 0  # the stolen key made good MACs
        result = cli("audit", "verify", "--anchor", str(anchors))
        assert result.exit_code == 1, result.output
        assert f"bad: record seq {anchored}: record differs from its anchor of" in result.output


def test_a_truncation_below_an_anchor_is_caught(rt, cli, tmp_path):
    """Cutting off the newest records and moving the head back needs no key; the anchor names them."""
    first = three_more_records(rt)
    anchors = tmp_path / "anchors.jsonl"
    assert cli("audit", "anchor", "--output", str(anchors)).exit_code == 0
    anchored = json.loads(anchors.read_text())["seq"]
    with restored(rt, first):
        with rt.db.write() as db:
            kept = db.execute(select(_events).where(_events.c.seq == first)).one()
            db.execute(delete(_events).where(_events.c.seq > first))
            db.execute(update(_head).values(seq=kept.seq, hash=kept.hash, mac=kept.mac))
        assert cli("audit", "verify").exit_code == 0  # without the anchor, nothing tells
        result = cli("audit", "verify", "--anchor", str(anchors))
        assert result.exit_code == 1, result.output
        assert (f"bad: record seq {first + 1}: record {anchored}, anchored at {json.loads(anchors.read_text())['at']}, "
                f"is missing: the chain ends at record {first}") in result.output


@pytest.mark.parametrize(("change", "message"), [
    ({"seq": 1}, "the signature does not match"),
    ({"key_id": "k9"}, "signed with audit key 'k9', which is not configured"),
])
def test_a_changed_or_foreign_anchor_fails(rt, cli, tmp_path, change, message):
    anchors = tmp_path / "anchors.jsonl"
    assert cli("audit", "anchor", "--output", str(anchors)).exit_code == 0
    anchor = json.loads(anchors.read_text()) | change
    anchors.write_text(audit.anchor_line(anchor))
    result = cli("audit", "verify", "--anchor", str(anchors))
    assert result.exit_code == 1, result.output
    assert f"anchor of record {anchor['seq']}: {message}" in result.output


def test_a_file_that_holds_no_anchor_fails(cli, tmp_path):
    empty, junk = tmp_path / "empty.jsonl", tmp_path / "junk.jsonl"
    empty.write_text("\n")
    junk.write_text('{"type": "something else"}\n')
    assert "holds no anchor" in cli("audit", "verify", "--anchor", str(empty)).output
    result = cli("audit", "verify", "--anchor", str(junk))
    assert result.exit_code == 1
    assert "line 1 is not an anchor" in result.output


def test_rotated_keys_verify_each_record_with_its_own_key_id(rt, cli, tmp_path, monkeypatch):
    old = rt.keys.audit
    new_key = base64.b64encode(bytes(range(1, 33))).decode()
    rotated = f"k2:{new_key},{old.current_kid}:{base64.b64encode(old.current).decode()}"
    before = three_more_records(rt)
    with restored(rt, before):
        monkeypatch.setenv("PASSPORT_AUDIT_KEYS", rotated)
        anchors = tmp_path / "anchors.jsonl"
        assert cli("audit", "anchor", "--output", str(anchors)).exit_code == 0  # written by the new key
        with rt.db.read() as db:
            rows = db.execute(select(_events.c.seq, _events.c.key_id).where(_events.c.seq >= before)
                              .order_by(_events.c.seq)).all()
        assert [r.key_id for r in rows] == [old.current_kid] * 3 + ["k2"]
        assert json.loads(anchors.read_text())["key_id"] == "k2"
        result = cli("audit", "verify", "--anchor", str(anchors))
        assert result.exit_code == 0, result.output

        # Without the old key its records fail; without the new one, the new record does.
        monkeypatch.setenv("PASSPORT_AUDIT_KEYS", f"k2:{new_key}")
        result = cli("audit", "verify")
        assert result.exit_code == 1
        assert f"record signed with audit key {old.current_kid!r}, which is not configured" in result.output
        monkeypatch.delenv("PASSPORT_AUDIT_KEYS")
        result = cli("audit", "verify")
        assert result.exit_code == 1
        assert f"bad: record seq {rows[-1].seq}: record signed with audit key 'k2'" in result.output
        assert "anchor of record" in cli("audit", "verify", "--anchor", str(anchors)).output


def test_the_admin_api_reports_a_rewritten_chain(rt, client):
    auditor = make_staff(rt, "auditor")
    victim = three_more_records(rt)
    with restored(rt, victim):
        rewrite(rt, victim, scheme="keyed")
        body = client.post("/api/v1/admin/audit/verify", headers=auditor["headers"]).json()
        assert (body["ok"], body["first_bad"]) == (False, victim)
        assert body["reason"].startswith("MAC mismatch")
    body = client.post("/api/v1/admin/audit/verify", headers=auditor["headers"]).json()
    assert (body["ok"], body["legacy_until"]) == (True, None)  # this suite's chain was keyed from the start



def test_records_from_before_the_keys_stay_a_verifiable_legacy_beginning(tmp_path, cli, monkeypatch):
    """Migration 0013 has no key: records written before it keep their hash and no MAC, and the chain
    goes on keyed from the newest of them (SQLite: a database of its own, migrated step by step)."""
    from passport.db import migrate
    from passport.runtime import build_runtime
    from passport_testing import make_settings

    settings = make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'legacy.sqlite3'}")
    migrate(settings.resolved_database_url, "0012")
    legacy = build_runtime(settings)
    try:
        with legacy.db.write() as db:  # the hash-only chain of before: no key_id, no mac yet
            prev = audit.GENESIS
            for seq in (1, 2, 3):
                row = {"seq": seq, "at": legacy.clock.now(), "actor_type": "system", "actor_id": None,
                       "subject_type": None, "subject_id": None, "action": "retention.swept", "result": "ok",
                       "ip": None, "user_agent": None, "details": "{}", "prev_hash": prev}
                row["hash"] = prev = hashlib.sha256(audit.canonical(row)).hexdigest()
                db.execute(insert(_events).values(row))  # only the columns of before
            db.execute(update(_head).values(seq=3, hash=prev))
    finally:
        legacy.close()
    migrate(settings.resolved_database_url)
    monkeypatch.setenv("PASSPORT_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("PASSPORT_DATA_DIR", str(tmp_path))

    result = cli("audit", "verify")  # nothing written since the upgrade: no MAC anywhere yet
    assert result.exit_code == 1 and "no record carries a MAC" in result.output
    assert cli("audit", "anchor").exit_code == 0
    result = cli("audit", "verify")
    assert result.exit_code == 0, result.output
    assert "ok: 4 records" in result.output and "records up to seq 3 are legacy" in result.output
    upgraded = build_runtime(settings)
    try:
        with upgraded.db.read() as db:
            report = audit.verify(db)
            fourth = db.execute(select(_events).where(_events.c.seq == 4)).one()
        assert (report.ok, report.legacy_until) == (True, 3)
        assert (fourth.key_id, fourth.prev_hash) == (upgraded.keys.audit.current_kid, prev)
        assert fourth.mac == audit.record_mac(audit.record_key(upgraded.keys.audit.current, fourth.key_id,
                                                               audit.content(fourth._mapping)), prev, fourth.hash)
    finally:
        upgraded.close()
