"""Retention of the audit log (COMPLIANCE L1: kept at least six months, default 365 days): the
worker removes expired records behind a checkpoint, and the chain still verifies."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from sqlalchemy import delete, func, select

from passport import worker
from passport.audit import service as audit
from passport.audit.models import AuditEvent
from passport.settings import Settings
from passport_testing import make_staff

_events = AuditEvent.__table__


def checkpoints(rt) -> list[dict]:
    with rt.db.read() as db:
        rows = db.execute(select(_events.c.seq, _events.c.details).where(_events.c.action == audit.CHECKPOINT)
                          .order_by(_events.c.seq)).all()
    return [{"seq": r.seq} | json.loads(r.details) for r in rows]


@pytest.mark.parametrize("days", [0, 30, 179])
def test_less_than_six_months_is_refused(days, monkeypatch):
    with pytest.raises(ValidationError, match="PASSPORT_AUDIT_RETENTION_DAYS must be at least 180"):
        Settings(audit_retention_days=days)
    monkeypatch.setenv("PASSPORT_AUDIT_RETENTION_DAYS", str(days))
    with pytest.raises(ValidationError, match="PASSPORT_AUDIT_RETENTION_DAYS"):
        Settings()


def test_six_months_or_more_is_accepted(monkeypatch):
    assert Settings().audit_retention_days == 365
    monkeypatch.setenv("PASSPORT_AUDIT_RETENTION_DAYS", "180")
    assert Settings().audit_retention_days == 180


def test_nothing_within_the_period_is_removed(rt):
    make_staff(rt, "operator")
    with rt.db.read() as db:
        first, last = db.execute(select(func.min(_events.c.seq), func.max(_events.c.seq))).one()
    rt.clock.advance(days=rt.settings.audit_retention_days - 1)
    assert worker.run_once(rt)["audit_events"] == 0
    with rt.db.read() as db:
        assert db.scalar(select(func.min(_events.c.seq))) == first
        assert db.scalar(select(func.count()).select_from(_events).where(_events.c.seq <= last)) == last - first + 1
        assert audit.verify(db).ok


def test_expired_records_go_behind_a_checkpoint_and_the_chain_still_verifies(rt):
    make_staff(rt, "operator")
    with rt.db.read() as db:
        old_first, old_last = db.execute(select(func.min(_events.c.seq), func.max(_events.c.seq))).one()
        last_hash = db.scalar(select(_events.c.hash).where(_events.c.seq == old_last))
    # Far enough that the records other tests wrote with a clock moved forward have expired too
    # (the sweep removes an unbroken prefix: it stops at the first record still inside the period).
    rt.clock.advance(days=10 * 365)

    removed = worker.run_once(rt)

    assert removed["audit_events"] == old_last - old_first + 1
    checkpoint = checkpoints(rt)[-1]
    assert checkpoint["first_removed_seq"] == old_first
    assert checkpoint["last_removed_seq"] == old_last
    assert checkpoint["removed"] == removed["audit_events"]
    assert checkpoint["last_removed_hash"] == last_hash
    with rt.db.read() as db:
        assert db.scalar(select(func.min(_events.c.seq))) == old_last + 1 == checkpoint["seq"]
        swept = db.execute(select(_events.c.details).where(_events.c.action == "retention.swept")
                           .order_by(_events.c.seq.desc()).limit(1)).scalar_one()
        assert json.loads(swept)["audit_events"] == removed["audit_events"]
        assert audit.verify(db) == audit.ChainReport(True, db.scalar(select(func.count()).select_from(_events)))

    # A year later the first checkpoint expires in turn and goes behind a new one; a record made
    # inside the period stays.
    rt.clock.advance(days=rt.settings.audit_retention_days + 1)
    recent = make_staff(rt, "operator")["id"]
    worker.run_once(rt)
    newest = checkpoints(rt)
    assert [c["first_removed_seq"] for c in newest] == [checkpoint["seq"]]
    with rt.db.read() as db:
        assert db.scalar(select(func.count()).select_from(_events).where(_events.c.subject_id == recent)) == 1
        assert audit.verify(db).ok


class _Rollback(Exception):
    pass


def test_a_break_after_the_checkpoint_is_still_refused(rt):
    make_staff(rt, "operator")
    rt.clock.advance(days=20 * 365)
    worker.run_once(rt)
    make_staff(rt, "operator")
    with pytest.raises(_Rollback), rt.db.write() as db:
        first = db.scalar(select(func.min(_events.c.seq)))
        db.execute(delete(_events).where(_events.c.seq == first))
        report = audit.verify(db)
        assert (report.ok, report.first_bad) == (False, first + 1)
        raise _Rollback
    with rt.db.read() as db:
        assert audit.verify(db).ok
