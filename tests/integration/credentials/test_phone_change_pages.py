"""The phone-change page's recovery-key path, its cancel button and the public "this was not me" page,
as a browser without JavaScript uses them."""

from __future__ import annotations

import re

import pytest

from credentials_testing import account_row, events, login, notices, send_code
from passport.credentials import phone as phone_change
from passport_testing import csrf, login_form, new_phone, register_account


@pytest.fixture()
def owner(client, rt):
    done = register_account(client, rt)
    assert login_form(client, done["phone"]).status_code == 303
    yield done
    client.cookies.clear()


def hold_by_page(client, rt, owner, *, key: str | None = None):
    fresh = new_phone()
    code = send_code(client, rt, fresh, "change_phone")
    return fresh, client.post("/account/phone/hold", follow_redirects=False, data={
        "csrf_token": csrf(client), "phone": fresh, "code": code, "recovery_key": key or owner["recovery_key"],
        "password": owner["password"]})


def test_both_paths_are_on_the_page_and_a_wrong_key_is_said_under_its_field(client, rt, owner):
    page = client.get("/account/phone?method=key")
    assert 'id="form-phone"' in page.text and 'id="form-phone-key"' in page.text
    assert re.search(r'id="form-phone-key"[^>]*aria-labelledby="tab-key">', page.text)  # shown, not hidden
    assert "7 天" in page.text
    _, wrong = hold_by_page(client, rt, owner, key="AAAAA-BBBBB-CCCCC-DDDDD-EEEEE")
    assert wrong.status_code == 400 and 'id="key-recovery-key-error"' in wrong.text and "恢复密钥错误" in wrong.text


def test_hold_then_cancel_from_the_page(client, rt, owner):
    fresh, held = hold_by_page(client, rt, owner)
    assert held.status_code == 303, held.text
    page = client.get(held.headers["location"])
    assert 'id="phone-held"' in page.text and f"{fresh[:3]}****{fresh[7:]}" in page.text
    assert 'id="phone-notice"' in page.text and 'id="submit-key"' not in page.text
    cancelled = client.post("/account/phone/cancel", data={"csrf_token": csrf(client)}, follow_redirects=False)
    assert cancelled.status_code == 303
    after = client.get(cancelled.headers["location"])
    assert 'id="phone-held"' not in after.text and "更换手机号的申请已取消" in after.text
    assert events(rt, owner["account"]["id"], "phone.change_cancelled")[0]["by"] == "owner"


def test_the_not_me_page_needs_its_button_then_freezes(client, rt, owner):
    _, held = hold_by_page(client, rt, owner)
    assert held.status_code == 303
    client.cookies.clear()  # the owner follows the link from the SMS, signed out
    [notice] = notices(rt, owner["phone"], "phone_change_held")
    link = re.search(r"/phone-change/not-me\?token=\S+", notice["text"]).group(0)
    page = client.get(link)
    assert page.status_code == 200 and 'id="form-not-me"' in page.text
    assert account_row(rt, owner["account"]["id"]).status == "active"  # opening the link changes nothing
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
    done = client.post("/phone-change/not-me", data={"csrf_token": csrf(client), "token": token})
    assert done.status_code == 200 and 'id="outcome"' in done.text and "/unfreeze" in done.text
    assert account_row(rt, owner["account"]["id"]).status == "frozen"
    assert login(client, owner["phone"]).json()["code"] == "account_frozen"
    again = client.get(link)
    assert 'id="not-me-invalid"' in again.text and 'id="form-not-me"' not in again.text
    used = client.post("/phone-change/not-me", data={"csrf_token": csrf(client), "token": token})
    assert used.status_code == 400 and "该链接已失效" in used.text


def test_a_forged_link_shows_no_button(client):
    page = client.get("/phone-change/not-me?token=" + "a" * 32 + ".forged")
    assert 'id="not-me-invalid"' in page.text and 'id="form-not-me"' not in page.text
    english = client.get("/phone-change/not-me?token=x", headers={"Accept-Language": "en"})
    assert "This link is no longer valid" in english.text


def test_the_not_me_token_is_bound_to_its_change(rt):
    assert phone_change.not_me_token(rt, "a" * 32) != phone_change.not_me_token(rt, "b" * 32)
    assert phone_change.link_is_live(rt, phone_change.not_me_token(rt, "a" * 32)) is False


def test_the_phone_pages_keep_the_page_baseline(client, rt, owner):
    """One id each, a label for every input, the CSRF token in every form: both tabs with a held change
    (its cancel form too), and the public "this was not me" page with a live link."""
    hold_by_page(client, rt, owner)
    [notice] = notices(rt, owner["phone"], "phone_change_held")
    link = re.search(r"/phone-change/not-me\?token=\S+", notice["text"]).group(0)
    pages = [client.get("/account/phone"), client.get("/account/phone?method=key"), client.get(link)]
    assert 'id="form-cancel-change"' in pages[0].text and 'id="form-not-me"' in pages[2].text
    for page in pages:
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store", page.url
        ids = re.findall(r'\sid="([^"]+)"', page.text)
        assert len(ids) == len(set(ids)), page.url
        for input_id in re.findall(r'<input id="([^"]+)"', page.text):
            assert f'<label for="{input_id}">' in page.text, (page.url, input_id)
        for form in re.findall(r'<form[^>]*method="post".*?</form>', page.text, re.S):
            assert 'name="csrf_token"' in form, page.url
