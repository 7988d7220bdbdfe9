"""Review findings on cancellation: one cooling-off per account (a staff restriction during it must not
let a second request outlive a withdrawal), the export shows nothing of other people, and finalisation
never leaves a verified organisation without administrators."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from passport.accounts.models import Account
from passport.audit.models import AuditEvent
from passport.audit.service import Origin
from passport.cancellation import service
from passport.cancellation.models import CancellationRequest
from passport.notify.models import InboxMessage
from passport.realname.models import OrganizationAdmin
from passport.worker import run_once
from passport_testing import make_staff

API = "/api/v1/me/cancellation"


def status_of(rt, account_id: str) -> str:
    with rt.db.read() as db:
        return db.get(Account, account_id).status


def requests_of(rt, account_id: str) -> list[tuple[str, str]]:
    with rt.db.read() as db:
        return [(r.status, r.previous_status) for r in db.scalars(
            select(CancellationRequest).where(CancellationRequest.account_id == account_id)
            .order_by(CancellationRequest.requested_at, CancellationRequest.id))]


@pytest.fixture()
def staff(rt):
    return make_staff(rt, "reviewer")


def act(client, staff, account_id: str, **body):
    return client.post(f"/api/v1/admin/accounts/{account_id}/actions", json=body, headers=staff["headers"])


# --- finding 1: one cooling-off per account -----------------------------------------------------------

def test_a_restriction_during_the_cooling_off_keeps_the_request_and_comes_back_on_withdrawal(
        rt, member, client, staff):
    assert member.request().status_code == 202
    restricted = act(client, staff, member.id, action="restrict", reason="多次发布广告")
    assert restricted.status_code in (200, 201), restricted.text
    assert status_of(rt, member.id) == "cancelling"
    again = member.request()
    assert again.status_code == 409 and again.json()["code"] == "cancellation_pending"
    assert requests_of(rt, member.id) == [("cooling_off", "restricted")]
    assert client.delete(API, headers=member.headers).status_code == 204
    assert status_of(rt, member.id) == "restricted"
    assert requests_of(rt, member.id) == [("withdrawn", "restricted")]
    with rt.db.read() as db:
        details = json.loads(db.scalars(select(AuditEvent.details).where(
            AuditEvent.subject_id == member.id, AuditEvent.action == "account.action.restrict")).one())
    assert details["to_status"] == "cancelling" and details["status_after_withdrawal"] == "restricted"


def test_a_second_request_over_a_pending_one_is_refused_and_keeps_its_code(rt, member, client, staff):
    """Suspended during the cooling-off, then unsuspended: the account is ``active`` again, but its
    request still stands, so another one is refused (before the code is used)."""
    assert member.request().status_code == 202
    until = "2099-01-01T00:00:00Z"
    assert act(client, staff, member.id, action="suspend", reason="调查中", until=until).status_code in (200, 201)
    assert act(client, staff, member.id, action="unsuspend", reason="调查结束").status_code in (200, 201)
    assert status_of(rt, member.id) == "active"
    login = client.post("/api/v1/sessions", json={"login": member.phone, "password": member.password})
    assert login.status_code == 201, login.text
    member.token = login.json()["token"]
    code = member.own_code("cancel_account")
    again = member.request(code=code)
    assert again.status_code == 409 and again.json()["code"] == "cancellation_pending"
    assert [s for s, _ in requests_of(rt, member.id)] == ["cooling_off"]
    assert client.delete(API, headers=member.headers).status_code == 204
    assert [s for s, _ in requests_of(rt, member.id)] == ["withdrawn"]
    assert member.request(code=code).status_code == 202  # the code was not used up by the refusal


def test_the_database_holds_at_most_one_cooling_off_request_per_account(rt, member):
    assert member.request().status_code == 202
    with rt.db.read() as db:
        first = db.scalars(select(CancellationRequest).where(CancellationRequest.account_id == member.id)).one()
    with pytest.raises(IntegrityError), rt.db.write() as db:
        db.add(CancellationRequest(account_id=member.id, status="cooling_off", previous_status="active",
                                   requested_at=first.requested_at, effective_at=first.effective_at))
        db.flush()
    with rt.db.write() as db:  # closed ones are many
        db.execute(update(CancellationRequest).where(CancellationRequest.id == first.id).values(status="withdrawn"))
        db.add(CancellationRequest(account_id=member.id, status="withdrawn", previous_status="active",
                                   requested_at=first.requested_at, effective_at=first.effective_at))


# --- finding 5: the export ----------------------------------------------------------------------------

def test_the_export_holds_no_ip_browser_or_identity_of_others(rt, member, client, staff, make_member):
    other = make_member()
    acted = client.post(f"/api/v1/admin/accounts/{member.id}/actions", json={"action": "warn", "reason": "请文明发言"},
                        headers=staff["headers"] | {"User-Agent": "StaffBrowser/9.9"})
    assert acted.status_code in (200, 201), acted.text
    # Someone else asks for a login code to this number: its IP is theirs.
    asked = client.post("/api/v1/verification-codes", json={"to": member.phone, "purpose": "login"},
                        headers={"X-Forwarded-For": "203.0.113.77"})
    assert asked.status_code == 202
    assert other.id != member.id
    answer = client.post("/api/v1/me/export", json={"code": member.own_code("export")}, headers=member.headers)
    assert answer.status_code == 200, answer.text
    archive = answer.json()
    warned = [e for e in archive["activity"] if e["action"] == "account.action.warn"]
    assert len(warned) == 1
    assert {k: v for k, v in warned[0].items() if k != "seq"} == {
        "at": warned[0]["at"], "action": "account.action.warn", "result": "ok", "actor": "staff",
        "reason": "请文明发言"}
    text = json.dumps(archive, ensure_ascii=False)
    assert staff["login"] not in text and "StaffBrowser" not in text and staff["id"] not in text
    assert all("ip" not in c for c in archive["verification_codes"])
    assert "203.0.113.77" not in text
    own = [e for e in archive["activity"] if e["action"] == "account.registered"]
    assert own and "ip" in own[0] and "details" in own[0]  # the account's own records stay whole


# --- also: finalisation never leaves an organisation without administrators ---------------------------

def admins_of(rt, org_id: str) -> list[tuple[str, str]]:
    with rt.db.read() as db:
        return [tuple(row) for row in db.execute(select(OrganizationAdmin.account_id, Account.status)
                                                 .join(Account, Account.id == OrganizationAdmin.account_id)
                                                 .where(OrganizationAdmin.organization_id == org_id))]


def test_co_administrators_who_both_cancel_leave_the_organisation_an_administrator(
        rt, make_member, zero_day, verified_organization, monkeypatch):
    first, second = make_member(), make_member()
    org_id = verified_organization(first.id, second.id)
    assert first.request().status_code == 202
    # The second asks at the same moment as the first: each request's check saw the other administrator.
    monkeypatch.setattr(service.realname, "cancellation_blockers", lambda rt, db, account_id: [])
    code = second.own_code("cancel_account")
    service.request_cancellation(rt, Origin(), second.id, password=second.password, code=code)
    monkeypatch.undo()

    run_once(rt)
    outcomes = {account: requests_of(rt, account)[0][0] for account in (first.id, second.id)}
    assert sorted(outcomes.values()) == ["finalised", "void"], outcomes
    kept = next(account for account, status in outcomes.items() if status == "void")
    assert status_of(rt, kept) == "active"
    assert admins_of(rt, org_id) == [(kept, "active")]
    with rt.db.read() as db:
        event = json.loads(db.scalars(select(AuditEvent.details).where(
            AuditEvent.subject_id == kept, AuditEvent.action == "cancellation.void")).one())
        told = db.scalars(select(InboxMessage.params).where(InboxMessage.account_id == kept,
                                                            InboxMessage.template == "notice_message")).all()
    assert event["reason"] == "last_administrator" and event["organizations"] == [org_id]
    assert any("最后一位管理员" in p for p in told)
    run_once(rt)  # nothing more happens to the void request
    assert status_of(rt, kept) == "active"


def test_an_administrator_left_alone_during_the_cooling_off_is_not_finalised(
        rt, make_member, zero_day, verified_organization):
    first, second = make_member(), make_member()
    org_id = verified_organization(first.id, second.id)
    assert first.request().status_code == 202
    with rt.db.write() as db:  # the co-administrator leaves the organisation meanwhile
        db.execute(OrganizationAdmin.__table__.delete().where(OrganizationAdmin.account_id == second.id))
    run_once(rt)
    assert requests_of(rt, first.id) == [("void", "active")]
    assert status_of(rt, first.id) == "active"
    assert admins_of(rt, org_id) == [(first.id, "active")]
