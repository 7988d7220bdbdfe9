"""GET /me/activity: the account's own trail, newest first, paged, with IP regions (COMPLIANCE C3)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from passport_testing import STRONG_PASSWORD, bearer, register_account

ACTIVITY = "/api/v1/me/activity"
WRONG_PASSWORD = "Wrong!password-7x"


def activity(client, token: str, **params):
    answer = client.get(ACTIVITY, params=params, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_trail_is_newest_first_with_results_ips_and_regions(app, rt, tmp_path, monkeypatch):
    regions = tmp_path / "regions.csv"
    regions.write_text("36.96.0.0,36.223.255.255,中国,浙江省\n", encoding="utf-8")
    monkeypatch.setattr(rt.settings, "ip_region_file", regions)
    client = TestClient(app, client=("36.96.7.8", 50000))
    done = register_account(client, rt)
    token = done["session"]["token"]
    assert client.post("/api/v1/sessions", json={"login": done["phone"], "password": WRONG_PASSWORD}).status_code == 401
    assert client.post("/api/v1/sessions", json={"login": done["phone"], "password": STRONG_PASSWORD},
                       headers={"User-Agent": "Firefox/130"}).status_code == 201
    assert client.patch("/api/v1/me", json={"nickname": "新昵称"}, headers=bearer(token)).status_code == 200

    page = activity(client, token)
    actions = [item["action"] for item in page["items"]]
    # Firefox is another kind of browser than the registration's client: a new device (issue 15).
    assert actions == ["account.profile_updated", "login.new_device", "login.succeeded", "login.failed",
                       "consent.given", "consent.given", "account.registered"]
    assert page["next_before"] is None
    seqs = [item["seq"] for item in page["items"]]
    assert seqs == sorted(seqs, reverse=True)
    # A failed login is not the account's own act (anyone can try its password): shown by kind and
    # reason only, like everything others did to it (issue 15: one user view for activity and export).
    failed = page["items"][3]
    assert failed["result"] == "failed" and failed["reason"] == "wrong_password" and failed["actor"] == "other"
    assert failed["ip"] is None and failed["ip_region"] is None and failed["details"] == {}
    assert page["items"][2]["user_agent"] == page["items"][1]["user_agent"] == "Firefox/130"
    assert {(item["ip"], item["ip_region"]) for item in page["items"] if item["actor"] == "self"} == {
        ("36.96.7.8", "浙江")}
    assert set(page["items"][0]) == {"seq", "at", "action", "result", "actor", "ip", "ip_region", "user_agent",
                                     "details", "reason"}
    assert page["items"][0]["at"].endswith("Z")
    text = str(page)
    assert STRONG_PASSWORD not in text and WRONG_PASSWORD not in text and done["phone"] not in text


def test_pages_follow_next_before_to_the_end(client, rt):
    done = register_account(client, rt)
    token = done["session"]["token"]
    for i in range(5):
        client.patch("/api/v1/me", json={"nickname": f"名字{i}"}, headers=bearer(token))
    everything = activity(client, token, limit=100)["items"]
    assert len(everything) == 8

    seen, before = [], None
    while True:
        params = {"limit": 3} | ({"before": before} if before else {})
        page = activity(client, token, **params)
        assert len(page["items"]) <= 3
        seen += page["items"]
        before = page["next_before"]
        if before is None:
            break
        assert before == page["items"][-1]["seq"]
    assert seen == everything
    assert activity(client, token, limit=8)["next_before"] is None
    assert activity(client, token, limit=7)["next_before"] == everything[6]["seq"]


def test_only_the_accounts_own_events(client, rt):
    mine, theirs = register_account(client, rt), register_account(client, rt)
    client.patch("/api/v1/me", json={"nickname": "别人"}, headers=bearer(theirs["session"]["token"]))
    items = activity(client, mine["session"]["token"], limit=100)["items"]
    assert "account.profile_updated" not in [item["action"] for item in items]


def test_bad_paging_and_no_session(client, rt):
    token = register_account(client, rt)["session"]["token"]
    for params in ({"limit": 0}, {"limit": 101}, {"before": 0}, {"before": "x"}):
        answer = client.get(ACTIVITY, params=params, headers=bearer(token))
        assert answer.status_code == 422, params
        assert answer.json()["code"] == "validation_failed"
    assert client.get(ACTIVITY).status_code == 401
