"""Real-name journeys in a browser: a person uploads an ID document and a reviewer approves it after
looking at the image; a verified person applies for an organisation with a licence and a reviewer
rejects it with a reason, which the applicant then reads."""

from __future__ import annotations

import random
import re
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import select

from passport.identity import resident_id, uscc
from passport.realname.models import Attempt, Organization
from passport_testing import bearer, make_staff, register_account

pytestmark = pytest.mark.browser

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde" \
      b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82"


def new_id_number() -> str:
    born = date(1970, 1, 1) + timedelta(days=random.randrange(30 * 365))
    body = f"440305{born:%Y%m%d}{random.randrange(1, 1000):03d}"
    return body + resident_id.check_character(body)


def new_uscc() -> str:
    body = "91440300" + "".join(random.choice(uscc.ALPHABET) for _ in range(9))
    return body + uscc.check_character(body)


def sign_in(page, live_server: str, name: str, token: str) -> None:
    page.context.add_cookies([{"name": name, "value": token, "url": live_server}])


def open_from_queue(page, live_server: str, queue: str, review_id: str) -> None:
    """Pick the item from its queue page; the page lists the oldest 100, and a full test run leaves
    more than that waiting, so past them the reviewer follows the item's address."""
    page.goto(f"{live_server}/admin/reviews?queue={queue}")
    link = page.locator(f"#review-items a[href='/admin/reviews/{review_id}']")
    if link.count():
        link.click()
    else:
        page.goto(f"{live_server}/admin/reviews/{review_id}")
    page.wait_for_url(re.compile(rf".*/admin/reviews/{review_id}$"))


def test_a_reviewer_approves_an_id_document(browser, live_server, rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "realname_provider", "manual")
    with httpx.Client(base_url=live_server) as http:
        person = register_account(http, rt, nickname="实名用户")
    number = new_id_number()

    user = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
    sign_in(user, live_server, "passport_session", person["session"]["token"])
    user.goto(f"{live_server}/account")
    user.click("#link-real-name")
    user.wait_for_url(re.compile(r".*/account/real-name$"))
    assert "阿卜杜·热合曼" in user.inner_text("#realname-guidance")
    user.fill("#realname-name-input", "欧阳小明")
    user.fill("#realname-id-input", number[:-1] + number[-1].lower())
    user.set_input_files("#realname-document", files=[{"name": "id.png", "mimeType": "image/png", "buffer": PNG}])
    user.click("#form-realname #submit")
    user.wait_for_url(re.compile(r".*done=pending$"))
    assert user.get_attribute("#realname-status", "data-status") == "pending"
    assert user.inner_text("#realname-name") == "欧**明"
    assert number not in user.content()

    reviewer = make_staff(rt, "reviewer")
    staff = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
    sign_in(staff, live_server, "passport_admin", reviewer["token"])
    with rt.db.read() as db:
        review_id = db.scalars(select(Attempt.review_id).where(Attempt.account_id == person["account"]["id"])).one()
    open_from_queue(staff, live_server, "real_name", review_id)
    assert staff.inner_text("#review-name") == "欧**明"
    assert staff.inner_text("#review-id-number") == f"{number[:4]}{'*' * 10}{number[-4:]}"
    assert staff.locator("#review-document").count() == 0  # the document only once claimed
    staff.click("#claim")
    staff.wait_for_url(re.compile(r".*done=claimed$"))
    assert staff.inner_text("#review-name") == "欧阳小明" and staff.inner_text("#review-id-number") == number
    width = staff.evaluate("document.querySelector('#review-document').naturalWidth")
    assert width == 1  # the uploaded image, served to the claimant through the admin route
    staff.click("#approve")
    staff.wait_for_url(re.compile(r".*/admin/reviews\?queue=real_name$"))

    user.goto(f"{live_server}/account/real-name")
    assert user.get_attribute("#realname-status", "data-status") == "verified"
    user.goto(f"{live_server}/account")
    assert "已认证" in user.inner_text("#link-real-name")
    user.context.close()
    staff.context.close()


def test_a_reviewer_rejects_an_organisation_and_the_applicant_reads_why(browser, live_server, rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "realname_provider", "dev")
    with httpx.Client(base_url=live_server) as http:
        person = register_account(http, rt, nickname="组织申请人")
        verified = http.post("/api/v1/me/real-name", json={"name": "陈明", "id_number": new_id_number()},
                             headers=bearer(person["session"]["token"]))
        assert verified.json()["status"] == "verified"
    code = new_uscc()

    user = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
    sign_in(user, live_server, "passport_session", person["session"]["token"])
    user.goto(f"{live_server}/account/real-name")
    user.click("#apply-organization")
    user.wait_for_url(re.compile(r".*/organizations/new$"))
    user.fill("#org-name", "深圳某某科技有限公司")
    user.fill("#org-uscc", code[:-1] + ("0" if code[-1] != "0" else "1"))
    user.fill("#org-legal", "陈明")
    user.fill("#org-contact", "138 0013 8000")
    user.set_input_files("#org-license", files=[{"name": "licence.png", "mimeType": "image/png", "buffer": PNG}])
    user.click("#form-organization #submit")
    error = user.locator(".has-error .field-error")
    error.wait_for()
    assert "校验码" in error.inner_text()
    user.fill("#org-uscc", code)
    user.set_input_files("#org-license", files=[{"name": "licence.png", "mimeType": "image/png", "buffer": PNG}])
    user.click("#form-organization #submit")
    user.wait_for_url(re.compile(r".*/organizations/[0-9a-f]+\?done=applied$"))
    assert user.get_attribute("#organization-status", "data-status") == "pending_review"
    assert user.inner_text("#organization-uscc") == code

    reviewer = make_staff(rt, "reviewer")
    staff = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
    sign_in(staff, live_server, "passport_admin", reviewer["token"])
    org_id = user.url.split("/organizations/")[1].split("?")[0]
    with rt.db.read() as db:
        review_id = db.get(Organization, org_id).review_id
    open_from_queue(staff, live_server, "organization", review_id)
    assert staff.inner_text("#review-org-name") == "深圳某某科技有限公司"
    staff.click("#claim")
    staff.wait_for_url(re.compile(r".*done=claimed$"))
    staff.click("#reject")  # no reason yet: refused, and said so next to the field
    staff.locator("#decide-reason-error").wait_for()
    staff.fill("#decide-reason", "营业执照照片模糊，无法辨认")
    staff.click("#reject")
    staff.wait_for_url(re.compile(r".*/admin/reviews\?queue=organization$"))

    user.goto(f"{live_server}/account/real-name")
    listed = user.inner_text("#my-organizations")
    assert "深圳某某科技有限公司" in listed and "未通过" in listed and "营业执照照片模糊，无法辨认" in listed
    user.context.close()
    staff.context.close()
