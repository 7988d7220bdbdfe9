"""Refusal of re-registration (issue 18): a refused phone number cannot register or be changed to, a
refused ID number cannot be bound, until the refusal expires; each answers as a number already in use
does, and only after the code proves the number, so the refusal tells a stranger nothing more."""

from __future__ import annotations

import json
import re

from sqlalchemy import select, update

from credentials_testing import send_code
from passport.accounts.models import Account
from passport.accounts.refusals import Refusal
from passport.audit.models import AuditEvent
from passport.notify.models import InboxMessage
from passport.notify.outbox import render
from passport_testing import STRONG_PASSWORD, bearer, last_code, new_id_number, new_phone, register, register_account
from reports_testing import case_of, claim, decide, file_report


def inbox_of(rt, account_id: str) -> list[str]:
    with rt.db.read() as db:
        rows = db.scalars(select(InboxMessage).where(InboxMessage.account_id == account_id)).all()
        return [render(rt, m.template, json.loads(m.params), "zh-CN").text for m in rows]


def _erase_identifiers(rt, account_id: str) -> None:
    """What anonymisation of a terminated account does to its identifiers (the retention sweep)."""
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == account_id).values(
            phone_enc=None, phone_bidx=None, id_number_enc=None, id_number_bidx=None, real_name_enc=None))


def test_a_refused_phone_and_id_number_stay_refused_until_expiry(client, rt, reviewers, monkeypatch):
    monkeypatch.setattr(rt.settings, "realname_provider", "dev")
    first, _ = reviewers
    reporter = register_account(client, rt)
    bad = register_account(client, rt)
    number = new_id_number()
    verified = client.post("/api/v1/me/real-name", json={"name": "王五", "id_number": number},
                           headers=bearer(bad["session"]["token"]))
    assert verified.json()["status"] == "verified", verified.text
    file_report(client, reporter["session"]["token"], bad["account"]["id"], category="fraud", field=None,
                description="冒充客服骗钱")
    case = case_of(client, first, bad["account"]["id"])
    assert claim(client, first, case["id"]).status_code == 200
    done = decide(client, first, case["id"], outcome="violation", actions=["terminate", "refuse_registration"],
                  refusal_days=30, reason="诈骗，终止服务并拒绝再次注册")
    assert done.status_code == 200, done.text
    with rt.db.read() as db:
        rows = db.scalars(select(Refusal).where(Refusal.account_id == bad["account"]["id"])).all()
        assert sorted(r.kind for r in rows) == ["id_number", "phone"]
        # Only blind indexes are kept, never the number.
        assert all(bad["phone"].encode() not in r.bidx and number.encode() not in r.bidx for r in rows)
    _erase_identifiers(rt, bad["account"]["id"])

    # Registration: the code is proved, then the answer a registered number gets.
    code = send_code(client, rt, bad["phone"], "register")
    again = register(client, bad["phone"], code)
    assert again.status_code == 409 and again.json()["code"] == "phone_taken"
    with rt.db.read() as db:
        details = db.scalars(select(AuditEvent.details).where(AuditEvent.action == "account.register")
                             .order_by(AuditEvent.seq.desc())).first()
    assert json.loads(details)["reason"] == "phone_refused"

    # A phone change to it: the same answer as a number held by another account.
    other = register_account(client, rt)
    rt.clock.advance(seconds=61)
    client.post("/api/v1/me/verification-codes", json={"purpose": "change_phone_old"},
                headers=bearer(other["session"]["token"]))
    old = last_code(rt, other["phone"], "change_phone_old")
    new = send_code(client, rt, bad["phone"], "change_phone")
    moved = client.put("/api/v1/me/phone", json={"phone": bad["phone"], "code": new, "old_code": old,
                                                 "password": STRONG_PASSWORD},
                       headers=bearer(other["session"]["token"]))
    assert moved.status_code == 409 and moved.json()["code"] == "phone_taken", moved.text

    # Real-name binding of the refused ID number: the answer of a number verified on too many accounts.
    bound = client.post("/api/v1/me/real-name", json={"name": "王五", "id_number": number},
                        headers=bearer(other["session"]["token"]))
    assert bound.status_code == 409 and bound.json()["code"] == "id_number_limit", bound.text
    # A number never refused is unaffected (control).
    fresh = new_phone()
    assert register(client, fresh, send_code(client, rt, fresh, "register")).status_code == 201

    # After the refusal expires the number registers and the ID number binds.
    rt.clock.advance(days=31)
    later = register(client, bad["phone"], send_code(client, rt, bad["phone"], "register"))
    assert later.status_code == 201, later.text
    rebound = client.post("/api/v1/me/real-name", json={"name": "王五", "id_number": number},
                          headers=bearer(later.json()["session"]["token"]))
    assert rebound.status_code == 200 and rebound.json()["status"] == "verified", rebound.text


def test_an_appeal_reversal_lifts_the_refusal_and_the_termination(client, rt, reviewers):
    first, second = reviewers
    reporter, bad = register_account(client, rt), register_account(client, rt)
    file_report(client, reporter["session"]["token"], bad["account"]["id"], category="fraud", field=None)
    case = case_of(client, first, bad["account"]["id"])
    claim(client, first, case["id"])
    assert decide(client, first, case["id"], outcome="violation", actions=["terminate", "refuse_registration"],
                  reason="诈骗").status_code == 200
    # A terminated account signs in no more: it appeals with the link of its notice.
    rt.clock.advance(seconds=1)
    notice = next(m for m in inbox_of(rt, bad["account"]["id"]) if "终止服务" in m)
    token = re.search(r"/appeals/new\?token=([\w.-]+)", notice).group(1)
    assert client.get("/api/v1/me", headers=bearer(bad["session"]["token"])).status_code == 401
    forged = client.post("/api/v1/appeals", json={"token": token[:-2] + "xx", "text": "我没有诈骗"})
    assert forged.status_code == 404
    filed = client.post("/api/v1/appeals", json={"token": token, "text": "我没有诈骗"})
    assert filed.status_code == 201, filed.text
    listed = client.get("/api/v1/admin/appeals", headers=second["headers"]).json()["items"]
    review_id = next(i["id"] for i in listed if i["account_id"] == bad["account"]["id"])
    assert client.post(f"/api/v1/admin/reviews/{review_id}/claim", headers=second["headers"]).status_code == 200
    undone = client.post(f"/api/v1/admin/appeals/{review_id}/decision", json={"outcome": "reversed",
                                                                             "reason": "证据不足"},
                         headers=second["headers"])
    assert undone.status_code == 200, undone.text
    with rt.db.read() as db:
        assert db.get(Account, bad["account"]["id"]).status == "active"
        assert all(r.lifted_at is not None for r in db.scalars(select(Refusal).where(
            Refusal.account_id == bad["account"]["id"])))
