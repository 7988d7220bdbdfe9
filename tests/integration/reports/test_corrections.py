"""Correction deadlines have effect (issue 18): the worker reminds the owner a day before, escalates a
missed deadline to the action the reviewer chose, and closes one that was met."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from passport import worker
from passport.accounts.models import Account
from passport.admin.models import AccountAction
from passport.clock import rfc3339
from passport_testing import bearer, make_staff, register_account
from reports_testing import ADMIN, inbox


@pytest.fixture()
def reviewer(rt):
    return make_staff(rt, "reviewer")


def require(client, rt, reviewer, account_id: str, **extra):
    body = {"action": "require_correction", "reason": "昵称含广告，请修改", "field": "nickname",
            "until": rfc3339(rt.clock.now() + timedelta(days=2))} | extra
    done = client.post(f"{ADMIN}/accounts/{account_id}/actions", json=body, headers=reviewer["headers"])
    assert done.status_code == 201, done.text
    return done.json()["id"]


def test_a_missed_deadline_is_reminded_then_escalated(client, rt, reviewer):
    user = register_account(client, rt, nickname="加微信买货")
    account_id, token = user["account"]["id"], user["session"]["token"]
    action_id = require(client, rt, reviewer, account_id, escalate_to="suspend")
    set_notice = [m for m in inbox(client, token) if m["template"] == "notice_account_action"]
    assert set_notice and "改正期限" in set_notice[0]["text"] and "/appeals/new?token=" in set_notice[0]["text"]
    worker.run_once(rt)
    assert not [m for m in inbox(client, token) if m["template"] == "correction_reminder"]
    rt.clock.advance(hours=25)
    assert worker.run_once(rt)["corrections_reminded"] == 1
    assert worker.run_once(rt)["corrections_reminded"] == 0  # once
    assert [m for m in inbox(client, token) if m["template"] == "correction_reminder"]
    rt.clock.advance(days=1)
    assert worker.run_once(rt)["corrections_escalated"] == 1
    with rt.db.read() as db:
        account = db.get(Account, account_id)
        assert account.status == "suspended" and "逾期未改正" in account.status_reason
        rows = db.scalars(select(AccountAction).where(AccountAction.account_id == account_id)
                          .order_by(AccountAction.id)).all()
        assert [r.action for r in rows] == ["require_correction", "suspend"]
        assert rows[0].settled_at is not None and rows[1].staff_id == reviewer["id"]
    assert worker.run_once(rt)["corrections_escalated"] == 0
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert action_id == rows[0].id


def test_a_met_deadline_is_closed_without_escalation(client, rt, reviewer):
    user = register_account(client, rt, nickname="加微信买货")
    account_id, token = user["account"]["id"], user["session"]["token"]
    require(client, rt, reviewer, account_id)
    changed = client.patch("/api/v1/me", json={"nickname": "普通用户"}, headers=bearer(token))
    assert changed.status_code in (200, 202), changed.text
    rt.clock.advance(days=3)
    done = worker.run_once(rt)
    assert done["corrections_escalated"] == 0
    with rt.db.read() as db:
        assert db.get(Account, account_id).status == "active"
        row = db.scalars(select(AccountAction).where(AccountAction.account_id == account_id)).one()
        assert row.settled_at is not None


def test_the_default_escalation_is_a_restriction(client, rt, reviewer):
    user = register_account(client, rt)
    require(client, rt, reviewer, user["account"]["id"], field=None, escalate_to=None)
    rt.clock.advance(days=3)
    assert worker.run_once(rt)["corrections_escalated"] == 1
    with rt.db.read() as db:
        assert db.get(Account, user["account"]["id"]).status == "restricted"
