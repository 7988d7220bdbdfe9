"""The real-name and organisation pages and the reviewer pages, without JavaScript: CSRF forms,
multipart uploads, errors next to their fields, masks, strict CSP (no inline code)."""

from __future__ import annotations

import re

from passport.realname.models import Organization
from passport_testing import csrf, make_staff, new_id_number, new_uscc, register_account

from .conftest import EXECUTABLE, PNG, verified_person

INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=", re.I)


def sign_in(client, person: dict) -> None:
    client.cookies.set("passport_session", person["session"]["token"])


def page_csrf(client, url: str) -> str:
    """Load a page, check it answers and carries no inline code, and return its CSRF token."""
    page = client.get(url)
    assert page.status_code == 200, page.text
    assert not INLINE.search(page.text), url
    return csrf(client)


def test_signed_out_visitors_go_to_login(client):
    client.cookies.clear()
    for url in ("/account/real-name", "/organizations/new"):
        answer = client.get(url, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].split("?")[0] == "/login"


def test_verify_through_the_page(client, rt, provider):
    provider("dev")
    person = register_account(client, rt)
    sign_in(client, person)
    token = page_csrf(client, "/account/real-name")
    page = client.get("/account/real-name").text
    assert 'enctype="multipart/form-data"' in page and "阿卜杜·热合曼" in page and "14" in page
    number = new_id_number()
    bad = client.post("/account/real-name", data={"csrf_token": token, "name": "张小三",
                                                  "id_number": number[:-1] + ("1" if number[-1] != "1" else "2")})
    assert bad.status_code == 422 and "校验码" in bad.text and 'aria-invalid="true"' in bad.text
    assert number[:-1] not in bad.text  # the ID number typed is not written back into the page
    done = client.post("/account/real-name", data={"csrf_token": token, "name": "张小三", "id_number": number},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/account/real-name?done=verified"
    shown = client.get(done.headers["location"]).text
    assert 'data-status="verified"' in shown and "张*三" in shown and number not in shown
    assert "/organizations/new" in shown
    account = client.get("/account").text
    assert 'href="/account/real-name"' in account and "已认证" in account


def test_the_page_refuses_a_missing_csrf_token(client, rt, provider):
    provider("dev")
    person = register_account(client, rt)
    sign_in(client, person)
    client.get("/account/real-name")
    answer = client.post("/account/real-name", data={"name": "张小三", "id_number": new_id_number()})
    assert answer.status_code == 403
    assert 'data-status="none"' in client.get("/account/real-name").text


def test_manual_upload_through_the_page(client, rt, provider):
    provider("manual")
    person = register_account(client, rt)
    sign_in(client, person)
    token = page_csrf(client, "/account/real-name")
    assert 'name="document" type="file"' in client.get("/account/real-name").text
    refused = client.post("/account/real-name", files={"document": ("id.png", EXECUTABLE, "image/png")},
                          data={"csrf_token": token, "name": "孙八", "id_number": new_id_number()})
    assert refused.status_code == 422 and "PNG" in refused.text
    done = client.post("/account/real-name", data={"csrf_token": token, "name": "孙八", "id_number": new_id_number()},
                       files={"document": ("id.png", PNG, "image/png")}, follow_redirects=False)
    assert done.headers["location"] == "/account/real-name?done=pending"
    assert 'data-status="pending"' in client.get("/account/real-name").text


def test_apply_for_an_organisation_and_review_it_through_the_pages(client, rt, provider):
    person = verified_person(client, rt, provider)
    sign_in(client, person)
    token = page_csrf(client, "/organizations/new")
    fields = {"csrf_token": token, "name": "国家某某研究会", "uscc": new_uscc(), "legal_representative": "周九",
              "contact_phone": "13800138000"}
    bad = client.post("/organizations/new", data=fields | {"uscc": "91110000600037341M"},
                      files={"license": ("l.png", PNG, "image/png")})
    assert bad.status_code == 422 and "校验码" in bad.text
    done = client.post("/organizations/new", data=fields, files={"license": ("l.png", PNG, "image/png")},
                       follow_redirects=False)
    assert done.status_code == 303, done.text
    org_url = done.headers["location"].split("?")[0]
    page = client.get(done.headers["location"]).text
    assert 'data-status="pending_review"' in page and fields["uscc"] in page and "138****8000" in page
    assert 'id="organization-admins"' in page and not INLINE.search(page)

    client.cookies.delete("passport_session")
    public = client.get(org_url).text
    assert 'id="organization-admins"' not in public and "周九" not in public

    reviewer = make_staff(rt, "reviewer")
    client.cookies.set("passport_admin", reviewer["token"])
    with rt.db.read() as db:
        review_id = db.get(Organization, org_url.rsplit("/", 1)[1]).review_id
    listing = client.get("/admin/reviews?queue=organization")
    assert listing.status_code == 200 and not INLINE.search(listing.text)
    if f'href="/admin/reviews/{review_id}"' in listing.text:  # the oldest 100 are listed; the suite leaves many
        assert re.search(rf'href="/admin/reviews/{review_id}">{fields["name"]} · {fields["uscc"]}', listing.text)
    detail = client.get(f"/admin/reviews/{review_id}").text
    assert 'id="strict-review"' in detail and "周*" in detail and "周九" not in detail and not INLINE.search(detail)
    # Before the claim: neither the document nor the full data.
    assert f'src="/admin/reviews/{review_id}/document"' not in detail
    assert client.get(f"/admin/reviews/{review_id}/document").status_code == 403
    admin_token = csrf(client)
    decide = {"csrf_token": admin_token, "decision": "approve", "reason": "已核对登记证书"}
    unclaimed = client.post(f"/admin/reviews/{review_id}/decide", data=decide)  # issue 15
    assert unclaimed.status_code == 403 and "请先领取该审核项" in unclaimed.text
    english = client.post(f"/admin/reviews/{review_id}/decide", data=decide, headers={"Accept-Language": "en"})
    assert english.status_code == 403 and "Claim this item before you decide it." in english.text
    claimed = client.post(f"/admin/reviews/{review_id}/claim", data={"csrf_token": admin_token},
                          follow_redirects=False)
    assert claimed.status_code == 303
    detail = client.get(claimed.headers["location"]).text
    assert "周九" in detail and "+8613800138000" in detail  # the claimant sees the full data
    assert f'src="/admin/reviews/{review_id}/document"' in detail
    blind = client.post(f"/admin/reviews/{review_id}/decide", data=decide)  # the page alone loads no document
    assert blind.status_code == 403 and "请先查看该审核项上传的证件或营业执照" in blind.text
    english = client.post(f"/admin/reviews/{review_id}/decide", data=decide, headers={"Accept-Language": "en"})
    assert english.status_code == 403 and "Open the document before you decide this item." in english.text
    assert client.get(f"/admin/reviews/{review_id}/document").content == PNG
    unexplained = client.post(f"/admin/reviews/{review_id}/decide", data={"csrf_token": admin_token,
                                                                       "decision": "approve"})
    assert unexplained.status_code == 422 and 'id="decide-reason-error"' in unexplained.text
    approved = client.post(f"/admin/reviews/{review_id}/decide", data={
        "csrf_token": admin_token, "decision": "approve", "reason": "已核对登记证书"}, follow_redirects=False)
    assert approved.status_code == 303 and approved.headers["location"] == "/admin/reviews?queue=organization"
    client.cookies.delete("passport_admin")
    assert 'data-status="verified"' in client.get(org_url).text
    assert client.get(f"/admin/reviews/{review_id}/document", follow_redirects=False).status_code == 303


def test_administrators_are_managed_on_the_organisation_page(client, rt, provider):
    owner = verified_person(client, rt, provider)
    colleague = register_account(client, rt)
    sign_in(client, owner)
    token = page_csrf(client, "/organizations/new")
    done = client.post("/organizations/new", data={"csrf_token": token, "name": "某某咨询有限公司", "uscc": new_uscc(),
                                                   "legal_representative": "吴十", "contact_phone": "13800138000"},
                       files={"license": ("l.pdf", b"%PDF-1.4\n", "application/pdf")}, follow_redirects=False)
    org_url = done.headers["location"].split("?")[0]
    unknown = client.post(f"{org_url}/administrators", data={"csrf_token": token, "phone": "abc"})
    assert unknown.status_code == 422 and 'aria-invalid="true"' in unknown.text
    added = client.post(f"{org_url}/administrators", data={"csrf_token": token, "phone": colleague["phone"]},
                        follow_redirects=False)
    assert added.headers["location"].endswith("?done=admin_added")
    page = client.get(org_url).text
    assert f'data-account="{colleague["account"]["id"]}"' not in page  # invited, not an administrator yet
    org_id = org_url.rsplit("/", 1)[1]
    sign_in(client, colleague)
    invited = client.get("/account/real-name").text
    assert f'data-invitation="{org_id}"' in invited and not INLINE.search(invited)
    colleague_token = csrf(client)
    accepted = client.post(f"{org_url}/administrators/accept", data={"csrf_token": colleague_token},
                           follow_redirects=False)
    assert accepted.status_code == 303 and accepted.headers["location"].endswith("?done=invitation_accepted")
    assert f'data-invitation="{org_id}"' not in client.get("/account/real-name").text
    sign_in(client, owner)
    page = client.get(org_url).text
    assert f'data-account="{colleague["account"]["id"]}"' in page
    removed = client.post(f"{org_url}/administrators/{colleague['account']['id']}/remove",
                          data={"csrf_token": token}, follow_redirects=False)
    assert removed.headers["location"].endswith("?done=admin_removed")
    assert f'data-account="{colleague["account"]["id"]}"' not in client.get(org_url).text
    assert client.get("/organizations/0123456789abcdef").status_code == 404


def test_the_upload_pages_take_files_over_the_one_mebibyte_cap(client, rt, provider):
    person = verified_person(client, rt, provider)
    sign_in(client, person)
    token = page_csrf(client, "/organizations/new")
    two_mib = PNG + bytes(2 * 1024 * 1024)
    done = client.post("/organizations/new", files={"license": ("l.png", two_mib, "image/png")},
                       data={"csrf_token": token, "name": "某某设计有限公司", "uscc": new_uscc(),
                             "legal_representative": "郑一", "contact_phone": "13800138000"}, follow_redirects=False)
    assert done.status_code == 303, done.text
    provider("manual")
    other = register_account(client, rt)
    sign_in(client, other)
    token = page_csrf(client, "/account/real-name")
    sent = client.post("/account/real-name", files={"document": ("id.png", two_mib, "image/png")},
                       data={"csrf_token": token, "name": "郑二", "id_number": new_id_number()}, follow_redirects=False)
    assert sent.headers["location"] == "/account/real-name?done=pending"
    six_mib = PNG + bytes(6 * 1024 * 1024)
    too_big = client.post("/account/real-name", files={"document": ("id.png", six_mib, "image/png")},
                          data={"csrf_token": token, "name": "郑二", "id_number": new_id_number()},
                          headers={"Accept": "text/html"})
    assert too_big.status_code == 413 and too_big.headers["content-type"].startswith("text/html")
    assert "<!doctype html>" in too_big.text and not INLINE.search(too_big.text)
    assert too_big.headers["x-frame-options"] == "DENY"


def test_an_application_is_withdrawn_from_its_page(client, rt, provider):
    owner = verified_person(client, rt, provider)
    sign_in(client, owner)
    token = page_csrf(client, "/organizations/new")
    code = new_uscc()
    done = client.post("/organizations/new", data={"csrf_token": token, "name": "某某设计有限公司", "uscc": code,
                                                   "legal_representative": "吴十", "contact_phone": "13800138000"},
                       files={"license": ("l.png", PNG, "image/png")}, follow_redirects=False)
    org_url = done.headers["location"].split("?")[0]
    assert 'id="withdraw-application"' in client.get(org_url).text
    withdrawn = client.post(f"{org_url}/withdraw", data={"csrf_token": token}, follow_redirects=False)
    assert withdrawn.status_code == 303 and withdrawn.headers["location"].endswith("?done=withdrawn")
    mine = client.get(withdrawn.headers["location"]).text
    assert "已撤回" in mine and not INLINE.search(mine)
    assert client.get(org_url).status_code == 404
    with rt.db.read() as db:
        review_id = db.get(Organization, org_url.rsplit("/", 1)[1]).review_id
    client.cookies.set("passport_admin", make_staff(rt, "reviewer")["token"])
    detail = client.get(f"/admin/reviews/{review_id}").text
    assert 'data-status="withdrawn"' in detail and "吴" not in detail and code not in detail
