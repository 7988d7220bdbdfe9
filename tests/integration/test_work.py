"""The unit of work (passport.work): effects ride the transaction; after-commit callbacks run only
once it has committed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from passport.audit import service as audit
from passport.audit.models import AuditEvent
from passport.origin import Origin
from passport.work import SYSTEM, unit_of_work

ORIGIN = Origin(ip="203.0.113.9", user_agent="tests", channel="cli")
_CHAIN = ("seq", "prev_hash", "hash", "mac")  # the place in the chain (key_id is the same for both)


def _actions(rt, subject_id: str) -> list[str]:
    with rt.db.read() as db:
        return db.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == subject_id)
                          .order_by(AuditEvent.seq)).all()


def _rows(rt, subject_id: str) -> list[dict]:
    with rt.db.read() as db:
        return [{c.name: getattr(row, c.name) for c in AuditEvent.__table__.columns}
                for row in db.scalars(select(AuditEvent).where(AuditEvent.subject_id == subject_id)
                                      .order_by(AuditEvent.seq))]


def test_audit_fills_time_origin_and_actor_as_record_does(rt):
    at = rt.clock.now()
    with unit_of_work(rt, ORIGIN, actor=("user", "u-work-1"), at=at) as work:
        work.audit("work.tested", subject=("account", "u-work-1"), details={"n": 1})
        work.audit("work.tested", subject=("account", "u-work-1"), result="denied", actor=SYSTEM)
        audit.record(work.db, at=at, action="work.tested", origin=ORIGIN, actor_type="user",
                     actor_id="u-work-1", subject_type="account", subject_id="u-work-1", details={"n": 1})
    # The unit's events go in when its block ends (the chain's head is its last lock): after the
    # record made directly, in the order stated.
    recorded, stated, overridden = _rows(rt, "u-work-1")
    skip = {*_CHAIN, "id"}
    assert {k: v for k, v in stated.items() if k not in skip} == {k: v for k, v in recorded.items() if k not in skip}
    assert (overridden["actor_type"], overridden["actor_id"], overridden["result"]) == ("system", None, "denied")
    assert stated["seq"] == recorded["seq"] + 1 and overridden["seq"] == stated["seq"] + 1
    assert work.at == at


def test_after_commit_runs_once_committed_in_order(rt):
    seen = []
    with unit_of_work(rt, ORIGIN) as work:
        work.audit("work.committed", subject=("account", "u-work-2"))
        work.after_commit(lambda: seen.append(("first", _actions(rt, "u-work-2"))))
        work.after_commit(lambda: seen.append(("second", None)))
        assert seen == []
    assert seen == [("first", ["work.committed"]), ("second", None)]


def test_a_rollback_runs_no_callback_and_keeps_no_event(rt):
    seen = []
    with pytest.raises(RuntimeError), unit_of_work(rt, ORIGIN) as work:
        work.audit("work.rolled_back", subject=("account", "u-work-3"))
        work.after_commit(lambda: seen.append("ran"))
        raise RuntimeError("the change fails")
    assert seen == []
    assert _actions(rt, "u-work-3") == []
