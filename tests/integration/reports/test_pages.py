"""The report, appeal and reviewer pages (issue 18): the journey through the pages, the confirmation
step of destructive actions, CSRF, the appeal link without a session, the queue tabs and overdue items."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import update

from passport.reviews.models import Review
from passport_testing import csrf_of, make_staff, register_account
from reports_testing import PNG, case_of, inbox

HTML = {"Accept": "text/html"}


def as_user(client, user: dict) -> None:
    client.cookies.clear()
    client.cookies.set("passport_session", user["session"]["token"])


def as_staff(client, staff: dict) -> None:
    client.cookies.clear()
    client.cookies.set("passport_admin", staff["token"])


def test_the_journey_through_the_pages(client, rt):
    a, b = register_account(client, rt), register_account(client, rt, nickname="坏名字")
    first, second = make_staff(rt, "reviewer"), make_staff(rt, "reviewer")
    b_id = b["account"]["id"]

    as_user(client, a)
    form = client.get(f"/reports/new?subject_type=account&subject_id={b_id}&field=nickname", headers=HTML)
    assert form.status_code == 200 and 'id="form-report"' in form.text and 'value="nickname" selected' in form.text
    stale = client.post("/reports/new", data={"csrf_token": "forged", "subject_type": "account", "subject_id": b_id,
                                              "category": "insult", "description": "x"}, headers=HTML)
    assert stale.status_code == 403
    sent = client.post("/reports/new", data={"csrf_token": csrf_of(form.text), "subject_type": "account",
                                             "subject_id": b_id, "category": "insult", "field": "nickname",
                                             "description": "昵称辱骂他人"},
                       files=[("evidence", ("a.png", PNG, "image/png"))], headers=HTML, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/reports?done=filed"
    mine = client.get("/reports", headers=HTML)
    assert "昵称辱骂他人" in mine.text and 'id="my-reports"' in mine.text

    as_staff(client, first)
    queue = client.get("/admin/reports", headers=HTML)
    assert queue.status_code == 200 and 'id="tab-reports"' in queue.text and 'aria-current="page"' in queue.text
    review_id = case_of(client, first, b_id)["id"]
    assert f'data-case="{review_id}"' in queue.text
    page = client.get(f"/admin/reports/{review_id}", headers=HTML)
    assert 'id="claim"' in page.text and "/evidence/" not in page.text  # screenshots only once claimed
    claimed = client.post(f"/admin/reports/{review_id}/claim", data={"csrf_token": csrf_of(page.text)},
                          headers=HTML, follow_redirects=False)
    assert claimed.status_code == 303
    page = client.get(f"/admin/reports/{review_id}", headers=HTML)
    assert 'id="form-decide"' in page.text and "/evidence/" in page.text
    decision = {"csrf_token": csrf_of(page.text), "outcome": "violation", "actions": ["reset_field", "warn"],
                "field": "nickname", "reason": "昵称含侮辱性内容", "until": "", "escalate_to": "restrict",
                "refusal_days": ""}
    confirm = client.post(f"/admin/reports/{review_id}/decide", data=decision, headers=HTML)
    assert confirm.status_code == 200 and 'id="form-confirm"' in confirm.text
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {b['session']['token']}"}).json()[
        "nickname"] == "坏名字"  # nothing happens before the confirmation
    confirmed = client.post(f"/admin/reports/{review_id}/decide", data=decision | {"confirmed": "yes"},
                            headers=HTML, follow_redirects=False)
    assert confirmed.status_code == 303, confirmed.text

    # B follows the link of the notice, signed out.
    notice = next(m for m in inbox(client, b["session"]["token"]) if m["template"] == "notice_account_action")
    link = re.search(r"/appeals/new\?token=[\w.-]+", notice["text"]).group(0)
    client.cookies.clear()
    appeal_form = client.get(link, headers=HTML)
    assert appeal_form.status_code == 200 and 'id="form-appeal"' in appeal_form.text
    assert "昵称含侮辱性内容" in appeal_form.text
    token = re.search(r"token=([\w.-]+)", link).group(1)
    appealed = client.post("/appeals/new", data={"csrf_token": csrf_of(appeal_form.text), "token": token,
                                                 "action_id": "", "text": "不是侮辱"}, headers=HTML)
    assert appealed.status_code == 200 and 'id="notice"' in appealed.text
    assert client.get("/appeals/new?token=1.forged", headers=HTML).status_code == 404

    as_staff(client, first)
    appeal_id = next(i["id"] for i in client.get("/api/v1/admin/appeals", headers=first["headers"]).json()["items"]
                     if i["account_id"] == b_id)
    assert f'data-case="{appeal_id}"' in client.get("/admin/appeals", headers=HTML).text
    mine_to_refuse = client.get(f"/admin/appeals/{appeal_id}", headers=HTML)
    assert 'id="same-reviewer"' in mine_to_refuse.text and 'id="claim"' not in mine_to_refuse.text
    as_staff(client, second)
    page = client.get(f"/admin/appeals/{appeal_id}", headers=HTML)
    client.post(f"/admin/appeals/{appeal_id}/claim", data={"csrf_token": csrf_of(page.text)}, headers=HTML)
    page = client.get(f"/admin/appeals/{appeal_id}", headers=HTML)
    done = client.post(f"/admin/appeals/{appeal_id}/decide", data={"csrf_token": csrf_of(page.text),
                                                                   "outcome": "reversed", "reason": "方言用语"},
                       headers=HTML, follow_redirects=False)
    assert done.status_code == 303
    as_user(client, b)
    actions = client.get("/appeals", headers=HTML)
    assert 'data-appeal="reversed"' in actions.text
    as_user(client, a)
    assert 'data-outcome="violation"' in client.get("/reports", headers=HTML).text


def test_overdue_cases_are_highlighted(client, rt):
    a, b = register_account(client, rt), register_account(client, rt, nickname="过期案件")
    client.post("/api/v1/reports", data={"subject_type": "account", "subject_id": b["account"]["id"],
                                         "category": "fraud", "description": "骗"},
                headers={"Authorization": f"Bearer {a['session']['token']}"})
    with rt.db.write() as db:
        db.execute(update(Review).where(Review.queue == "reports", Review.subject_id == b["account"]["id"])
                   .values(created_at=rt.clock.now() - timedelta(days=8)))
    reviewer = make_staff(rt, "reviewer")
    as_staff(client, reviewer)
    case = case_of(client, reviewer, b["account"]["id"])
    assert case["overdue"] is True
    queue = client.get("/admin/reports", headers=HTML)
    item = re.search(rf'<li class="list-item overdue" data-case="{case["id"]}">.*?</li>', queue.text, re.S).group(0)
    assert "过期案件" in item
    dashboard = client.get("/admin", headers=HTML)
    assert 'id="overdue-reports"' in dashboard.text  # the reports tile carries its overdue badge


def test_pages_need_a_session_or_a_reviewer(client, rt):
    client.cookies.clear()
    for path in ("/reports/new", "/reports", "/appeals"):
        assert client.get(path, headers=HTML, follow_redirects=False).status_code == 303
    for path in ("/admin/reports", "/admin/appeals"):
        answer = client.get(path, headers=HTML, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/admin/login")
    as_staff(client, make_staff(rt, "auditor"))
    assert client.get("/admin/reports", headers=HTML).status_code == 403
