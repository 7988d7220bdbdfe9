"""The in-site inbox (站内信): security notices land there at once; the API pages it with the unread
count, marks read, deletes; another account's message is not found; the pages show an unread badge
in the header, and a message is marked read by its CSRF-checked button (opening it, a GET, changes nothing)."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from passport.audit.models import AuditEvent
from passport.notify.models import InboxMessage
from passport_testing import STRONG_PASSWORD, bearer, csrf_of, register_account

NEW_PASSWORD = "Xy9#river-Quartz"
MESSAGES = "/api/v1/me/messages"


def changed_password(client, rt) -> dict:
    """An account that has changed its password: one unread "password changed" notice."""
    done = register_account(client, rt)
    answer = client.put("/api/v1/me/password", headers=bearer(done["session"]["token"]),
                        json={"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD})
    assert answer.status_code == 200, answer.text
    done["session"] = answer.json()  # the password change rotates the session token
    return done


def test_password_change_puts_a_notice_in_the_inbox_in_the_readers_language(client, rt):
    done = changed_password(client, rt)
    token = done["session"]["token"]
    listing = client.get(MESSAGES, headers=bearer(token)).json()
    assert listing["unread"] == 1 and listing["total"] == 1 and listing["has_more"] is False
    [message] = listing["items"]
    assert message["title"] == "密码已修改" and message["read"] is False and "/account-stolen" in message["text"]
    english = client.get(MESSAGES, headers=bearer(token, **{"Accept-Language": "en"})).json()["items"][0]
    assert english["title"] == "Password changed" and english["id"] == message["id"]


def test_mark_read_then_delete(client, rt):
    done = changed_password(client, rt)
    token = done["session"]["token"]
    [message] = client.get(MESSAGES, headers=bearer(token)).json()["items"]
    assert client.post(f"{MESSAGES}/{message['id']}/read", headers=bearer(token)).status_code == 204
    listing = client.get(MESSAGES, headers=bearer(token)).json()
    assert listing["unread"] == 0 and listing["items"][0]["read"] is True and listing["items"][0]["read_at"]
    assert client.get(f"{MESSAGES}?unread=true", headers=bearer(token)).json()["items"] == []
    assert client.delete(f"{MESSAGES}/{message['id']}", headers=bearer(token)).status_code == 204
    assert client.get(MESSAGES, headers=bearer(token)).json()["total"] == 0
    gone = client.get(f"{MESSAGES}/{message['id']}", headers=bearer(token))
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"


def test_read_all(client, rt):
    done = changed_password(client, rt)
    token = done["session"]["token"]
    regenerated = client.post("/api/v1/me/recovery-key", headers=bearer(token), json={"password": NEW_PASSWORD})
    assert regenerated.status_code == 201
    assert client.get(MESSAGES, headers=bearer(token)).json()["unread"] == 2
    assert client.post(f"{MESSAGES}/read-all", headers=bearer(token)).json() == {"marked": 2}
    assert client.get(MESSAGES, headers=bearer(token)).json()["unread"] == 0


def test_paging(client, rt):
    done = changed_password(client, rt)
    token = done["session"]["token"]
    client.post("/api/v1/me/recovery-key", headers=bearer(token), json={"password": NEW_PASSWORD})
    first = client.get(f"{MESSAGES}?per_page=1", headers=bearer(token)).json()
    second = client.get(f"{MESSAGES}?per_page=1&page=2", headers=bearer(token)).json()
    assert first["has_more"] is True and second["has_more"] is False
    assert first["items"][0]["title"] == "恢复密钥已更新" and second["items"][0]["title"] == "密码已修改"
    bad = client.get(f"{MESSAGES}?per_page=1000", headers=bearer(token))
    assert bad.status_code == 422 and bad.json()["code"] == "validation_failed"


def test_another_accounts_message_is_not_found(client, rt):
    owner = changed_password(client, rt)
    [message] = client.get(MESSAGES, headers=bearer(owner["session"]["token"])).json()["items"]
    other = register_account(client, rt)["session"]["token"]
    for answer in (client.get(f"{MESSAGES}/{message['id']}", headers=bearer(other)),
                   client.post(f"{MESSAGES}/{message['id']}/read", headers=bearer(other)),
                   client.delete(f"{MESSAGES}/{message['id']}", headers=bearer(other))):
        assert answer.status_code == 404 and answer.json()["code"] == "not_found"
    assert client.get(MESSAGES, headers=bearer(owner["session"]["token"])).json()["unread"] == 1


def test_inbox_needs_login(client):
    assert client.get(MESSAGES).json()["code"] == "not_authenticated"


def test_staff_action_reaches_the_inbox(client, rt):
    from passport_testing import make_staff

    reviewer = make_staff(rt, "reviewer")
    user = register_account(client, rt)
    answer = client.post(f"/api/v1/admin/accounts/{user['account']['id']}/actions", headers=reviewer["headers"],
                         json={"action": "warn", "reason": "头像不当"})
    assert answer.status_code == 201, answer.text
    [message] = client.get(MESSAGES, headers=bearer(user["session"]["token"])).json()["items"]
    assert message["title"] == "账号处理通知" and "警告" in message["text"] and "头像不当" in message["text"]


def login_browser(client, done: dict, password: str = STRONG_PASSWORD) -> None:
    device = client.cookies.get("passport_device")
    client.cookies.clear()
    client.cookies.set("passport_device", device)  # the same browser, signed out: no new-device notice
    page = client.get("/login")
    csrf = csrf_of(page.text)
    answer = client.post("/login", data={"csrf_token": csrf, "login": done["phone"], "password": password},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text


def test_pages_show_the_unread_badge_and_the_mark_read_button_reads_a_message(client, rt):
    done = changed_password(client, rt)
    login_browser(client, done, NEW_PASSWORD)
    account = client.get("/account")
    assert re.search(r'id="unread-badge"[^>]*>1<', account.text)
    inbox = client.get("/messages")
    assert inbox.status_code == 200 and "密码已修改" in inbox.text and "is-unread" in inbox.text
    message_id = re.search(r'href="/messages/([0-9a-f]{32})"', inbox.text).group(1)
    opened = client.get(f"/messages/{message_id}")
    assert opened.status_code == 200 and "/account-stolen" in opened.text
    # A GET changes nothing: a link from another site cannot mark a security notice read.
    assert re.search(r'id="unread-badge"[^>]*>1<', opened.text) and 'id="mark-read"' in opened.text
    with rt.db.read() as db:
        assert db.scalar(select(InboxMessage.read_at).where(InboxMessage.id == message_id)) is None
    assert client.post(f"/messages/{message_id}/read", data={"csrf_token": "forged"}).status_code == 403
    marked = client.post(f"/messages/{message_id}/read", data={"csrf_token": csrf_of(opened.text)},
                         follow_redirects=False)
    assert marked.status_code == 303 and marked.headers["location"] == f"/messages/{message_id}"
    opened = client.get(f"/messages/{message_id}")
    assert 'id="unread-badge"' not in opened.text and 'id="mark-read"' not in opened.text
    assert 'id="unread-badge"' not in client.get("/account").text
    with rt.db.read() as db:
        assert db.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "inbox.read", AuditEvent.actor_id == done["account"]["id"])) == 1
    deleted = client.post(f"/messages/{message_id}/delete", data={"csrf_token": csrf_of(opened.text)},
                          follow_redirects=False)
    assert deleted.status_code == 303 and deleted.headers["location"] == "/messages?done=deleted"
    with rt.db.read() as db:
        assert db.scalar(select(func.count()).select_from(InboxMessage)
                         .where(InboxMessage.account_id == done["account"]["id"])) == 0


def test_read_all_page_form_needs_csrf(client, rt):
    done = changed_password(client, rt)
    login_browser(client, done, NEW_PASSWORD)
    refused = client.post("/messages/read-all", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    page = client.get("/messages")
    assert client.post("/messages/read-all", data={"csrf_token": csrf_of(page.text)},
                       follow_redirects=False).status_code == 303
    assert 'id="unread-badge"' not in client.get("/messages").text


def test_anonymous_pages_have_no_inbox_link(client):
    client.cookies.clear()
    home = client.get("/")
    assert home.status_code == 200 and 'id="inbox-link"' not in home.text
    assert client.get("/messages", follow_redirects=False).headers["location"].split("?")[0] == "/login"
