"""QR-code login through the API (issue 21): create, scan, approve/reject, collect once; every error
path, and the attacker's view (another browser without the cookie, a DB dump, a second account)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from passport.accounts import service as accounts
from passport.agreements import service as agreements
from passport.agreements.models import AgreementVersion, Consent
from passport.audit.models import AuditEvent
from passport.audit.service import Origin
from passport.passwordless.models import QrLogin
from passport.sessions.models import LoginSession
from passport_testing import bearer, register_account, step_up

QR = "/api/v1/qr-logins"
PC_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


def waiting_browser(app) -> TestClient:
    return TestClient(app, headers={"User-Agent": PC_AGENT})


def created(browser: TestClient) -> dict:
    answer = browser.post(QR)
    assert answer.status_code == 201, answer.text
    return answer.json()


def qr_actions(rt, account_id: str | None = None) -> list[str]:
    with rt.db.read() as db:
        query = select(AuditEvent.action).where(AuditEvent.action.startswith("qr_login."))
        if account_id:
            query = query.where(AuditEvent.subject_id == account_id)
        return list(db.scalars(query.order_by(AuditEvent.seq)))


def test_approve_gives_the_waiting_browser_a_session_of_its_own_once(app, client, rt):
    phone_user = register_account(client, rt, nickname="手机")
    phone_token = phone_user["session"]["token"]
    with waiting_browser(app) as browser:
        request = created(browser)
        assert len(request["id"]) >= 32 and request["expires_in"] == 120
        assert request["qr_payload"] == f"{rt.settings.base_url}/qr/{request['id']}"
        assert request["qr_image"].startswith("data:image/svg+xml;base64,")
        assert browser.cookies.get("passport_qr")
        assert browser.get(f"{QR}/{request['id']}").json()["status"] == "pending"

        scanned = client.post(f"{QR}/{request['id']}/scan", headers=bearer(phone_token))
        assert scanned.status_code == 200, scanned.text
        details = scanned.json()
        assert details["device"] == "Chrome on Windows" and details["status"] == "scanned"
        assert details["ip"] == "testclient" and details["requested_at"]
        assert browser.get(f"{QR}/{request['id']}").json()["status"] == "scanned"

        approved = client.post(f"{QR}/{request['id']}/approve", headers=bearer(phone_token))
        assert approved.status_code == 200 and approved.json()["status"] == "approved"

        collected = browser.get(f"{QR}/{request['id']}")
        body = collected.json()
        assert body["status"] == "approved" and body["token"] and body["token"] != phone_token
        assert browser.cookies.get("passport_session") == body["token"]
        me = browser.get("/api/v1/me", headers=bearer(body["token"]))
        assert me.status_code == 200 and me.json()["nickname"] == "手机"
        sessions = browser.get("/api/v1/sessions", headers=bearer(body["token"])).json()
        mine = next(s for s in sessions if s["current"])
        assert mine["method"] == "qr" and mine["user_agent"] == PC_AGENT
        # Once: the next poll answers "used", and starts nothing.
        again = browser.get(f"{QR}/{request['id']}").json()
        assert again["status"] == "used" and "token" not in again or again.get("token") is None
    # The approver's session is untouched; the new one is not stepped up (no password on that browser).
    assert client.get("/api/v1/me", headers=bearer(phone_token)).status_code == 200
    with rt.db.read() as db:
        row = db.get(LoginSession, body["id"])
        assert row.method == "qr" and row.stepped_up_at is None
        events = db.execute(select(AuditEvent.action, AuditEvent.details)
                            .where(AuditEvent.subject_id == phone_user["account"]["id"],
                                   AuditEvent.action.in_(("login.succeeded", "qr_login.session_started")))
                            .order_by(AuditEvent.seq.desc()).limit(2)).all()
    assert {e.action for e in events} == {"login.succeeded", "qr_login.session_started"}
    assert any(json.loads(e.details).get("method") == "qr" for e in events)
    assert qr_actions(rt, phone_user["account"]["id"])[-3:] == ["qr_login.scanned", "qr_login.approved",
                                                               "qr_login.session_started"]


def test_a_stolen_code_without_the_browser_cookie_gets_nothing(app, client, rt):
    owner = register_account(client, rt)
    with waiting_browser(app) as browser, waiting_browser(app) as thief:
        request = created(browser)
        client.post(f"{QR}/{request['id']}/approve", headers=bearer(owner["session"]["token"]))
        # The code alone (seen over a shoulder, or in the QR image): 404, as for an unknown code.
        assert thief.get(f"{QR}/{request['id']}").status_code == 404
        thief.cookies.set("passport_qr", "x" * 32, path="/api/v1/qr-logins")
        assert thief.get(f"{QR}/{request['id']}").status_code == 404
        # The rightful browser still collects.
        assert browser.get(f"{QR}/{request['id']}").json()["token"]


def test_database_dump_holds_neither_the_code_nor_the_cookie(app, client, rt):
    with waiting_browser(app) as browser:
        request = created(browser)
        secret = browser.cookies.get("passport_qr")
    with rt.db.read() as db:
        row = db.scalars(select(QrLogin).order_by(QrLogin.created_at.desc())).first()
        dumped = repr([getattr(row, c.name) for c in QrLogin.__table__.columns])
    assert request["id"] not in dumped and secret not in dumped
    assert request["id"].encode() not in row.code_hash


def test_rejected_request_ends_without_a_session(app, client, rt):
    owner = register_account(client, rt)
    headers = bearer(owner["session"]["token"])
    with waiting_browser(app) as browser:
        request = created(browser)
        rejected = client.post(f"{QR}/{request['id']}/reject", headers=headers)
        assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
        assert browser.get(f"{QR}/{request['id']}").json() == {"status": "rejected",
                                                               "expires_at": request["expires_at"]}
        assert browser.cookies.get("passport_session") is None
        # Decided: neither approve nor reject nor scan works any more.
        for step in ("approve", "reject", "scan"):
            answer = client.post(f"{QR}/{request['id']}/{step}", headers=headers)
            assert answer.status_code == 409 and answer.json()["code"] == "qr_login_closed"
    assert "qr_login.rejected" in qr_actions(rt, owner["account"]["id"])


def test_expired_request(app, client, rt):
    owner = register_account(client, rt)
    headers = bearer(owner["session"]["token"])
    with waiting_browser(app) as browser:
        request = created(browser)
        rt.clock.advance(seconds=121)
        assert browser.get(f"{QR}/{request['id']}").json()["status"] == "expired"
        for step in ("scan", "approve", "reject"):
            answer = client.post(f"{QR}/{request['id']}/{step}", headers=headers)
            assert answer.status_code == 410 and answer.json()["code"] == "qr_login_expired"


def test_approved_but_not_collected_in_time_expires(app, client, rt):
    owner = register_account(client, rt)
    with waiting_browser(app) as browser:
        request = created(browser)
        client.post(f"{QR}/{request['id']}/approve", headers=bearer(owner["session"]["token"]))
        rt.clock.advance(seconds=200)
        answer = browser.get(f"{QR}/{request['id']}").json()
        assert answer["status"] == "expired" and answer.get("token") is None


def test_only_the_account_that_scanned_may_decide(app, client, rt):
    first, second = register_account(client, rt), register_account(client, rt)
    with waiting_browser(app) as browser:
        request = created(browser)
        assert client.post(f"{QR}/{request['id']}/scan", headers=bearer(first["session"]["token"])).status_code == 200
        for step in ("scan", "approve", "reject"):
            answer = client.post(f"{QR}/{request['id']}/{step}", headers=bearer(second["session"]["token"]))
            assert answer.status_code == 404, step


def test_unknown_codes_and_signed_out_callers(client, rt):
    owner = register_account(client, rt)
    headers = bearer(owner["session"]["token"])
    for code in ("nope", "A" * 32, "x" * 200):
        assert client.get(f"{QR}/{code}").status_code == 404
        assert client.post(f"{QR}/{code}/approve", headers=headers).status_code == 404
        assert client.post(f"{QR}/{code}/scan", headers=headers).status_code == 404
    assert client.post(f"{QR}/{'A' * 32}/approve").status_code == 401


def test_frozen_account_cannot_approve_and_a_freeze_after_approval_starts_nothing(app, client, rt):
    owner = register_account(client, rt)
    account_id = owner["account"]["id"]
    headers = bearer(owner["session"]["token"])
    with waiting_browser(app) as browser:
        first = created(browser)
        assert client.post(f"{QR}/{first['id']}/approve", headers=headers).status_code == 200
        with rt.db.write() as db:
            accounts.set_status(db, account_id, "frozen", expected="active", now=rt.clock.now())
        # Frozen after approving: the waiting browser gets no session.
        answer = browser.get(f"{QR}/{first['id']}").json()
        assert answer["status"] == "rejected" and answer.get("token") is None
        second = created(browser)
        refused = client.post(f"{QR}/{second['id']}/approve", headers=headers)
        assert refused.status_code in (401, 403)
        if refused.status_code == 403:
            assert refused.json()["code"] == "account_frozen"
        assert browser.get(f"{QR}/{second['id']}").json()["status"] == "pending"
    with rt.db.read() as db:
        refusals = db.scalars(select(AuditEvent.details).where(AuditEvent.action == "login.refused",
                                                                AuditEvent.subject_id == account_id)).all()
    assert any(json.loads(d)["method"] == "qr" for d in refusals)


def test_frozen_account_is_refused_even_with_a_cached_session(app, client, rt):
    """The approval reads the account again: a session still in the process cache cannot approve."""
    from passport.passwordless import qr
    from passport.sessions import service as sessions

    owner = register_account(client, rt)
    principal = sessions.authenticate(rt, owner["session"]["token"])
    with waiting_browser(app) as browser:
        request = created(browser)
        with rt.db.write() as db:
            accounts.set_status(db, owner["account"]["id"], "suspended", expected="active", now=rt.clock.now())
        try:
            qr.decide(rt, Origin(), principal, request["id"], approve=True)
        except Exception as exc:  # noqa: BLE001
            assert getattr(exc, "code", None) == "account_suspended"
        else:
            raise AssertionError("a suspended account approved a QR login")


def test_two_step_accounts_approve_only_stepped_up(app, client, rt):
    import pyotp

    owner = register_account(client, rt)
    token = owner["session"]["token"]
    token = step_up(client, token)
    secret = client.post("/api/v1/me/totp", headers=bearer(token)).json()["secret"]
    assert client.post("/api/v1/me/totp/confirm", json={"code": pyotp.TOTP(secret).at(rt.clock.now())},
                       headers=bearer(token)).status_code == 204
    rt.clock.advance(minutes=11)  # the step-up window has passed
    with waiting_browser(app) as browser:
        request = created(browser)
        refused = client.post(f"{QR}/{request['id']}/approve", headers=bearer(token))
        assert refused.status_code == 403 and refused.json()["code"] == "step_up_required"
        token = step_up(client, token)
        assert client.post(f"{QR}/{request['id']}/approve", headers=bearer(token)).status_code == 200
        assert browser.get(f"{QR}/{request['id']}").json()["token"]


def test_reconsent_gate_applies_to_the_new_session(app, client, rt):
    owner = register_account(client, rt)
    with waiting_browser(app) as browser:
        request = created(browser)
        client.post(f"{QR}/{request['id']}/approve", headers=bearer(owner["session"]["token"]))
        agreements.publish(rt, Origin(channel="cli"), kind="privacy-policy", version="qr-9", title="p",
                           body="# p\n\nnew\n", requires_reconsent=True, immediate=True)
        try:
            token = browser.get(f"{QR}/{request['id']}").json()["token"]
            gated = browser.get("/api/v1/sessions", headers=bearer(token))
            assert gated.status_code == 403 and gated.json()["code"] == "consent_required"
        finally:
            with rt.db.write() as db:
                db.execute(delete(Consent).where(Consent.version == "qr-9"))
                db.execute(delete(AgreementVersion).where(AgreementVersion.version == "qr-9"))
            for cache in (agreements._versions_cache, agreements._summaries, agreements._continued,
                          agreements._settled):
                cache.clear()


def test_creation_is_rate_limited_per_ip(app, rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "qr_login_per_ip_minute", 2)
    with waiting_browser(app) as browser:
        assert browser.post(QR).status_code == 201
        assert browser.post(QR).status_code == 201
        limited = browser.post(QR)
        assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"


def test_the_worker_sweeps_unscanned_requests_and_stale_challenges(app, client, rt):
    from passport import worker
    from passport.passwordless.models import PasskeyChallenge

    with waiting_browser(app) as browser:
        created(browser)
    assert client.post("/api/v1/sessions/passkey/options", json={}).status_code == 200
    rt.clock.advance(days=2)
    removed = worker.sweep(rt)
    assert removed["qr_logins"] >= 1 and removed["passkey_challenges"] >= 1
    with rt.db.read() as db:
        assert db.scalars(select(QrLogin).where(QrLogin.account_id.is_(None))).all() == []
        assert db.scalars(select(PasskeyChallenge)).all() == []


def test_activity_page_names_qr_and_passkey_logins(app, client, rt):
    from passport_testing import login_form
    from webauthn_testing import SoftAuthenticator

    owner = register_account(client, rt)
    headers = bearer(owner["session"]["token"])
    authenticator = SoftAuthenticator()
    options = client.post("/api/v1/me/passkeys/options", headers=headers).json()
    assert client.post("/api/v1/me/passkeys", headers=headers,
                       json={"credential": authenticator.create(options)}).status_code == 201
    with waiting_browser(app) as browser:
        request = created(browser)
        client.post(f"{QR}/{request['id']}/approve", headers=headers)
        assert browser.get(f"{QR}/{request['id']}").json()["token"]
    options = client.post("/api/v1/sessions/passkey/options", json={}).json()
    assert client.post("/api/v1/sessions/passkey", json={"credential": authenticator.get(options)}).status_code == 201
    with TestClient(app) as page:
        assert login_form(page, owner["phone"]).status_code == 303
        html = page.get("/account/activity").text
        devices = page.get("/account/devices").text
    assert "扫码登录：已确认" in html and "添加了通行密钥" in html
    assert "(扫码登录)" in html and "(通行密钥)" in html
    assert "扫码登录" in devices and "通行密钥" in devices
