"""Staff reset of account information (agreement §五(一)): POST /admin/accounts/{id}/reset and the
admin page's form, through accounts.profile.reset_account_info: audited, the owner told, held changes
withdrawn, only for reviewers."""

from __future__ import annotations

import json

from sqlalchemy import select

from passport.audit.models import AuditEvent
from passport.notify.models import InboxMessage
from passport.reviews.models import Review
from passport_testing import bearer, csrf, make_staff, register_account

HTML = {"Accept": "text/html"}


def reset(client, staff, account_id: str, **body):
    return client.post(f"/api/v1/admin/accounts/{account_id}/reset", json=body, headers=staff["headers"])


def me(client, done) -> dict:
    return client.get("/api/v1/me", headers=bearer(done["session"]["token"])).json()


def events(rt, account_id: str, action: str) -> list[AuditEvent]:
    with rt.db.read() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.subject_id == account_id,
                                                        AuditEvent.action == action)
                                .order_by(AuditEvent.seq)).all())


def inbox(rt, account_id: str) -> list[InboxMessage]:
    with rt.db.read() as db:
        return list(db.scalars(select(InboxMessage).where(InboxMessage.account_id == account_id)).all())


def test_a_reviewer_resets_nickname_and_bio_with_a_reason_and_the_owner_is_told(client, rt):
    reviewer = make_staff(rt, "reviewer")
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    assert client.patch("/api/v1/me", json={"nickname": "阿飞", "bio": "喜欢看电影"},
                        headers=bearer(done["session"]["token"])).status_code == 200
    answer = reset(client, reviewer, account_id, field="nickname", reason="昵称含不当内容")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"field": "nickname", "reset": True}
    shown = me(client, done)
    assert shown["nickname"] != "阿飞" and shown["nickname"].startswith("用户") and shown["bio"] == "喜欢看电影"
    assert reset(client, reviewer, account_id, field="bio", reason="简介违规").json() == {"field": "bio", "reset": True}
    assert me(client, done)["bio"] is None
    # Already the default: nothing written, nothing told.
    assert reset(client, reviewer, account_id, field="bio", reason="再来一次").json()["reset"] is False
    [first, second] = events(rt, account_id, "account.info_reset")
    assert json.loads(first.details) | {"channel": "api"} == {"field": "nickname", "reason": "昵称含不当内容",
                                                            "staff": reviewer["id"], "channel": "api"}
    assert first.actor_type == "staff" and first.actor_id == reviewer["id"]
    assert json.loads(second.details)["field"] == "bio"
    told = [json.loads(m.params)["reason"] for m in inbox(rt, account_id) if m.template == "profile_reset"]
    assert sorted(told) == sorted(["昵称含不当内容", "简介违规"])


def test_a_held_change_is_withdrawn_by_the_reset(client, rt):
    reviewer = make_staff(rt, "reviewer")
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    assert client.patch("/api/v1/me", json={"nickname": "中华小当家"},
                        headers=bearer(done["session"]["token"])).status_code == 202
    assert reset(client, reviewer, account_id, field="nickname", reason="冒用国家名称").json()["reset"] is True
    assert me(client, done)["pending_review"] == {}
    with rt.db.read() as db:
        statuses = db.scalars(select(Review.status).where(Review.subject_id == account_id)).all()
    assert statuses and "pending" not in statuses


def test_errors_reason_field_unknown_account_and_role(client, rt):
    reviewer = make_staff(rt, "reviewer")
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    missing = reset(client, reviewer, account_id, field="nickname", reason="  ")
    assert missing.status_code == 422 and missing.json()["code"] == "reason_required"
    long = reset(client, reviewer, account_id, field="nickname", reason="长" * 501)
    assert long.status_code == 422 and long.json()["code"] == "reason_too_long"
    bad_field = reset(client, reviewer, account_id, field="phone", reason="理由")
    assert bad_field.status_code == 422 and bad_field.json()["code"] == "invalid_field"
    assert reset(client, reviewer, "0" * 32, field="nickname", reason="理由").status_code == 404
    for role in ("auditor", "operator"):
        assert reset(client, make_staff(rt, role), account_id, field="nickname", reason="理由").status_code == 403
    # A user's own session is no staff session.
    as_user = client.post(f"/api/v1/admin/accounts/{account_id}/reset", json={"field": "nickname", "reason": "x"},
                          headers=bearer(done["session"]["token"]))
    assert as_user.status_code == 401
    assert events(rt, account_id, "account.info_reset") == []


def test_the_admin_page_shows_the_information_and_resets_it(client, rt):
    done = register_account(client, rt)
    account_id = done["account"]["id"]
    client.patch("/api/v1/me", json={"bio": "喜欢看电影"}, headers=bearer(done["session"]["token"]))
    client.cookies.clear()
    client.cookies.set("passport_admin", make_staff(rt, "reviewer")["token"])
    page = client.get(f"/admin/accounts/{account_id}", headers=HTML)
    assert page.status_code == 200 and 'id="form-admin-reset"' in page.text and "喜欢看电影" in page.text
    empty = client.post(f"/admin/accounts/{account_id}/reset", headers=HTML,
                        data={"csrf_token": csrf(client), "field": "bio", "reset_reason": ""})
    assert empty.status_code == 422 and "has-error" in empty.text
    forged = client.post(f"/admin/accounts/{account_id}/reset", headers=HTML,
                         data={"csrf_token": "forged", "field": "bio", "reset_reason": "简介违规"})
    assert forged.status_code == 403
    done_page = client.post(f"/admin/accounts/{account_id}/reset", headers=HTML,
                            data={"csrf_token": csrf(client), "field": "bio", "reset_reason": "简介违规"})
    assert done_page.status_code == 200 and 'id="notice"' in done_page.text and "喜欢看电影" not in done_page.text
    assert len(events(rt, account_id, "account.info_reset")) == 1
