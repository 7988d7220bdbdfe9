"""Cancellation requests, cooling-off and withdrawal (COMPLIANCE D1, API.md "Cancellation and personal
data"): re-authentication, clear errors that change nothing, login during the cooling-off, notices."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from passport import errors
from passport.accounts.models import Account
from passport.audit.models import AuditEvent
from passport.audit.service import Origin
from passport.cancellation import service
from passport.cancellation.models import CancellationRequest
from passport.notify.models import InboxMessage, OutboxNotice
from passport.realname.models import OrganizationAdmin
from passport.worker import run_once
from passport_testing import last_code

API = "/api/v1/me/cancellation"


def status_of(rt, account_id: str) -> str:
    with rt.db.read() as db:
        return db.get(Account, account_id).status


def set_status(rt, account_id: str, status: str) -> None:
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == account_id).values(status=status))
    rt.sessions_cache.clear()


def actions(rt, account_id: str) -> list[tuple[str, str, dict]]:
    with rt.db.read() as db:
        rows = db.execute(select(AuditEvent.action, AuditEvent.result, AuditEvent.details)
                          .where(AuditEvent.subject_id == account_id, AuditEvent.action.like("cancellation.%"))
                          .order_by(AuditEvent.seq)).all()
    return [(r.action, r.result, json.loads(r.details)) for r in rows]


def notices(rt, account_id: str, template: str) -> dict[str, int]:
    with rt.db.read() as db:
        outbox = db.scalars(select(OutboxNotice.channel).where(OutboxNotice.account_id == account_id,
                                                               OutboxNotice.template == template)).all()
        inbox = db.scalars(select(InboxMessage.id).where(InboxMessage.account_id == account_id,
                                                         InboxMessage.template == template)).all()
    return {"sms": outbox.count("sms"), "inbox": len(inbox)}


def requests_of(rt, account_id: str) -> list[CancellationRequest]:
    with rt.db.read() as db:
        return list(db.scalars(select(CancellationRequest).where(CancellationRequest.account_id == account_id)))


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_request_starts_a_fifteen_day_cooling_off(rt, member):
    before = rt.clock.now()
    answer = member.request()

    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "cooling_off"
    assert timedelta(days=15) <= when(body["effective_at"]) - before < timedelta(days=15, seconds=30)
    assert member.me().json()["status"] == "cancelling"
    shown = member.client.get(API, headers=member.headers)
    assert shown.status_code == 200 and shown.json()["effective_at"] == body["effective_at"]
    assert 14 * 86400 < shown.json()["seconds_left"] <= 15 * 86400
    assert [a[0] for a in actions(rt, member.id)] == ["cancellation.requested"]
    assert actions(rt, member.id)[0][2]["previous_status"] == "active"
    assert notices(rt, member.id, "cancellation_requested") == {"sms": 1, "inbox": 1}


def test_wrong_password_changes_nothing_and_keeps_the_code(rt, member):
    code = member.own_code("cancel_account")
    wrong = member.request(password="Wrong!password-7x", code=code)
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_password"
    assert status_of(rt, member.id) == "active"
    assert requests_of(rt, member.id) == []
    assert member.request(code=code).status_code == 202  # the code was not used up


def test_wrong_code_changes_nothing(rt, member):
    code = member.own_code("cancel_account")
    wrong = member.request(code=f"{(int(code) + 1) % 10**6:06d}")
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_code"
    assert member.request(code="").status_code == 422  # schema: a code is required
    assert status_of(rt, member.id) == "active"
    assert requests_of(rt, member.id) == []
    assert [(a, r) for a, r, _ in actions(rt, member.id)] == [("cancellation.request", "failed")]


def test_a_code_of_another_purpose_does_not_cancel(rt, member, client):
    login_code = client.post("/api/v1/verification-codes", json={"to": member.phone, "purpose": "login"})
    assert login_code.status_code == 202
    answer = member.request(code=last_code(rt, member.phone, "login"))
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_code"
    assert status_of(rt, member.id) == "active"


def test_double_request_is_refused_with_409(rt, member):
    assert member.request().status_code == 202
    again = member.request()
    assert again.status_code == 409 and again.json()["code"] == "cancellation_pending"
    assert len(requests_of(rt, member.id)) == 1


@pytest.mark.parametrize(("status", "code", "http"), [("frozen", "account_frozen", 403),
                                                      ("suspended", "account_suspended", 403),
                                                      ("terminated", "account_terminated", 403)])
def test_frozen_suspended_and_terminated_accounts_are_refused(rt, member, status, code, http):
    set_status(rt, member.id, status)
    with pytest.raises(errors.DomainError) as refused:
        service.request_cancellation(rt, Origin(), member.id, password=member.password, code="000000")
    assert (refused.value.code, refused.value.status) == (code, http)
    assert status_of(rt, member.id) == status
    assert requests_of(rt, member.id) == []
    # Through the API such an account has no session at all.
    assert member.request(code="000000").status_code == 401


def test_unknown_purpose_for_own_code_is_422(member):
    answer = member.client.post("/api/v1/me/verification-codes", json={"purpose": "register"},
                                headers=member.headers)
    assert answer.status_code == 422


def test_withdraw_restores_the_account(rt, member):
    assert member.request().status_code == 202
    withdrawn = member.client.delete(API, headers=member.headers)
    assert withdrawn.status_code == 204
    assert member.me().json()["status"] == "active"
    assert member.client.get(API, headers=member.headers).status_code == 404
    again = member.client.delete(API, headers=member.headers)
    assert again.status_code == 404 and again.json()["code"] == "not_found"
    assert [r.status for r in requests_of(rt, member.id)] == ["withdrawn"]
    assert notices(rt, member.id, "cancellation_withdrawn") == {"sms": 1, "inbox": 1}
    # A withdrawn request is never finalised.
    rt.clock.advance(days=16)
    run_once(rt)
    assert status_of(rt, member.id) == "active"
    assert member.client.post("/api/v1/sessions", json={"login": member.phone, "password": member.password}
                              ).status_code == 201


def test_a_restricted_account_may_leave_and_gets_its_restriction_back_on_withdrawal(rt, member):
    set_status(rt, member.id, "restricted")
    assert member.request().status_code == 202
    assert status_of(rt, member.id) == "cancelling"
    assert member.client.delete(API, headers=member.headers).status_code == 204
    assert status_of(rt, member.id) == "restricted"


def test_login_during_cooling_off_works_and_offers_to_withdraw(rt, member, client):
    assert member.request().status_code == 202
    login = client.post("/api/v1/sessions", json={"login": member.phone, "password": member.password})
    assert login.status_code == 201, login.text
    assert login.json()["account"]["status"] == "cancelling"
    client.cookies.set("passport_session", login.json()["token"])
    try:
        page = client.get("/account")
    finally:
        client.cookies.delete("passport_session")
    assert page.status_code == 200
    assert 'id="cancellation-withdraw-link" href="/account/cancellation"' in page.text


def test_one_day_before_the_end_a_reminder_is_sent_once(rt, member):
    assert member.request().status_code == 202
    rt.clock.advance(days=13, hours=23)
    run_once(rt)
    assert notices(rt, member.id, "cancellation_reminder") == {"sms": 0, "inbox": 0}
    rt.clock.advance(hours=2)
    run_once(rt)
    run_once(rt)
    assert notices(rt, member.id, "cancellation_reminder") == {"sms": 1, "inbox": 1}
    assert status_of(rt, member.id) == "cancelling"
    rt.clock.advance(days=1)
    assert run_once(rt)["finalised"] >= 1
    assert status_of(rt, member.id) == "cancelled"


def test_a_short_cooling_off_sends_no_separate_reminder(rt, member, zero_day):
    assert member.request().status_code == 202
    run_once(rt)
    assert notices(rt, member.id, "cancellation_reminder") == {"sms": 0, "inbox": 0}
    assert status_of(rt, member.id) == "cancelled"


def test_an_account_the_platform_suspends_during_cooling_off_is_not_finalised(rt, member, zero_day):
    assert member.request().status_code == 202
    set_status(rt, member.id, "suspended")
    run_once(rt)
    assert status_of(rt, member.id) == "suspended"
    assert [r.status for r in requests_of(rt, member.id)] == ["void"]
    with rt.db.read() as db:
        assert db.get(Account, member.id).phone_bidx is not None
    assert notices(rt, member.id, "cancellation_void") == {"sms": 1, "inbox": 1}


def test_a_restriction_during_cooling_off_does_not_stop_the_cancellation(rt, member, zero_day):
    assert member.request().status_code == 202
    set_status(rt, member.id, "restricted")
    run_once(rt)
    assert status_of(rt, member.id) == "cancelled"


def test_withdrawal_after_finalisation_is_404(rt, member, zero_day):
    assert member.request().status_code == 202
    assert run_once(rt)["finalised"] >= 1
    with pytest.raises(errors.DomainError) as late:
        service.withdraw(rt, Origin(), member.id)
    assert late.value.status == 404


def test_cooling_off_longer_than_fifteen_working_days_is_refused():
    from pydantic import ValidationError

    from passport.settings import Settings

    assert Settings(cancellation_cooling_off_days=21).cancellation_cooling_off_days == 21
    for bad in (22, -1):
        with pytest.raises(ValidationError, match="COOLING_OFF_DAYS"):
            Settings(cancellation_cooling_off_days=bad)


def test_the_last_administrator_of_a_verified_organisation_hands_it_over_first(rt, member, make_member, client,
                                                                                verified_organization):
    org_id = verified_organization(member.id)
    blocked = member.request()
    assert blocked.status_code == 409 and blocked.json()["code"] == "cancellation_blocked"
    assert [o["organization_id"] for o in blocked.json()["organizations"]] == [org_id]
    assert status_of(rt, member.id) == "active"
    assert [(a, r) for a, r, _ in actions(rt, member.id)] == []

    # Once another administrator holds it, nothing else stands in the way.
    with rt.db.write() as db:
        accepted = {"accepted_at": rt.clock.now()} if hasattr(OrganizationAdmin, "accepted_at") else {}
        db.add(OrganizationAdmin(organization_id=org_id, account_id=make_member().id, added_by=member.id,
                                 created_at=rt.clock.now(), **accepted))
    assert member.request().status_code == 202


def test_the_page_offers_to_hand_over_the_organisation(rt, member, client, verified_organization):
    org_id = verified_organization(member.id)
    client.cookies.set("passport_session", member.token)
    try:
        page = client.get("/account/cancellation")
    finally:
        client.cookies.delete("passport_session")
    assert 'id="cancel-blockers"' in page.text
    assert f'href="/organizations/{org_id}"' in page.text
    assert 'id="form-cancel"' not in page.text


def test_simultaneous_requests_start_one_cooling_off(rt, member):
    import threading

    code = member.own_code("cancel_account")
    start, outcomes = threading.Barrier(4), []

    def ask() -> None:
        start.wait()
        try:
            service.request_cancellation(rt, Origin(), member.id, password=member.password, code=code)
            outcomes.append("ok")
        except errors.DomainError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes.count("ok") == 1
    assert set(outcomes) - {"ok"} <= {"invalid_code", "cancellation_pending"}
    assert [r.status for r in requests_of(rt, member.id)] == ["cooling_off"]
    assert status_of(rt, member.id) == "cancelling"
