"""The public profile and avatars in a browser (issue 17): a new account uploads an avatar and sees it
held; a reviewer sees the image and approves it; another account opens /u/{id} and sees the avatar, the
IP region and the verified badges, never the phone. Staff reset an avatar and manage the lexicons.
Screenshots of every page added or changed, at 390 and 1280 px, zh-CN and en, go to /tmp/shots-rev."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from passport.accounts.models import Account
from passport.realname.models import Organization, OrganizationAdmin
from passport.reviews.models import Review
from passport_testing import make_staff, new_uscc, register_account

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots-rev")
SIZES = {"390": {"width": 390, "height": 844}, "1280": {"width": 1280, "height": 800}}


def sign_in(page, live_server: str, name: str, token: str) -> None:
    page.context.add_cookies([{"name": name, "value": token, "url": live_server}])


WIDEST = """() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right
    > window.innerWidth).slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className + ' '
    + Math.round(e.getBoundingClientRect().right))"""


def no_overflow(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (page.url,
                                                                                       page.evaluate(WIDEST))


def shoot(browser, live_server: str, cookie: tuple[str, str], path: str, name: str, check=None) -> None:
    """The page at both widths in both languages, saved, checked for horizontal overflow."""
    SHOTS.mkdir(exist_ok=True)
    for size, viewport in SIZES.items():
        for lang in ("zh-CN", "en"):
            page = browser.new_context(viewport=viewport, locale=lang).new_page()
            sign_in(page, live_server, *cookie)
            separator = "&" if "?" in path else "?"
            page.goto(f"{live_server}{path}{separator}lang={'en' if lang == 'en' else 'zh-CN'}")
            no_overflow(page)
            if check:
                check(page, lang)
            page.screenshot(path=str(SHOTS / f"{name}-{size}-{lang}.png"), full_page=True)
            page.context.close()


def avatar_file(tmp_path: Path) -> Path:
    image = Image.new("RGB", (600, 480), (236, 244, 255))
    draw = ImageDraw.Draw(image)
    draw.ellipse((170, 90, 430, 350), fill=(48, 110, 220))
    draw.rectangle((60, 380, 540, 460), fill=(250, 190, 60))
    path = tmp_path / "avatar.png"
    image.save(path)
    return path


def loaded(page, selector: str) -> bool:
    return page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0")


def test_avatar_held_approved_and_shown_on_the_public_profile(browser, live_server, rt, tmp_path):
    with httpx.Client(base_url=live_server) as http:
        owner = register_account(http, rt, nickname="山中小溪")
        viewer = register_account(http, rt, nickname="路过的人")
    account_id = owner["account"]["id"]
    now = datetime.now(UTC)
    with rt.db.write() as db:
        db.get(Account, account_id).real_name_status = "verified"
        db.get(Account, account_id).bio = "喜欢爬山和摄影"
        code = new_uscc()
        db.add(Organization(id="shot-" + account_id[:10], name="杭州云栖科技有限公司", uscc=code, uscc_live=code,
                            status="verified", created_by=account_id, created_at=now, decided_at=now))
        db.flush()
        db.add(OrganizationAdmin(organization_id="shot-" + account_id[:10], account_id=account_id,
                                 added_by=account_id, created_at=now, accepted_at=now))
    rt.sessions_cache.drop(lambda row: True)
    assert rt.settings.avatar_review == "new"

    user = browser.new_context(viewport=SIZES["390"], locale="zh-CN").new_page()
    sign_in(user, live_server, "passport_session", owner["session"]["token"])
    user.goto(f"{live_server}/account")
    user.set_input_files("#avatar-file", str(avatar_file(tmp_path)))
    user.click("#upload-avatar")
    user.wait_for_url(re.compile(r".*done=avatar_held$"))
    assert "审核" in user.inner_text(".alert-ok")
    assert "新头像" in user.inner_text("#pending-review")
    assert user.locator("#account-avatar").count() == 0  # not shown until approved
    no_overflow(user)
    user.screenshot(path=str(SHOTS / "account-avatar-held-390-zh-CN.png"), full_page=True)

    reviewer = make_staff(rt, "reviewer")
    with rt.db.read() as db:
        review_id = db.scalars(select(Review.id).where(Review.subject_id == account_id,
                                                       Review.subject_type == "account.avatar",
                                                       Review.status == "pending")).one()
    shoot(browser, live_server, ("passport_admin", reviewer["token"]), f"/admin/reviews/{review_id}",
          "admin-review-avatar", check=lambda page, lang: loaded(page, "#review-avatar"))
    shoot(browser, live_server, ("passport_admin", reviewer["token"]), "/admin/reviews?queue=profile",
          "admin-review-list", check=lambda page, lang: loaded(page, f'[data-review="{review_id}"] img'))
    staff = browser.new_context(viewport=SIZES["1280"], locale="zh-CN").new_page()
    sign_in(staff, live_server, "passport_admin", reviewer["token"])
    staff.goto(f"{live_server}/admin/reviews/{review_id}")
    assert loaded(staff, "#review-avatar")
    staff.click("#claim")
    staff.wait_for_url(re.compile(r".*done=claimed$"))
    staff.click("#approve")
    staff.wait_for_url(re.compile(r".*/admin/reviews\?queue=profile$"))

    user.goto(f"{live_server}/account")
    assert loaded(user, "#account-avatar") and user.locator("#pending-review").count() == 0

    def public_checks(page, lang):
        assert loaded(page, "#profile-avatar")
        assert page.inner_text("#profile-nickname") == "山中小溪"
        assert page.get_attribute("#profile-real-name", "data-verified") == "yes"
        assert "杭州云栖科技有限公司" in page.inner_text("#profile-organizations")
        region = page.inner_text("#profile-region")
        assert ("IP 属地" in region) if lang == "zh-CN" else ("IP region" in region)
        assert owner["phone"][-4:] not in page.inner_text("#public-profile")

    shoot(browser, live_server, ("passport_session", viewer["session"]["token"]), f"/u/{account_id}",
          "public-profile", check=public_checks)
    shoot(browser, live_server, ("passport_session", owner["session"]["token"]), "/account", "account-avatar",
          check=lambda page, lang: loaded(page, "#account-avatar"))

    # Staff reset the avatar from the account page; the public profile shows the initial again.
    shoot(browser, live_server, ("passport_admin", reviewer["token"]), f"/admin/accounts/{account_id}",
          "admin-account-reset")
    staff.goto(f"{live_server}/admin/accounts/{account_id}")
    staff.select_option("#reset-field", "avatar")
    staff.fill("#reset_reason", "头像含不当内容")
    staff.click("#reset-info")
    staff.wait_for_url(re.compile(r".*done=reset$"))
    viewer_page = browser.new_context(viewport=SIZES["390"], locale="zh-CN").new_page()
    sign_in(viewer_page, live_server, "passport_session", viewer["session"]["token"])
    viewer_page.goto(f"{live_server}/u/{account_id}")
    assert viewer_page.locator("#profile-avatar").count() == 0
    for page in (user, staff, viewer_page):
        page.context.close()


def test_the_lexicon_console(browser, live_server, rt):
    operator = make_staff(rt, "operator")
    page = browser.new_context(viewport=SIZES["1280"], locale="zh-CN").new_page()
    sign_in(page, live_server, "passport_admin", operator["token"])
    page.goto(f"{live_server}/admin/moderation")
    page.fill("#entry-term", "代写作业")
    page.select_option("#entry-category", "illegal_services")
    page.select_option("#entry-verdict", "block")
    page.click("#add-term")
    page.wait_for_url(re.compile(r".*done=added$"))
    assert page.locator('[data-term="代写作业"]').count() == 1
    page.fill("#test-text", "专业代 写 作業")
    page.select_option("#test-field", "bio")
    page.click("#test-text-submit")
    assert page.get_attribute("#test-result", "data-verdict") == "block"
    shoot(browser, live_server, ("passport_admin", operator["token"]), "/admin/moderation", "admin-moderation")
    page.locator('[data-term="代写作业"] button').click()
    page.wait_for_url(re.compile(r".*done=removed$"))
    page.context.close()
