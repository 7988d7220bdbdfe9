"""The public profile (CAC Order No. 10 Art. 12, COMPLIANCE I2): /u/{id} and GET /accounts/{id}/profile
show nickname, avatar, bio, the IP region of the last login, whether the real name is verified and the
verified organisations administered — never the phone, email or real name; unknown, cancelled and
terminated accounts are the same 404."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from passport.accounts.models import Account
from passport.realname.models import Organization, OrganizationAdmin
from passport.sessions.models import LoginSession
from passport_testing import bearer, login, new_uscc, register_account
from xdb_testing import write_xdb

REGIONS = [("36.96.0.0", "36.223.255.255", "中国|0|浙江省|杭州市|电信"),
           ("126.0.0.0", "126.255.255.255", "日本|0|东京都|0|0"),
           ("103.1.0.0", "103.1.255.255", "中国|0|香港|0|0")]


def from_ip(app, ip: str) -> TestClient:
    return TestClient(app, client=(ip, 50000))


def profile(client, viewer: dict, account_id: str):
    return client.get(f"/api/v1/accounts/{account_id}/profile", headers=bearer(viewer["session"]["token"]))


@pytest.fixture()
def xdb_regions(rt, tmp_path, monkeypatch):
    path = write_xdb(tmp_path / "ip2region.xdb", REGIONS)
    monkeypatch.setattr(rt.settings, "ip_region_file", path)
    return path


def test_profile_shows_region_of_the_last_login_and_nothing_personal(app, client, rt, xdb_regions):
    owner = register_account(from_ip(app, "36.96.1.2"), rt)
    viewer = register_account(client, rt)
    account_id = owner["account"]["id"]
    client.patch("/api/v1/me", json={"bio": "喜欢爬山"}, headers=bearer(owner["session"]["token"]))
    shown = profile(client, viewer, account_id)
    assert shown.status_code == 200, shown.text
    assert shown.json() == {"id": account_id, "nickname": "测试用户", "avatar_url": None, "bio": "喜欢爬山",
                            "ip_region": "浙江", "real_name_verified": False, "organizations": []}
    # The newest login decides: abroad, the country.
    login(from_ip(app, "126.1.2.3"), owner["phone"], status=201)
    assert profile(client, viewer, account_id).json()["ip_region"] == "日本"
    login(from_ip(app, "103.1.2.3"), owner["phone"], status=201)
    answer = profile(client, viewer, account_id)
    assert answer.json()["ip_region"] == "中国香港"
    for secret in (owner["phone"], owner["phone"][-8:], "103.1.2.3", "36.96.1.2"):
        assert secret not in answer.text


def test_after_the_sessions_are_swept_the_audit_log_still_gives_the_region(app, client, rt, xdb_regions):
    owner = register_account(from_ip(app, "126.9.9.9"), rt)
    viewer = register_account(client, rt)
    with rt.db.write() as db:
        db.execute(delete(LoginSession).where(LoginSession.account_id == owner["account"]["id"]))
    rt.sessions_cache.drop(lambda row: True)
    assert profile(client, viewer, owner["account"]["id"]).json()["ip_region"] == "日本"


def test_verified_badges_name_no_person_and_only_verified_organisations(client, rt):
    owner = register_account(client, rt)
    viewer = register_account(client, rt)
    account_id = owner["account"]["id"]
    now = datetime.now(UTC)
    with rt.db.write() as db:
        db.get(Account, account_id).real_name_status = "verified"
        organizations = (("o-verified-" + account_id[:8], "杭州云栖科技有限公司", "verified", now),
                         ("o-pending-" + account_id[:8], "待审核的公司", "pending_review", now),
                         ("o-invited-" + account_id[:8], "只是受邀的公司", "verified", None))
        for org_id, name, status, accepted in organizations:
            code = new_uscc()
            db.add(Organization(id=org_id, name=name, uscc=code, uscc_live=code, status=status,
                                created_by=account_id, created_at=now, decided_at=now))
            db.flush()
            db.add(OrganizationAdmin(organization_id=org_id, account_id=account_id, added_by=account_id,
                                     created_at=now, accepted_at=accepted))
    shown = profile(client, viewer, account_id).json()
    assert shown["real_name_verified"] is True
    assert shown["organizations"] == [{"id": "o-verified-" + account_id[:8], "name": "杭州云栖科技有限公司"}]


@pytest.mark.parametrize("status", ["cancelled", "terminated"])
def test_cancelled_and_terminated_accounts_are_the_same_404_as_a_random_id(client, rt, status):
    owner = register_account(client, rt)
    viewer = register_account(client, rt)
    random = profile(client, viewer, "0" * 32)
    assert random.status_code == 404
    with rt.db.write() as db:
        db.get(Account, owner["account"]["id"]).nickname = "山中小溪"
    client.cookies.set("passport_session", viewer["session"]["token"])
    assert "山中小溪" in client.get(f"/u/{owner['account']['id']}").text
    with rt.db.write() as db:
        db.get(Account, owner["account"]["id"]).status = status
    rt.sessions_cache.drop(lambda row: True)
    gone = profile(client, viewer, owner["account"]["id"])
    assert gone.status_code == 404 and gone.json() == random.json()
    page = client.get(f"/u/{owner['account']['id']}")
    assert page.status_code == 404 and "山中小溪" not in page.text
    assert client.get(f"/u/{'0' * 32}").status_code == 404


def test_the_api_needs_a_signed_in_account(client, rt):
    owner = register_account(client, rt)
    answer = client.get(f"/api/v1/accounts/{owner['account']['id']}/profile")
    assert answer.status_code == 401 and answer.json()["code"] == "not_authenticated"
    page = client.get(f"/u/{owner['account']['id']}", follow_redirects=False)
    assert page.status_code in (302, 303) and page.headers["location"].startswith("/login")


def test_the_page_shows_the_same(app, client, rt, xdb_regions):
    owner = register_account(from_ip(app, "36.96.1.2"), rt)
    viewer = register_account(client, rt)
    client.cookies.set("passport_session", viewer["session"]["token"])
    page = client.get(f"/u/{owner['account']['id']}")
    assert page.status_code == 200
    assert 'id="profile-nickname"' in page.text and "测试用户" in page.text and "浙江" in page.text
    assert owner["phone"][-4:] not in page.text.split('id="public-profile"')[1].split("</section>")[0]
    assert 'data-verified="no"' in page.text
    # Another account's profile offers a report of it (issue 18); one's own offers the edit instead.
    report = f'href="/reports/new?subject_type=account&amp;subject_id={owner["account"]["id"]}"'
    assert report in page.text and "举报该账号" in page.text
    client.cookies.set("passport_session", owner["session"]["token"])
    own = client.get(f"/u/{owner['account']['id']}")
    assert "/reports/new" not in own.text and 'href="/account"' in own.text
    form = client.get(f"/reports/new?subject_type=account&subject_id={viewer['account']['id']}")
    assert form.status_code == 200 and viewer["account"]["id"] in form.text
