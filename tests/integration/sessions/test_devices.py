"""The device list with IP and IP region, and "sign out all other devices" (API.md "Sessions")."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from passport.audit.models import AuditEvent
from passport_testing import bearer, login, register_account

SESSIONS = "/api/v1/sessions"
IPHONE_WECHAT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.40")
REGIONS = """start_ip,end_ip,country,province
36.96.0.0,36.223.255.255,中国,浙江省
126.0.0.0,126.255.255.255,日本,东京都
2409:8a00::,2409:8a00:ffff:ffff:ffff:ffff:ffff:ffff,中国,北京市
"""


def from_ip(app, ip: str) -> TestClient:
    return TestClient(app, client=(ip, 50000))


def listed(client, token: str) -> list[dict]:
    answer = client.get(SESSIONS, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture()
def region_file(rt, tmp_path, monkeypatch):
    path = tmp_path / "regions.csv"
    path.write_text(REGIONS, encoding="utf-8")
    monkeypatch.setattr(rt.settings, "ip_region_file", path)
    return path


def test_each_session_shows_its_ip_region(app, rt, region_file):
    done = register_account(from_ip(app, "36.96.1.2"), rt)
    phone = done["phone"]
    login(from_ip(app, "126.1.2.3"), phone, status=201, **{"User-Agent": IPHONE_WECHAT})
    login(from_ip(app, "192.168.1.5"), phone, status=201)
    login(from_ip(app, "2409:8a00::1"), phone, status=201)
    login(from_ip(app, "9.9.9.9"), phone, status=201)

    sessions = listed(from_ip(app, "127.0.0.1"), done["session"]["token"])
    regions = {s["ip"]: s["ip_region"] for s in sessions}
    assert regions == {"36.96.1.2": "浙江", "126.1.2.3": "日本", "192.168.1.5": "局域网", "2409:8a00::1": "北京",
                       "9.9.9.9": "未知"}
    [current] = [s for s in sessions if s["current"]]
    assert current["id"] == done["session"]["id"] and current["method"] == "register"
    assert next(s for s in sessions if s["ip"] == "126.1.2.3")["user_agent"] == IPHONE_WECHAT
    assert set(sessions[0]) == {"id", "created_at", "last_seen_at", "ip", "ip_region", "user_agent", "method",
                                "current"}


def test_without_a_region_file_the_region_is_unknown(app, rt):
    assert rt.settings.ip_region_file is None
    done = register_account(from_ip(app, "36.96.1.2"), rt)
    [session] = listed(from_ip(app, "36.96.1.2"), done["session"]["token"])
    assert (session["ip"], session["ip_region"]) == ("36.96.1.2", "未知")


def test_sign_out_all_other_devices(client, rt):
    done = register_account(client, rt)
    mine = login(client, done["phone"], status=201).json()
    others = [done["session"]["token"], login(client, done["phone"], status=201).json()["token"]]
    for token in others:
        assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200  # cached by this node

    answer = client.delete(f"{SESSIONS}/others", headers=bearer(mine["token"]))
    assert answer.status_code == 204, answer.text
    for token in others:
        assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert [s["id"] for s in listed(client, mine["token"])] == [mine["id"]]

    with rt.db.read() as db:
        event = db.scalars(select(AuditEvent).where(AuditEvent.action == "session.revoked_others")
                           .order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert (event.actor_id, event.subject_type, event.subject_id) == (done["account"]["id"], "account",
                                                                      done["account"]["id"])
    assert json.loads(event.details) == {"channel": "api", "count": 2}

    assert client.delete(f"{SESSIONS}/others", headers=bearer(mine["token"])).status_code == 204  # none left
    assert client.get("/api/v1/me", headers=bearer(mine["token"])).status_code == 200


def test_others_of_one_account_leave_other_accounts_alone(client, rt):
    first, second = register_account(client, rt), register_account(client, rt)
    login(client, first["phone"], status=201)
    assert client.delete(f"{SESSIONS}/others", headers=bearer(first["session"]["token"])).status_code == 204
    assert client.get("/api/v1/me", headers=bearer(second["session"]["token"])).status_code == 200
    # A session of another account is "not found", never revoked.
    stranger = client.delete(f"{SESSIONS}/{second['session']['id']}", headers=bearer(first["session"]["token"]))
    assert stranger.status_code == 404


def test_sign_out_others_needs_a_session_and_the_csrf_token_with_a_cookie(client, rt):
    assert client.delete(f"{SESSIONS}/others").status_code == 401
    done = register_account(client, rt)
    client.cookies.set("passport_session", done["session"]["token"])
    try:
        refused = client.delete(f"{SESSIONS}/others")
        assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
        client.cookies.set("passport_csrf", "token-1")
        assert client.delete(f"{SESSIONS}/others", headers={"X-CSRF-Token": "token-1"}).status_code == 204
    finally:
        client.cookies.clear()
