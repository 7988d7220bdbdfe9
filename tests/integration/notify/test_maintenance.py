"""Maintenance windows: an operator schedules one; it is announced in advance; during it the API
answers 503 ``maintenance`` with Retry-After and the pages a maintenance page, except health checks,
metrics, static files and the admin console; cancelling it brings the service back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from passport.clock import rfc3339
from passport.notify import announcements, board
from passport.notify.models import MaintenanceWindow
from passport_testing import bearer, csrf_of, make_staff, register_account

ADMIN = "/api/v1/admin/maintenance"


@pytest.fixture()
def operator(rt):
    return make_staff(rt, "operator")


@pytest.fixture(autouse=True)
def _no_window_left(rt):
    """The app and database are shared by the whole suite: no window may outlive its test."""
    yield
    with rt.db.write() as db:
        db.execute(update(MaintenanceWindow).where(MaintenanceWindow.cancelled_at.is_(None))
                   .values(cancelled_at=rt.clock.now()))
    board.forget_cache(rt)


def schedule(client, rt, operator, *, start_in: timedelta, length: timedelta = timedelta(hours=1),
             message: str = "数据库升级"):
    now = rt.clock.now()
    return client.post(ADMIN, headers=operator["headers"], json={
        "starts_at": rfc3339(now + start_in), "ends_at": rfc3339(now + start_in + length), "message": message})


def test_window_is_announced_in_advance_and_blocks_the_service_while_it_runs(client, rt, operator):
    user = register_account(client, rt)
    me = bearer(user["session"]["token"])
    answer = schedule(client, rt, operator, start_in=timedelta(hours=2))
    assert answer.status_code == 201, answer.text
    window = answer.json()
    assert window["active"] is False and window["announcement_id"]
    # Announced at once (it starts within maintenance_notice_hours), the service still up.
    listed = client.get("/api/v1/announcements").json()
    assert any(a["id"] == window["announcement_id"] and "数据库升级" in a["body"] for a in listed)
    assert "Scheduled maintenance" in client.get("/").text  # the banner
    assert client.get("/api/v1/me", headers=me).status_code == 200
    upcoming = client.get("/api/v1/maintenance").json()
    assert upcoming["active"] is None and [w["id"] for w in upcoming["upcoming"]] == [window["id"]]

    rt.clock.advance(hours=2, minutes=1)
    blocked = client.get("/api/v1/me", headers=me)
    assert blocked.status_code == 503 and blocked.headers["content-type"] == "application/problem+json"
    assert blocked.json()["code"] == "maintenance" and blocked.json()["message"] == "数据库升级"
    assert 3400 < int(blocked.headers["retry-after"]) <= 3600 - 60 + 1
    posted = client.post("/api/v1/sessions", json={"login": user["phone"], "password": "x"})
    assert posted.status_code == 503
    page = client.get("/login", headers={"Accept": "text/html"})
    assert page.status_code == 503 and "数据库升级" in page.text and page.headers["retry-after"]
    assert "content-security-policy" in page.headers  # the gate's answers keep the security headers
    for path in ("/healthz", "/readyz", "/static/app.css", "/admin/login"):
        assert client.get(path).status_code == 200, path
    # /metrics answers loopback only by default (issue 15): asked from there.
    assert TestClient(client.app, client=("127.0.0.1", 40000)).get("/metrics").status_code == 200
    operator = make_staff(rt, "operator")  # a fresh staff session: the first one idled out meanwhile
    assert client.get(ADMIN, headers=operator["headers"]).status_code == 200
    assert client.get("/api/v1/maintenance").json()["active"]["id"] == window["id"]

    cancelled = client.post(f"{ADMIN}/{window['id']}/cancel", headers=operator["headers"])
    assert cancelled.status_code == 200 and cancelled.json()["cancelled_at"]
    assert client.get("/api/v1/me", headers=me).status_code == 200
    assert "Scheduled maintenance" not in client.get("/").text
    again = client.post(f"{ADMIN}/{window['id']}/cancel", headers=operator["headers"])
    assert again.status_code == 409 and again.json()["code"] == "maintenance_over"


def test_service_is_back_when_the_window_ends(client, rt, operator):
    schedule(client, rt, operator, start_in=timedelta(minutes=10), length=timedelta(minutes=30))
    rt.clock.advance(minutes=20)
    assert client.get("/api/v1/agreements").status_code == 503
    rt.clock.advance(minutes=21)
    assert client.get("/api/v1/agreements").status_code == 200


def test_a_distant_window_is_announced_only_ahead_of_time(client, rt, operator):
    window = schedule(client, rt, operator, start_in=timedelta(days=3)).json()
    assert all(a["id"] != window["announcement_id"] for a in client.get("/api/v1/announcements").json())
    rt.clock.advance(days=2, hours=1)  # within the 24 hours before it
    assert any(a["id"] == window["announcement_id"] for a in client.get("/api/v1/announcements").json())


def test_bad_windows_are_refused(client, rt, operator):
    backwards = schedule(client, rt, operator, start_in=timedelta(hours=1), length=timedelta(hours=-1))
    assert backwards.status_code == 422 and backwards.json()["code"] == "invalid_period"
    past = schedule(client, rt, operator, start_in=timedelta(hours=-3))
    assert past.status_code == 422 and past.json()["code"] == "period_in_past"
    empty = schedule(client, rt, operator, start_in=timedelta(hours=1), message="   ")
    assert empty.status_code == 422 and empty.json()["code"] == "message_required"
    missing = client.post(ADMIN, headers=operator["headers"], json={"message": "x"})
    assert missing.status_code == 422 and missing.json()["code"] == "validation_failed"
    unknown = client.post(f"{ADMIN}/{'0' * 32}/cancel", headers=operator["headers"])
    assert unknown.status_code == 404


def test_only_operators_schedule(client, rt):
    reviewer = make_staff(rt, "reviewer")
    now = rt.clock.now()
    answer = client.post(ADMIN, headers=reviewer["headers"], json={
        "starts_at": rfc3339(now + timedelta(hours=1)), "ends_at": rfc3339(now + timedelta(hours=2)), "message": "x"})
    assert answer.status_code == 403
    user = register_account(client, rt)
    assert client.post(ADMIN, headers=bearer(user["session"]["token"]),
                       json={}).status_code == 401


def test_the_window_is_cached_per_process(client, rt):
    """A window written by another node reaches this one when its cache expires, not per request."""
    client.get("/api/v1/agreements")  # loads the cache
    now = rt.clock.now()
    with rt.db.write() as db:
        db.add(MaintenanceWindow(starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=1),
                                 message="elsewhere", created_at=now))
    assert client.get("/api/v1/agreements").status_code == 200  # still the cached answer
    board.forget_cache(rt)  # what notice_cache_seconds passing does
    assert client.get("/api/v1/agreements").status_code == 503


def test_admin_page_schedules_and_cancels(client, rt, operator):
    client.cookies.clear()
    client.cookies.set("passport_admin", operator["token"])
    page = client.get("/admin/maintenance")
    assert page.status_code == 200 and 'id="form-maintenance"' in page.text
    csrf = csrf_of(page.text)
    start = (rt.clock.now() + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M")  # Beijing time: UTC + 8, + 1 h
    end = (rt.clock.now() + timedelta(hours=10)).strftime("%Y-%m-%dT%H:%M")
    done = client.post("/admin/maintenance", data={"csrf_token": csrf, "starts_at": start, "ends_at": end,
                                                   "message": "机房搬迁"}, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert "机房搬迁" in client.get("/admin/maintenance").text
    [window_id] = [w["id"] for w in client.get(ADMIN, headers=operator["headers"]).json() if w["message"] == "机房搬迁"]
    bad = client.post("/admin/maintenance", data={"csrf_token": csrf, "starts_at": end, "ends_at": start,
                                                  "message": "x"})
    assert bad.status_code == 422 and "field-error" in bad.text
    cancel = client.post(f"/admin/maintenance/{window_id}/cancel", data={"csrf_token": csrf}, follow_redirects=False)
    assert cancel.status_code == 303
    client.cookies.clear()


def test_admin_page_keeps_a_long_message_whole(client, rt, operator):
    """The page form is read with the service's limit, not the 1,024-character cap of ordinary forms."""
    client.cookies.clear()
    client.cookies.set("passport_admin", operator["token"])
    page = client.get("/admin/maintenance")
    csrf = csrf_of(page.text)
    start = (rt.clock.now() + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M")
    end = (rt.clock.now() + timedelta(hours=10)).strftime("%Y-%m-%dT%H:%M")
    message = "长维护说明" + "维" * 1_495  # 1,500 characters, under MESSAGE_MAX
    done = client.post("/admin/maintenance", data={"csrf_token": csrf, "starts_at": start, "ends_at": end,
                                                   "message": message}, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert [w["message"] for w in client.get(ADMIN, headers=operator["headers"]).json()
            if w["message"].startswith("长维护说明")] == [message]
    too_long = client.post("/admin/maintenance", data={"csrf_token": csrf, "starts_at": start, "ends_at": end,
                                                       "message": "x" * (announcements.MESSAGE_MAX + 1)})
    assert too_long.status_code == 422 and "field-error" in too_long.text  # refused, not cut
    client.cookies.clear()
