"""Account-information review in a browser (issue 17): a user asks for a nickname that needs strict
review and sees it held (审核中); a reviewer sees the hit highlighted and approves with a reason; the user
sees the new nickname and an in-site message. A refused nickname says why, without the words that hit."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from passport.reviews.models import Review
from passport_testing import make_staff, register_account

pytestmark = pytest.mark.browser


def sign_in(page, live_server: str, name: str, token: str) -> None:
    page.context.add_cookies([{"name": name, "value": token, "url": live_server}])


def test_held_nickname_is_approved_and_the_user_sees_it(browser, live_server, rt):
    with httpx.Client(base_url=live_server) as http:
        person = register_account(http, rt, nickname="小林")

    user = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
    sign_in(user, live_server, "passport_session", person["session"]["token"])
    user.goto(f"{live_server}/account")
    user.fill("#profile-nickname", "中國象棋小林")
    user.click("#save-profile")
    user.wait_for_url(re.compile(r".*done=profile_held$"))
    assert "修改已提交审核" in user.inner_text(".alert-ok")
    held = user.inner_text("#pending-review")
    assert "审核中" in held and "中國象棋小林" in held
    assert user.inner_text("#account-nickname") == "小林"  # the old one until approved

    reviewer = make_staff(rt, "reviewer")
    staff = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
    sign_in(staff, live_server, "passport_admin", reviewer["token"])
    with rt.db.read() as db:
        review_id = db.scalars(select(Review.id).where(Review.subject_id == person["account"]["id"],
                                                       Review.status == "pending")).one()
    staff.goto(f"{live_server}/admin/reviews/{review_id}")
    assert staff.inner_text("#review-value mark") == "中國"
    assert "国家或党的名称" in staff.get_attribute("#review-value mark", "title")
    assert staff.locator("#strict-review").count() == 1
    staff.click("#claim")
    staff.wait_for_url(re.compile(r".*done=claimed$"))
    staff.click("#approve")  # strict review: a reason is required
    assert "理由" in staff.inner_text(".alert, .field-error")
    staff.fill("#decide-reason", "象棋爱好者，无冒充")
    staff.click("#approve")
    staff.wait_for_url(re.compile(r".*/admin/reviews\?queue=profile$"))

    user.goto(f"{live_server}/account")
    assert user.inner_text("#account-nickname") == "中國象棋小林"
    assert user.locator("#pending-review").count() == 0
    assert user.locator("#unread-badge").count() == 1
    user.click("#inbox-link")
    assert "资料修改已通过审核" in user.inner_text("main")
    user.context.close()
    staff.context.close()


def test_refused_nickname_names_the_category_in_the_users_language(browser, live_server, rt):
    with httpx.Client(base_url=live_server) as http:
        person = register_account(http, rt, nickname="小周")
    user = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en").new_page()
    sign_in(user, live_server, "passport_session", person["session"]["token"])
    user.goto(f"{live_server}/account?lang=en")
    user.fill("#profile-nickname", "国 务 院 客服")
    user.click("#save-profile")
    error = user.locator("#profile-nickname-error")
    error.wait_for()
    assert error.inner_text().startswith("Cannot be used: Impersonating")
    assert "国务院" not in error.inner_text()
    assert user.inner_text("#account-nickname") == "小周"
    user.context.close()
