"""Appeals (issue 18): who may appeal what, once, within the window; what a reversal gives back."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from passport.accounts.models import Account
from passport.admin.enforcement import appeal_token
from passport.admin.models import AccountAction
from passport.reviews.models import Review
from passport_testing import bearer, last_code, register_account
from reports_testing import ADMIN, claim, decide_appeal


def act(client, staff, account_id: str, **body):
    done = client.post(f"{ADMIN}/accounts/{account_id}/actions", json=body, headers=staff["headers"])
    assert done.status_code == 201, done.text
    return done.json()["id"]


def appeal(client, token: str, action_id: int, text: str = "请复核"):
    return client.post("/api/v1/me/appeals", json={"action_id": action_id, "text": text}, headers=bearer(token))


def appeal_review(client, staff, account_id: str) -> str:
    items = client.get(f"{ADMIN}/appeals", headers=staff["headers"]).json()["items"]
    return next(i["id"] for i in items if i["account_id"] == account_id)


def test_who_may_appeal_what(client, rt, reviewers):
    first, _ = reviewers
    owner, other = register_account(client, rt), register_account(client, rt)
    action_id = act(client, first, owner["account"]["id"], action="warn", reason="头像不当")
    # Another account's action and an unknown one: the same 404.
    assert appeal(client, other["session"]["token"], action_id).status_code == 404
    assert appeal(client, other["session"]["token"], 10**12).status_code == 404
    empty = appeal(client, owner["session"]["token"], action_id, text="  ")
    assert empty.status_code == 422 and empty.json()["code"] == "text_required"
    assert client.post("/api/v1/me/appeals", json={"action_id": action_id, "text": "x"}).status_code == 401
    # A lifted suspension has nothing to appeal; the lifting itself is no action against the user.
    suspend_id = act(client, first, owner["account"]["id"], action="suspend", reason="调查中")
    lift_id = act(client, first, owner["account"]["id"], action="unsuspend", reason="调查结束")
    token = client.post("/api/v1/sessions", json={"login": owner["phone"], "password": owner["password"]}).json()
    token = token["token"]
    assert appeal(client, token, lift_id).status_code == 404
    # The window: past PASSPORT_APPEAL_WINDOW_DAYS the action can no longer be appealed.
    with rt.db.write() as db:
        db.execute(update(AccountAction).where(AccountAction.id == suspend_id)
                   .values(created_at=rt.clock.now() - timedelta(days=61)))
    late = appeal(client, token, suspend_id)
    assert late.status_code == 409 and late.json()["code"] == "appeal_window_closed"
    assert appeal(client, token, action_id).status_code == 201
    mine = client.get("/api/v1/me/appeals", headers=bearer(token)).json()
    assert [a["action_id"] for a in mine] == [action_id] and mine[0]["status"] == "pending"


def test_a_reversed_suspension_restores_the_status_it_replaced(client, rt, reviewers):
    first, second = reviewers
    owner = register_account(client, rt)
    account_id = owner["account"]["id"]
    act(client, first, account_id, action="restrict", reason="资料待核实")
    suspend_id = act(client, first, account_id, action="suspend", reason="涉嫌诈骗")
    with rt.db.read() as db:
        assert db.get(Account, account_id).status == "suspended"
    # Signed out by the suspension: the link of the notice is the way in (here, the service's token).
    filed = client.post("/api/v1/appeals", json={"token": appeal_token(rt, suspend_id), "text": "我没有诈骗"})
    assert filed.status_code == 201, filed.text
    review_id = appeal_review(client, second, account_id)
    claim(client, second, review_id)
    upheld_first = decide_appeal(client, second, review_id, outcome="reversed", reason="证据不足")
    assert upheld_first.status_code == 200, upheld_first.text
    with rt.db.read() as db:
        account = db.get(Account, account_id)
        # The restriction it replaced comes back, not "active".
        assert account.status == "restricted" and account.status_reason == "资料待核实"


def test_reversing_an_earlier_action_leaves_a_later_one_standing(client, rt, reviewers):
    first, second = reviewers
    owner = register_account(client, rt)
    account_id = owner["account"]["id"]
    restrict_id = act(client, first, account_id, action="restrict", reason="资料待核实")
    act(client, first, account_id, action="suspend", reason="涉嫌诈骗")
    assert client.post("/api/v1/appeals", json={"token": appeal_token(rt, restrict_id),
                                                 "text": "资料是真实的"}).status_code == 201
    review_id = appeal_review(client, second, account_id)
    claim(client, second, review_id)
    assert decide_appeal(client, second, review_id, outcome="reversed", reason="资料属实").status_code == 200
    with rt.db.read() as db:
        assert db.get(Account, account_id).status == "suspended"  # the later suspension stands


def test_an_upheld_appeal_changes_nothing_and_needs_a_claim(client, rt, reviewers):
    first, second = reviewers
    owner = register_account(client, rt)
    account_id = owner["account"]["id"]
    action_id = act(client, first, account_id, action="restrict", reason="资料待核实")
    assert appeal(client, owner["session"]["token"], action_id).status_code == 201
    review_id = appeal_review(client, second, account_id)
    unclaimed = decide_appeal(client, second, review_id, outcome="upheld", reason="维持")
    assert unclaimed.status_code == 403 and unclaimed.json()["code"] == "claim_required"
    claim(client, second, review_id)
    no_reason = decide_appeal(client, second, review_id, outcome="upheld", reason=" ")
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "reason_required"
    done = decide_appeal(client, second, review_id, outcome="upheld", reason="资料仍未核实")
    assert done.status_code == 200 and done.json()["appeal"]["status"] == "upheld"
    with rt.db.read() as db:
        assert db.get(Account, account_id).status == "restricted"
        assert db.get(Review, review_id).decided_by == second["id"]
    twice = decide_appeal(client, second, review_id, outcome="reversed", reason="改判")
    assert twice.status_code == 409 and twice.json()["code"] == "already_decided"


def test_odd_links_and_ids_are_not_found(client, rt):
    for token in ("²³.x", "1" * 40 + ".x", "", "abc"):
        answer = client.post("/api/v1/appeals", json={"token": token, "text": "x"})
        assert answer.status_code == 404, (token, answer.text)
        assert client.get(f"/appeals/new?token={token}", headers={"Accept": "text/html"}).status_code in (200, 404)


def test_the_personal_data_export_holds_reports_actions_and_appeals(client, rt, reviewers):
    first, _ = reviewers
    owner, other = register_account(client, rt), register_account(client, rt)
    headers = bearer(owner["session"]["token"])  # registration's session is stepped up
    client.post("/api/v1/reports", data={"subject_type": "account", "subject_id": other["account"]["id"],
                                         "category": "fraud", "description": "他骗钱"}, headers=headers)
    action_id = act(client, first, owner["account"]["id"], action="warn", reason="头像不当")
    assert appeal(client, owner["session"]["token"], action_id, text="头像是我本人").status_code == 201
    rt.clock.advance(seconds=61)
    assert client.post("/api/v1/me/verification-codes", json={"purpose": "export"}, headers=headers).status_code == 202
    archive = client.post("/api/v1/me/export", json={"code": last_code(rt, owner["phone"], "export")},
                          headers=headers)
    assert archive.status_code == 200, archive.text
    body = archive.json()
    assert [r["description"] for r in body["reports"]] == ["他骗钱"]
    assert body["actions"][0]["reason"] == "头像不当" and body["actions"][0]["appeal"]["text"] == "头像是我本人"
    assert "reports" in body["README"]["zh-CN"] and "actions" in body["README"]["en"]
