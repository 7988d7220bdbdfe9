"""Issue 15, "staff details shown to users": the account's own activity (API and page) and the export
show what staff did as "platform staff" with only the reason told to the user, never the staff
member's IP, browser, login, id or internal notes. One function makes the view for all three."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from passport_testing import STRONG_PASSWORD, bearer, last_code, login_form, make_staff, register_account

STAFF_UA = "StaffBrowser/9.9"
STAFF_IP = "198.51.100.23"
INTERNAL = "核对投诉工单 #4711 内部备注"
PUBLIC = "请文明发言，勿发布广告"


@pytest.fixture()
def quick_codes(rt):
    saved = (rt.settings.code_resend_seconds, rt.settings.code_per_hour)
    rt.settings.code_resend_seconds, rt.settings.code_per_hour = 0, 10_000
    yield
    rt.settings.code_resend_seconds, rt.settings.code_per_hour = saved


@pytest.fixture()
def staffed(app, rt, quick_codes):
    """An account that staff revealed (internal reason) and warned (reason told to the user)."""
    client = TestClient(app, client=("36.96.7.8", 50000))
    done = register_account(client, rt)
    staff = make_staff(rt, "reviewer")
    staff_client = TestClient(app, client=(STAFF_IP, 40000))
    headers = staff["headers"] | {"User-Agent": STAFF_UA}
    account_id = done["account"]["id"]
    revealed = staff_client.post(f"/api/v1/admin/accounts/{account_id}/reveal",
                                 json={"field": "phone", "reason": INTERNAL}, headers=headers)
    assert revealed.status_code == 200, revealed.text
    warned = staff_client.post(f"/api/v1/admin/accounts/{account_id}/actions",
                               json={"action": "warn", "reason": PUBLIC}, headers=headers)
    assert warned.status_code in (200, 201), warned.text
    return client, done, staff


def staff_free(text: str, staff: dict) -> None:
    for secret in (STAFF_IP, STAFF_UA, staff["login"], staff["id"], INTERNAL):
        assert secret not in text, secret


def test_the_activity_api_shows_staff_only_as_platform_staff_with_the_public_reason(staffed):
    client, done, staff = staffed
    page = client.get("/api/v1/me/activity", headers=bearer(done["session"]["token"]))
    assert page.status_code == 200, page.text
    items = page.json()["items"]
    staff_free(json.dumps(items, ensure_ascii=False), staff)
    by_action = {item["action"]: item for item in items}
    warned, revealed = by_action["account.action.warn"], by_action["account.revealed"]
    assert warned["actor"] == revealed["actor"] == "staff"
    assert warned["reason"] == PUBLIC and revealed["reason"] is None
    for item in (warned, revealed):
        assert item["ip"] is None and item["user_agent"] is None and item["details"] == {}
    own = by_action["account.registered"]
    assert own["actor"] == "self" and own["ip"] == "36.96.7.8"


def test_the_activity_page_names_platform_staff_in_both_languages(staffed, app, rt):
    client, done, staff = staffed
    assert login_form(client, done["phone"], STRONG_PASSWORD).status_code == 303
    chinese = client.get("/account/activity")
    assert chinese.status_code == 200
    staff_free(chinese.text, staff)
    assert "平台工作人员" in chinese.text and PUBLIC in chinese.text
    english = client.get("/account/activity?lang=en").text
    staff_free(english, staff)
    assert "Platform staff" in english and "平台工作人员" not in english and PUBLIC in english


def test_the_export_and_the_activity_show_the_same_view(staffed, rt):
    client, done, staff = staffed
    token = done["session"]["token"]
    client.post("/api/v1/me/verification-codes", json={"purpose": "export"}, headers=bearer(token))
    code = last_code(rt, done["phone"], "export")
    archive = client.post("/api/v1/me/export", json={"code": code}, headers=bearer(token))
    assert archive.status_code == 200, archive.text
    exported = {e["seq"]: e for e in archive.json()["activity"]}
    staff_free(json.dumps(exported, ensure_ascii=False), staff)
    shown = client.get("/api/v1/me/activity", params={"limit": 100}, headers=bearer(token)).json()["items"]
    for item in shown:
        entry = exported[item["seq"]]
        assert {k: v for k, v in item.items() if k != "ip_region" and v not in (None, {})} == \
            {k: v for k, v in entry.items() if v not in (None, {})}
