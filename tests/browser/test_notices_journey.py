"""Journey through the notices in Chromium: a user whose password was changed sees the unread badge
in the header, opens the inbox, marks the message read (the badge goes), sees an announcement banner,
and turns marketing messages on and off in the notification settings."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import update

from passport.agreements import marketing
from passport.audit.service import Origin
from passport.notify import announcements, board
from passport.notify.models import Announcement
from passport_testing import STRONG_PASSWORD, bearer, register_account

pytestmark = pytest.mark.browser
NEW_PASSWORD = "Xy9#river-Quartz"


@pytest.fixture()
def announcement(rt):
    shown = announcements.publish_announcement(rt, Origin(channel="cli"), title="旅程公告：系统升级完成",
                                         body="新版本已上线。")
    yield shown
    with rt.db.write() as db:
        db.execute(update(Announcement).where(Announcement.id == shown["id"]).values(ends_at=rt.clock.now()))
    board.forget_cache(rt)


def test_user_sees_the_unread_badge_and_reads_the_message(page, live_server, rt, announcement):
    with httpx.Client(base_url=live_server) as http:
        done = register_account(http, rt, nickname="通知用户")
        changed = http.put("/api/v1/me/password", headers=bearer(done["session"]["token"]),
                           json={"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD})
        assert changed.status_code == 200

    page.goto(f"{live_server}/login")
    page.fill("#form-password input[name=login]", done["phone"])
    page.fill("#form-password input[name=password]", NEW_PASSWORD)
    page.click("#form-password #submit")
    page.wait_for_url(f"{live_server}/account")
    # The password notice, and this browser's sign-in: a device the account had not used (issue 15).
    assert page.inner_text("#unread-badge") == "2"
    assert "旅程公告：系统升级完成" in page.inner_text("#announcement-banner")

    page.click("#inbox-link")
    page.wait_for_url(f"{live_server}/messages")
    assert "2 条未读" in page.inner_text("#inbox-unread")
    assert "新设备登录提醒" in page.inner_text("#messages")
    page.click("#messages .is-unread a:has-text('密码已修改')")
    page.wait_for_selector("#message-text")
    assert "密码已修改" in page.inner_text("#message-title")
    assert "/account-stolen" in page.inner_text("#message-text")
    assert page.locator("#message-text a[href$='/account-stolen']").count() == 1  # the link is a link
    # Opening it in the browser marks it read (the page posts its own "mark as read" form).
    page.wait_for_selector("#form-mark-read", state="hidden")
    assert page.inner_text("#unread-badge") == "1"
    page.reload()
    assert page.locator("#mark-read").count() == 0 and page.inner_text("#unread-badge") == "1"

    page.click("text=全部消息")
    page.wait_for_url(f"{live_server}/messages")
    assert "1 条未读" in page.inner_text("#inbox-unread")
    assert page.locator("#messages .is-unread").count() == 1

    page.click("#announcement-banner a")
    page.wait_for_selector("#announcement-body")
    assert "新版本已上线" in page.inner_text("#announcement-body")

    page.goto(f"{live_server}/account/notifications")
    assert not page.is_checked("#marketing")
    page.check("#marketing")
    page.click("#save-preferences")
    page.wait_for_selector(".alert-ok")
    assert page.is_checked("#marketing")
    page.uncheck("#marketing")
    page.click("#save-preferences")
    page.wait_for_selector(".alert-ok")
    assert not page.is_checked("#marketing")
    assert marketing.preferences(rt, done["account"]["id"])["marketing"] is False

    # The banner can be closed, and stays closed in this browser.
    page.goto(f"{live_server}/account")
    assert page.is_visible("#announcement-banner")
    for close in page.locator("#announcement-banner .announcement-close").all():
        close.click()
    assert not page.is_visible("#announcement-banner")
    page.reload()
    assert not page.is_visible("#announcement-banner")
