"""Staff accounts: enrolment, two-factor login, lockout, idle timeout, management, CLI (issue 4)."""

from __future__ import annotations

import re
import uuid

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from passport.admin import service as admin
from passport.admin.models import STAFF_TOTP_SECRET, Staff, StaffSession
from passport.audit.models import AuditEvent
from passport.audit.service import Origin
from passport_testing import DATABASE_URL, REDIS_URL, STRONG_PASSWORD, bearer, csrf_of, make_staff

ADMIN = "/api/v1/admin"
CLI = Origin(channel="cli")


def code(rt, secret: str, **later: float) -> str:
    from datetime import timedelta

    return pyotp.TOTP(secret).at(rt.clock.now() + timedelta(**later))


def login(client, staff: dict, *, totp: str, password: str | None = None):
    return client.post(f"{ADMIN}/sessions", json={"login": staff["login"], "password": password or staff["password"],
                                                  "totp": totp})


def new_login() -> str:
    return f"staff-{uuid.uuid4().hex[:10]}"


def enrolment_page(client, token: str) -> tuple[str, str]:
    """Open the enrolment page; returns (the key it shows, the CSRF token of its form)."""
    page = client.get(f"/admin/enrol/{token}")
    assert page.status_code == 200, page.text
    assert 'src="data:image/svg+xml;base64,' in page.text
    secret = re.search(r'id="admin-totp-secret"[^>]*>([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")
    csrf = csrf_of(page.text)
    return secret, csrf


# --- enrolment ----------------------------------------------------------------------------------------

def test_enrolment_sets_password_and_totp_then_the_link_is_spent(rt, client):
    name = new_login()
    staff_id, token = admin.create_staff(rt, CLI, login=name, role="reviewer")
    secret, csrf = enrolment_page(client, token)
    again, _ = enrolment_page(client, token)
    assert again == secret  # opening the page twice shows the one stored secret
    with rt.db.read() as db:
        stored = db.get(Staff, staff_id)
        assert stored.status == "enrolling" and secret.encode() not in stored.totp_secret_enc
        assert rt.keys.cipher.decrypt(stored.totp_secret_enc, STAFF_TOTP_SECRET, staff_id) == secret

    weak = client.post(f"/admin/enrol/{token}", data={"csrf_token": csrf, "password": "short",
                                                       "totp": code(rt, secret)})
    assert weak.status_code == 422 and 'aria-invalid="true"' in weak.text
    wrong = client.post(f"/admin/enrol/{token}", data={"csrf_token": csrf, "password": STRONG_PASSWORD,
                                                        "totp": "000000" if code(rt, secret) != "000000" else "111111"})
    assert wrong.status_code == 400
    done = client.post(f"/admin/enrol/{token}", data={"csrf_token": csrf, "password": STRONG_PASSWORD,
                                                       "totp": code(rt, secret)}, follow_redirects=False)
    assert done.status_code == 200 and "form-admin-login" in done.text
    with rt.db.read() as db:
        stored = db.get(Staff, staff_id)
        assert stored.status == "active" and stored.enrolment_hash is None
        assert db.scalar(select(AuditEvent.seq)
                         .where(AuditEvent.action == "staff.enrolled", AuditEvent.subject_id == staff_id))

    assert client.get(f"/admin/enrol/{token}").status_code == 404  # used
    # The first code's step is spent: logging in needs the next one.
    member = {"login": name, "password": STRONG_PASSWORD}
    assert login(client, member, totp=code(rt, secret)).status_code == 401
    answer = login(client, member, totp=code(rt, secret, seconds=30))
    assert answer.status_code == 201, answer.text
    assert answer.json()["staff"] == {"login": name, "role": "reviewer"}


def test_expired_or_unknown_enrolment_link_is_refused(rt, client):
    _, token = admin.create_staff(rt, CLI, login=new_login(), role="auditor")
    rt.clock.advance(hours=25)
    expired = client.get(f"/admin/enrol/{token}")
    assert expired.status_code == 404
    assert client.get("/admin/enrol/not-a-token").status_code == 404
    with pytest.raises(Exception) as refused:
        admin.enrol(rt, CLI, token, STRONG_PASSWORD, "123456")
    assert refused.value.code == "enrolment_invalid"


# --- login --------------------------------------------------------------------------------------------

def test_login_needs_password_and_totp(rt, client):
    staff = make_staff(rt, "operator")
    missing = client.post(f"{ADMIN}/sessions", json={"login": staff["login"], "password": staff["password"]})
    assert missing.status_code == 422
    assert login(client, staff, totp="").status_code == 401
    answer = login(client, staff, totp=code(rt, staff["totp_secret"]))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["staff"] == {"login": staff["login"], "role": "operator"} and body["expires_at"].endswith("Z")
    headers = bearer(body["token"])
    assert client.get(f"{ADMIN}/dashboard", headers=headers).status_code == 200
    assert client.delete(f"{ADMIN}/sessions/current", headers=headers).status_code == 204
    assert client.get(f"{ADMIN}/dashboard", headers=headers).status_code == 401


def test_totp_code_cannot_be_replayed(rt, client):
    staff = make_staff(rt, "auditor")
    totp = code(rt, staff["totp_secret"])
    assert login(client, staff, totp=totp).status_code == 201
    replay = login(client, staff, totp=totp)
    assert replay.status_code == 401 and replay.json()["code"] == "invalid_credentials"
    assert login(client, staff, totp=code(rt, staff["totp_secret"], seconds=30)).status_code == 201


def test_five_failures_lock_for_fifteen_minutes_and_every_refusal_looks_the_same(rt, client):
    staff = make_staff(rt, "reviewer")
    right = code(rt, staff["totp_secret"])
    wrong_code = "000000" if right != "000000" else "111111"
    answers = [
        client.post(f"{ADMIN}/sessions", json={"login": new_login(), "password": STRONG_PASSWORD, "totp": right}),
        login(client, staff, totp=right, password="Wrong-password-42"),
        login(client, staff, totp=wrong_code),
    ]
    for _ in range(3):
        answers.append(login(client, staff, totp=wrong_code))
    answers.append(login(client, staff, totp=right))  # locked: the right password and code do not help
    bodies = {(a.status_code, a.text) for a in answers}
    assert len(bodies) == 1, bodies
    assert answers[0].status_code == 401 and answers[0].json()["code"] == "invalid_credentials"
    with rt.db.read() as db:
        stored = db.scalar(select(Staff).where(Staff.login == staff["login"]))
        assert stored.locked_until is not None
    rt.clock.advance(minutes=14)
    assert login(client, staff, totp=code(rt, staff["totp_secret"])).status_code == 401
    rt.clock.advance(minutes=2)
    assert login(client, staff, totp=code(rt, staff["totp_secret"])).status_code == 201


def test_staff_session_ends_after_thirty_idle_minutes(rt, client):
    staff = make_staff(rt, "operator")
    assert client.get(f"{ADMIN}/dashboard", headers=staff["headers"]).status_code == 200
    rt.clock.advance(minutes=29)
    assert client.get(f"{ADMIN}/dashboard", headers=staff["headers"]).status_code == 200  # use restarts the clock
    rt.clock.advance(minutes=29)
    assert client.get(f"{ADMIN}/dashboard", headers=staff["headers"]).status_code == 200
    rt.clock.advance(minutes=31)
    answer = client.get(f"{ADMIN}/dashboard", headers=staff["headers"])
    assert answer.status_code == 401 and answer.json()["code"] == "not_authenticated"


# --- management ---------------------------------------------------------------------------------------

def test_superadmin_creates_lists_and_disables_staff(rt, client):
    boss = make_staff(rt, "superadmin")
    name = new_login()
    created = client.post(f"{ADMIN}/staff", json={"login": name, "role": "reviewer"}, headers=boss["headers"])
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "enrolling" and body["role"] == "reviewer"
    assert body["enrolment_url"].startswith(f"{rt.settings.base_url}/admin/enrol/")
    assert client.get(body["enrolment_url"].removeprefix(rt.settings.base_url)).status_code == 200
    listed = client.get(f"{ADMIN}/staff", headers=boss["headers"]).json()
    assert any(s["login"] == name for s in listed)
    assert client.post(f"{ADMIN}/staff", json={"login": name, "role": "reviewer"},
                       headers=boss["headers"]).status_code == 409
    assert client.post(f"{ADMIN}/staff", json={"login": new_login(), "role": "janitor"},
                       headers=boss["headers"]).status_code == 422

    victim = make_staff(rt, "reviewer")
    assert client.get(f"{ADMIN}/dashboard", headers=victim["headers"]).status_code == 200
    disabled = client.post(f"{ADMIN}/staff/{victim['id']}/disable", headers=boss["headers"])
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    assert client.get(f"{ADMIN}/dashboard", headers=victim["headers"]).status_code == 401
    with rt.db.read() as db:
        assert all(s.revoked_at is not None for s in db.scalars(
            select(StaffSession).where(StaffSession.staff_id == victim["id"])))
        event = db.scalar(select(AuditEvent).where(AuditEvent.action == "staff.disabled",
                                                   AuditEvent.subject_id == victim["id"]))
        assert event.actor_type == "staff" and event.actor_id == boss["id"]
    assert login(client, victim, totp=code(rt, victim["totp_secret"])).status_code == 401
    assert client.post(f"{ADMIN}/staff/{boss['id']}/disable", headers=boss["headers"]).status_code == 409
    assert client.post(f"{ADMIN}/staff/{'0' * 32}/disable", headers=boss["headers"]).status_code == 404


def test_dashboard_counts(rt, client):
    staff = make_staff(rt, "auditor")
    body = client.get(f"{ADMIN}/dashboard", headers=staff["headers"]).json()
    assert set(body) == {"accounts", "sessions_active_today", "pending_reviews", "overdue_reviews", "audit_events_24h"}
    assert {"reports", "appeals"} <= set(body["overdue_reviews"])
    assert body["audit_events_24h"] > 0 and body["accounts"]["total"] == sum(body["accounts"]["by_status"].values())


# --- pages --------------------------------------------------------------------------------------------

def test_admin_pages_log_in_with_totp_and_redirect_when_signed_out(rt, app):
    browser = TestClient(app)
    signed_out = browser.get("/admin", follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/admin/login")
    assert browser.get("/admin/staff", follow_redirects=False).status_code == 303
    staff = make_staff(rt, "superadmin")
    page = browser.get("/admin/login")
    assert 'id="form-admin-login"' in page.text
    csrf = csrf_of(page.text)
    refused = browser.post("/admin/login", data={"csrf_token": csrf, "login": staff["login"],
                                                 "password": staff["password"], "totp": "12"})
    assert refused.status_code == 401 and "passport_admin" not in refused.cookies
    done = browser.post("/admin/login", data={"csrf_token": csrf, "login": staff["login"],
                                              "password": staff["password"], "totp": code(rt, staff["totp_secret"])},
                        follow_redirects=False)
    assert done.status_code == 303
    cookie = done.headers["set-cookie"]
    assert "passport_admin=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace(
        "SameSite=Strict", "SameSite=strict") and "Path=/" in cookie
    dashboard = browser.get("/admin")
    assert dashboard.status_code == 200 and 'id="dashboard-counts"' in dashboard.text
    staff_page = browser.get("/admin/staff")
    assert staff_page.status_code == 200 and staff["login"] in staff_page.text
    name = new_login()
    added = browser.post("/admin/staff", data={"csrf_token": csrf, "login": name, "role": "operator"})
    assert added.status_code == 200 and "/admin/enrol/" in added.text
    out = browser.post("/admin/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert browser.get("/admin", follow_redirects=False).status_code == 303


def test_staff_page_is_for_superadmins(rt, app):
    browser = TestClient(app)
    staff = make_staff(rt, "reviewer")
    browser.cookies.set("passport_admin", staff["token"])
    assert browser.get("/admin").status_code == 200
    assert browser.get("/admin/staff").status_code == 403


# --- CLI ----------------------------------------------------------------------------------------------

@pytest.fixture()
def cli_env(rt, monkeypatch):
    monkeypatch.setenv("PASSPORT_ENV", "test")
    monkeypatch.setenv("PASSPORT_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.setenv("PASSPORT_DATABASE_URL", DATABASE_URL or rt.settings.resolved_database_url)
    if REDIS_URL:
        monkeypatch.setenv("PASSPORT_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("PASSPORT_BASE_URL", "https://passport.example.cn")
    # The command would point the process-wide logger at CliRunner's stream, closed after the run.
    monkeypatch.setattr("passport.logs.configure_logging", lambda *args, **kwargs: None)


def test_cli_admin_create_prints_a_one_time_enrolment_link(rt, client, cli_env):
    from passport.cli import app as cli

    name = new_login()
    result = CliRunner().invoke(cli, ["admin", "create", "--login", name, "--role", "superadmin"])
    assert result.exit_code == 0, result.output
    link = re.search(r"https://passport\.example\.cn/admin/enrol/(\S+)", result.output)
    assert link, result.output
    with rt.db.read() as db:
        stored = db.scalar(select(Staff).where(Staff.login == name))
        assert stored.role == "superadmin" and stored.status == "enrolling"
    assert client.get(f"/admin/enrol/{link.group(1)}").status_code == 200
    again = CliRunner().invoke(cli, ["admin", "create", "--login", name, "--role", "superadmin"])
    assert again.exit_code == 1 and "login_taken" in again.output


def test_cli_admin_create_refuses_an_unknown_role(rt, cli_env):
    from passport.cli import app as cli

    name = new_login()
    result = CliRunner().invoke(cli, ["admin", "create", "--login", name, "--role", "janitor"])
    assert result.exit_code == 2
    assert "unknown role 'janitor'" in result.output and "superadmin" in result.output
    with rt.db.read() as db:
        assert db.scalar(select(Staff).where(Staff.login == name)) is None


# --- reset (lost password or authenticator) -----------------------------------------------------------

def test_superadmin_resets_a_member_who_enrols_again_from_the_new_link(rt, client, app):
    boss = make_staff(rt, "superadmin")
    member = make_staff(rt, "reviewer")
    old_code = code(rt, member["totp_secret"])
    answer = client.post(f"{ADMIN}/staff/{member['id']}/reset", headers=boss["headers"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "enrolling" and body["login"] == member["login"]
    token = body["enrolment_url"].rsplit("/", 1)[1]
    # The old session, password and authenticator are gone.
    assert client.get(f"{ADMIN}/dashboard", headers=member["headers"]).status_code == 401
    assert login(client, member, totp=old_code).status_code == 401
    with rt.db.read() as db:
        stored = db.get(Staff, member["id"])
        assert (stored.password_hash, stored.totp_secret_enc, stored.totp_last_step) == (None, None, None)
        assert db.scalar(select(AuditEvent.seq).where(AuditEvent.action == "staff.reset",
                                                      AuditEvent.subject_id == member["id"],
                                                      AuditEvent.actor_id == boss["id"]))
    secret, csrf = enrolment_page(client, token)
    assert secret != member["totp_secret"]
    new_password = STRONG_PASSWORD + "-2"
    done = client.post(f"/admin/enrol/{token}", data={"csrf_token": csrf, "password": new_password,
                                                       "totp": code(rt, secret)})
    assert done.status_code == 200
    again = login(client, member, password=new_password, totp=code(rt, secret, seconds=30))
    assert again.status_code == 201, again.text


def test_reset_is_refused_for_oneself_others_roles_and_disabled_members(rt, client):
    boss = make_staff(rt, "superadmin")
    reviewer = make_staff(rt, "reviewer")
    assert client.post(f"{ADMIN}/staff/{boss['id']}/reset", headers=boss["headers"]).json()["code"] == \
        "cannot_reset_self"
    assert client.post(f"{ADMIN}/staff/{boss['id']}/reset", headers=reviewer["headers"]).status_code == 403
    assert client.post(f"{ADMIN}/staff/{'0' * 32}/reset", headers=boss["headers"]).status_code == 404
    assert client.post(f"{ADMIN}/staff/{reviewer['id']}/disable", headers=boss["headers"]).status_code == 200
    refused = client.post(f"{ADMIN}/staff/{reviewer['id']}/reset", headers=boss["headers"])
    assert (refused.status_code, refused.json()["code"]) == (409, "staff_disabled")
    with rt.db.read() as db:
        assert db.get(Staff, reviewer["id"]).status == "disabled"


def test_staff_page_resets_and_shows_the_new_link(rt, app):
    browser = TestClient(app)
    boss = make_staff(rt, "superadmin")
    member = make_staff(rt, "auditor")
    browser.cookies.set("passport_admin", boss["token"])
    page = browser.get("/admin/staff")
    assert f'action="/admin/staff/{member["id"]}/reset"' in page.text
    csrf = csrf_of(page.text)
    done = browser.post(f"/admin/staff/{member['id']}/reset", data={"csrf_token": csrf})
    assert done.status_code == 200
    assert re.search(r'id="enrolment-url"[^>]*>[^<]*/admin/enrol/\S+<', done.text)
    with rt.db.read() as db:
        assert db.get(Staff, member["id"]).status == "enrolling"


def test_cli_admin_reset_prints_a_new_link(rt, client, cli_env):
    from passport.cli import app as cli

    member = make_staff(rt, "superadmin")
    result = CliRunner().invoke(cli, ["admin", "reset", "--login", member["login"]])
    assert result.exit_code == 0, result.output
    link = re.search(r"https://passport\.example\.cn/admin/enrol/(\S+)", result.output)
    assert link and client.get(f"/admin/enrol/{link.group(1)}").status_code == 200
    missing = CliRunner().invoke(cli, ["admin", "reset", "--login", "nobody-here"])
    assert missing.exit_code == 1 and "not_found" in missing.output


def test_staff_logins_are_limited_per_login_name_from_any_address(rt, client, monkeypatch):
    monkeypatch.setattr(rt.settings, "staff_login_per_login_hour", 3)
    member = make_staff(rt, "operator")
    for n in range(3):
        answer = client.post(f"{ADMIN}/sessions", json={"login": member["login"], "password": "wrong-Password-1",
                                                         "totp": "000000"}, headers={"X-Forwarded-For": f"10.0.0.{n}"})
        assert answer.status_code == 401
    limited = login(client, member, totp=code(rt, member["totp_secret"]))
    assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
    # An unknown login name is limited the same way: the answer tells nothing about existence.
    for _ in range(3):
        client.post(f"{ADMIN}/sessions", json={"login": "no-such-staff", "password": "x", "totp": "000000"})
    assert client.post(f"{ADMIN}/sessions", json={"login": "no-such-staff", "password": "x",
                                                  "totp": "000000"}).status_code == 429
