"""Reports and appeals in a browser (issue 18): user A reports user B's nickname with a screenshot → a
reviewer claims the case, decides "violation: reset the nickname + warning" and confirms → B's nickname is
reset and B's inbox has the reason and the appeal link → B appeals from the link → a second reviewer
reverses → B is told; A sees the outcome. With PASSPORT_SHOTS_DIR set, every page of the feature is
photographed at 390 and 1280 px in zh-CN and en."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from passport.accounts.service import neutral_nickname
from passport.notify.models import InboxMessage
from passport.reports.models import Appeal
from passport_testing import make_staff, register_account

pytestmark = pytest.mark.browser
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
       b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND"
       b"\xaeB`\x82")
SHOTS = os.environ.get("PASSPORT_SHOTS_DIR")


def sign_in(page, live_server: str, name: str, token: str) -> None:
    page.context.add_cookies([{"name": name, "value": token, "url": live_server}])


def shoot(browser, live_server: str, cookie: tuple[str, str] | None, path: str, name: str) -> None:
    """The page at 390x844 and 1280x800, in zh-CN and en; no horizontal overflow at either width."""
    if not SHOTS:
        return
    for width, height in ((390, 844), (1280, 800)):
        for lang in ("zh-CN", "en"):
            context = browser.new_context(viewport={"width": width, "height": height}, locale=lang)
            if cookie:
                context.add_cookies([{"name": cookie[0], "value": cookie[1], "url": live_server}])
            page = context.new_page()
            joiner = "&" if "?" in path else "?"
            page.goto(f"{live_server}{path}{joiner}lang={lang}")
            # The page's own content (main, footer): nothing reaches past the viewport.
            wide = page.evaluate("""[...document.querySelectorAll('main *, footer *')].filter(e =>
                e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
                .map(e => e.tagName + '#' + e.id + '.' + e.className)""")
            assert not wide, f"{path} overflows at {width}px: {wide[:5]}"
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=f"{SHOTS}/{name}-{width}-{lang}.png", full_page=True)
            context.close()


def test_report_decide_appeal_reverse_in_a_browser(browser, live_server, rt, tmp_path):
    with httpx.Client(base_url=live_server) as http:
        a = register_account(http, rt, nickname="热心用户")
        b = register_account(http, rt, nickname="骂人的昵称")
    b_id = b["account"]["id"]
    shot = tmp_path / "shot.png"
    shot.write_bytes(PNG)

    user = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
    sign_in(user, live_server, "passport_session", a["session"]["token"])
    report_path = f"/reports/new?subject_type=account&subject_id={b_id}&field=nickname"
    shoot(browser, live_server, ("passport_session", a["session"]["token"]), report_path, "report-new")
    user.goto(f"{live_server}{report_path}")
    user.select_option("#category", "insult")
    user.fill("#description", "昵称辱骂他人")
    user.set_input_files("#evidence-1", str(shot))
    user.click("#submit-report")
    user.wait_for_url(re.compile(r".*/reports\?done=filed$"))
    assert "处理中" in user.inner_text("#my-reports")

    first, second = make_staff(rt, "reviewer"), make_staff(rt, "reviewer")
    staff = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
    sign_in(staff, live_server, "passport_admin", first["token"])
    staff.goto(f"{live_server}/admin/reports")
    shoot(browser, live_server, ("passport_admin", first["token"]), "/admin/reports", "admin-reports")
    staff.click("#case-items a:has-text('骂人的昵称')")
    staff.click("#claim")
    staff.wait_for_url(re.compile(r".*done=claimed$"))
    case_path = staff.url.split(live_server)[1].split("?")[0]
    shoot(browser, live_server, ("passport_admin", first["token"]), case_path, "admin-report-case")
    staff.check("#outcome-yes")
    staff.check("#action-reset_field")
    staff.check("#action-warn")
    staff.select_option("#field", "nickname")
    staff.fill("#reason", "昵称含侮辱性内容")
    staff.click("#decide")
    assert "以下措施将立即生效" in staff.inner_text("#confirm-text")
    if SHOTS:
        staff.screenshot(path=f"{SHOTS}/admin-report-confirm-1280-zh-CN.png", full_page=True)
    staff.click("#confirm")
    staff.wait_for_url(re.compile(r".*done=decided$"))

    victim = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
    sign_in(victim, live_server, "passport_session", b["session"]["token"])
    victim.goto(f"{live_server}/account")
    assert victim.inner_text("#account-nickname") == neutral_nickname(b_id)
    shoot(browser, live_server, ("passport_session", b["session"]["token"]), "/appeals", "appeals")
    with rt.db.read() as db:
        ids = db.scalars(select(InboxMessage.id).where(InboxMessage.account_id == b_id,
                                                       InboxMessage.template == "notice_account_action")).all()
    victim.goto(f"{live_server}/messages/{ids[0]}")
    body = victim.inner_text("main")
    assert "昵称含侮辱性内容" in body
    link = re.search(r"/appeals/new\?token=[\w.-]+", body).group(0)
    victim.context.clear_cookies()  # the link works signed out
    shoot(browser, live_server, None, link, "appeal-new")
    victim.goto(f"{live_server}{link}")
    victim.fill("#text", "方言里不是骂人")
    victim.click("#submit-appeal")
    assert "申诉已收到" in victim.inner_text("#notice")

    sign_in(staff, live_server, "passport_admin", second["token"])
    staff.goto(f"{live_server}/admin/appeals")
    shoot(browser, live_server, ("passport_admin", second["token"]), "/admin/appeals", "admin-appeals")
    with rt.db.read() as db:
        appeal_review = db.scalar(select(Appeal.review_id).where(Appeal.account_id == b_id))
    staff.click(f"[data-case='{appeal_review}'] a")
    staff.click("#claim")
    staff.wait_for_url(re.compile(r".*done=claimed$"))
    appeal_path = staff.url.split(live_server)[1].split("?")[0]
    shoot(browser, live_server, ("passport_admin", second["token"]), appeal_path, "admin-appeal")
    staff.check("#outcome-reversed")
    staff.fill("#reason", "方言用语，不构成侮辱")
    staff.click("#decide-appeal")
    staff.wait_for_url(re.compile(r".*done=decided$"))
    assert staff.get_attribute("#appeal-status", "data-status") == "reversed"

    sign_in(victim, live_server, "passport_session", b["session"]["token"])
    victim.goto(f"{live_server}/appeals")
    assert victim.locator("[data-appeal=reversed]").count() >= 1
    user.goto(f"{live_server}/reports")
    assert user.get_attribute("[data-outcome]", "data-outcome") == "violation"
    shoot(browser, live_server, ("passport_session", a["session"]["token"]), "/reports", "reports-mine")
    shoot(browser, live_server, ("passport_session", a["session"]["token"]), "/support", "support")
    shoot(browser, live_server, ("passport_admin", second["token"]), "/admin", "admin-dashboard")
