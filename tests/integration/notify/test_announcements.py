"""Announcements (site-wide notices): operators publish and end them; the audience picks who sees
them; the Markdown body is rendered without raw HTML; active ones are a banner on every page.
Notification preferences: service notices always, marketing only with consent, off in one click."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from passport.accounts.models import Account
from passport.clock import rfc3339
from passport.notify import announcements, board, outbox
from passport.notify.models import Announcement, InboxMessage
from passport_testing import bearer, csrf_of, deliver_notices, make_staff, outbox_messages, register_account

ADMIN = "/api/v1/admin/announcements"


@pytest.fixture()
def operator(rt):
    return make_staff(rt, "operator")


@pytest.fixture(autouse=True)
def _no_banner_left(rt):
    yield
    with rt.db.write() as db:
        now = rt.clock.now()
        db.execute(update(Announcement).where((Announcement.ends_at.is_(None)) | (Announcement.ends_at > now))
                   .values(ends_at=now))
    board.forget_cache(rt)


def publish(client, operator, **fields):
    body = {"title": "春节服务安排", "body": "**放假**期间客服暂停。"} | fields
    return client.post(ADMIN, headers=operator["headers"], json=body)


def test_published_announcement_is_listed_shown_as_banner_and_ended(client, rt, operator):
    created = publish(client, operator)
    assert created.status_code == 201, created.text
    announcement = created.json()
    assert announcement["active"] is True and announcement["audience"] == "all"
    assert [a["id"] for a in client.get("/api/v1/announcements").json()][0] == announcement["id"]
    client.cookies.clear()
    home = client.get("/")
    assert 'id="announcement-banner"' in home.text and "春节服务安排" in home.text
    page = client.get(f"/announcements/{announcement['id']}")
    assert page.status_code == 200 and "<strong>放假</strong>" in page.text
    assert "春节服务安排" in client.get("/announcements").text
    ended = client.post(f"{ADMIN}/{announcement['id']}/end", headers=operator["headers"])
    assert ended.status_code == 200 and ended.json()["active"] is False
    assert "春节服务安排" not in client.get("/").text
    again = client.post(f"{ADMIN}/{announcement['id']}/end", headers=operator["headers"])
    assert again.status_code == 409 and again.json()["code"] == "announcement_ended"


def test_markdown_body_cannot_carry_html(client, rt, operator):
    created = publish(client, operator, body='<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=1>')
    page = client.get(f"/announcements/{created.json()['id']}")
    assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text
    assert 'href="javascript:' not in page.text
    assert "&lt;script&gt;" in page.text


def test_audience_picks_who_sees_it(client, rt, operator):
    person = register_account(client, rt)
    for_persons = publish(client, operator, title="个人用户须知", audience="persons").json()
    for_orgs = publish(client, operator, title="组织用户须知", audience="organizations").json()
    anonymous = {a["id"] for a in client.get("/api/v1/announcements").json()}
    mine = bearer(person["session"]["token"])
    as_person = {a["id"] for a in client.get("/api/v1/announcements", headers=mine).json()}
    assert for_persons["id"] not in anonymous and for_orgs["id"] not in anonymous
    assert for_persons["id"] in as_person and for_orgs["id"] not in as_person
    assert client.get(f"/api/v1/announcements/{for_orgs['id']}",
                      headers=bearer(person["session"]["token"])).status_code == 404
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == person["account"]["id"]).values(kind="organization"))
    from passport.sessions import service as sessions

    sessions.forget_sessions(rt, account_id=person["account"]["id"])
    as_org = {a["id"] for a in client.get("/api/v1/announcements", headers=bearer(person["session"]["token"])).json()}
    assert for_orgs["id"] in as_org and for_persons["id"] not in as_org


def test_scheduled_announcement_waits_for_its_start(client, rt, operator):
    now = rt.clock.now()
    later = publish(client, operator, starts_at=rfc3339(now + timedelta(hours=1)),
                    ends_at=rfc3339(now + timedelta(hours=2))).json()
    assert later["active"] is False
    assert all(a["id"] != later["id"] for a in client.get("/api/v1/announcements").json())
    assert any(a["id"] == later["id"] for a in client.get(ADMIN, headers=operator["headers"]).json())
    rt.clock.advance(hours=1, minutes=1)
    board.forget_cache(rt)
    assert "春节服务安排" in client.get("/").text


def test_bad_announcements_are_refused(client, rt, operator):
    assert publish(client, operator, title=" ").json()["code"] == "title_required"
    assert publish(client, operator, body="").json()["code"] == "body_required"
    assert publish(client, operator, audience="martians").json()["code"] == "validation_failed"
    now = rt.clock.now()
    backwards = publish(client, operator, starts_at=rfc3339(now + timedelta(hours=2)),
                        ends_at=rfc3339(now + timedelta(hours=1)))
    assert backwards.status_code == 422 and backwards.json()["code"] == "invalid_period"
    user = register_account(client, rt)
    assert client.post(ADMIN, headers=bearer(user["session"]["token"]), json={}).status_code == 401
    assert publish(client, make_staff(rt, "auditor")).status_code == 403


def test_admin_page_publishes(client, rt, operator):
    client.cookies.clear()
    client.cookies.set("passport_admin", operator["token"])
    page = client.get("/admin/announcements")
    assert page.status_code == 200
    csrf = csrf_of(page.text)
    done = client.post("/admin/announcements", data={"csrf_token": csrf, "title": "页面发布的公告", "body": "正文",
                                                     "audience": "all", "starts_at": "", "ends_at": ""},
                       follow_redirects=False)
    assert done.status_code == 303, done.text
    assert "页面发布的公告" in client.get("/admin/announcements").text
    refused = client.post("/admin/announcements", data={"csrf_token": csrf, "title": "", "body": "x"})
    assert refused.status_code == 422 and "field-error" in refused.text
    client.cookies.clear()


# --- preferences and marketing -----------------------------------------------------------------------

def inbox_templates(rt, account_id: str) -> list[str]:
    with rt.db.read() as db:
        return list(db.scalars(select(InboxMessage.template).where(InboxMessage.account_id == account_id)))


def marketing(rt, account_id: str) -> None:
    with rt.db.write() as db:
        outbox.notify_account(rt, db, account_id=account_id, template="notice_message", category="marketing",
                               params={"title": "新品上线", "text": "欢迎体验"})


def test_marketing_needs_consent_and_service_notices_do_not(client, rt):
    user = register_account(client, rt)
    account_id, token = user["account"]["id"], user["session"]["token"]
    assert client.get("/api/v1/me/notification-preferences", headers=bearer(token)).json() == {
        "service": True, "marketing": False}
    marketing(rt, account_id)
    assert inbox_templates(rt, account_id) == []
    on = client.put("/api/v1/me/notification-preferences", headers=bearer(token), json={"marketing": True})
    assert on.status_code == 200 and on.json()["marketing"] is True
    marketing(rt, account_id)
    assert inbox_templates(rt, account_id) == ["notice_message"]
    deliver_notices(rt)
    [sms] = [m for m in outbox_messages(rt) if m["to"] == "+86" + user["phone"] and m["purpose"] == "notice_message"]
    link = re.search(r"(https?://\S+/notices/unsubscribe\?token=\S+)", sms["text"]).group(1)
    token_in_link = link.split("token=")[1]

    # One click from the message, no login.
    client.cookies.clear()
    page = client.get("/notices/unsubscribe", params={"token": token_in_link})
    assert page.status_code == 200 and 'id="unsubscribe"' in page.text
    csrf = csrf_of(page.text)
    done = client.post("/notices/unsubscribe", data={"csrf_token": csrf, "token": token_in_link})
    assert done.status_code == 200 and 'id="unsubscribed"' in done.text
    assert client.get("/api/v1/me/notification-preferences", headers=bearer(token)).json()["marketing"] is False
    marketing(rt, account_id)
    assert inbox_templates(rt, account_id) == ["notice_message"]  # nothing new


def test_unsubscribe_api_and_bad_tokens(client, rt):
    user = register_account(client, rt)
    token = user["session"]["token"]
    client.put("/api/v1/me/notification-preferences", headers=bearer(token), json={"marketing": True})
    good = outbox.unsubscribe_token(rt, user["account"]["id"])
    for bad in ("", "nonsense", user["account"]["id"] + ".0000", good[:-1] + ("0" if good[-1] != "0" else "1")):
        answer = client.post("/api/v1/notices/unsubscribe", json={"token": bad})
        assert answer.status_code == 400 and answer.json()["code"] == "invalid_unsubscribe_link", bad
    assert client.get("/notices/unsubscribe", params={"token": "nonsense"}).status_code == 400
    assert client.post("/api/v1/notices/unsubscribe", json={"token": good}).status_code == 204
    assert client.get("/api/v1/me/notification-preferences", headers=bearer(token)).json()["marketing"] is False


def test_preferences_page(client, rt):
    user = register_account(client, rt)
    client.cookies.clear()
    login = client.get("/login")
    csrf = csrf_of(login.text)
    client.post("/login", data={"csrf_token": csrf, "login": user["phone"], "password": user["password"]})
    page = client.get("/account/notifications")
    assert page.status_code == 200 and 'id="marketing"' in page.text and " checked" not in page.text
    csrf = csrf_of(page.text)
    saved = client.post("/account/notifications", data={"csrf_token": csrf, "marketing": "on"})
    assert saved.status_code == 200 and " checked" in saved.text
    cleared = client.post("/account/notifications", data={"csrf_token": csrf})
    assert " checked" not in cleared.text
    client.cookies.clear()


def test_admin_page_keeps_a_long_body_whole(client, rt, operator):
    """The page form is read with the service's limit, not the 1,024-character cap of ordinary forms."""
    client.cookies.clear()
    client.cookies.set("passport_admin", operator["token"])
    page = client.get("/admin/announcements")
    csrf = csrf_of(page.text)
    body = "长公告正文。" + "文" * 2_994  # 3,000 characters
    done = client.post("/admin/announcements", data={"csrf_token": csrf, "title": "长公告", "body": body,
                                                     "audience": "all", "starts_at": "", "ends_at": ""},
                       follow_redirects=False)
    assert done.status_code == 303, done.text
    with rt.db.read() as db:
        assert db.scalar(select(Announcement.body).where(Announcement.title == "长公告")) == body
    client.cookies.clear()


def test_running_banners_stay_behind_many_scheduled_announcements(rt):
    from passport.audit.service import Origin

    origin = Origin(channel="cli")
    running = announcements.publish_announcement(rt, origin, title="正在进行的公告", body="正文")
    tomorrow = rt.clock.now() + timedelta(days=1)
    for i in range(25):
        announcements.publish_announcement(rt, origin, title=f"预定公告 {i}", body="正文",
                                     starts_at=tomorrow + timedelta(minutes=i))
    soon = announcements.publish_announcement(rt, origin, title="即将开始的公告", body="正文",
                                        starts_at=rt.clock.now() + timedelta(seconds=1))
    board.forget_cache(rt)
    shown = [b["id"] for b in announcements.banners(rt)]
    assert running["id"] in shown and soon["id"] not in shown and len(shown) < 20
    rt.clock.advance(seconds=2)  # starts before the cache reloads: shown on time from the same cache
    assert {running["id"], soon["id"]} <= {b["id"] for b in announcements.banners(rt)}
