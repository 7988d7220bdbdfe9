"""What happens to apps when the account's sessions end (back-channel logout, sent by the worker with
retries), RP-initiated logout's checks of the ID token hint (alg none, foreign keys), key rotation,
the export and the cancellation, the pages of the user and the operators, and the CLI."""

from __future__ import annotations

import base64
import json
import re

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import func, select

from oidc_testing import REDIRECT, exchange, get_code, make_app, signed_in
from passport.audit.models import AuditEvent
from passport.audit.service import Origin
from passport.oidc import keys
from passport.oidc import service as oidc
from passport.oidc.models import OidcConsent, OidcGrant, OidcLogout, OidcToken
from passport.work import unit_of_work
from passport_testing import bearer, csrf_of, make_staff

BCL = "https://rp.example.com/backchannel"


def recorder(*statuses: int):
    """An httpx transport standing in for the app's back-channel endpoint: answers ``statuses`` in turn."""
    seen: list[dict] = []
    answers = list(statuses)

    def handle(request: httpx.Request) -> httpx.Response:
        form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
        seen.append({"url": str(request.url), "form": form})
        return httpx.Response(answers.pop(0) if len(answers) > 1 else answers[0])

    return seen, httpx.MockTransport(handle)


def actions(rt, prefix: str) -> list[str]:
    with rt.db.read() as db:
        return list(db.scalars(select(AuditEvent.action).where(AuditEvent.action.startswith(prefix))
                               .order_by(AuditEvent.seq)))


def test_freezing_the_account_revokes_app_tokens_and_sends_a_logout_with_retries(client, rt):
    from passport.credentials import service as credentials

    while oidc.deliver_logouts(rt, httpx.Client(transport=recorder(200)[1])):
        pass  # what earlier tests left queued
    app = make_app(rt, backchannel_logout_uri=BCL)
    account = signed_in(client, rt)
    account_id = account["account"]["id"]
    code, _ = get_code(client, app)
    tokens = exchange(client, app, code).json()
    id_claims = jwt.decode(tokens["id_token"], keys.loaded(rt).public).claims
    with unit_of_work(rt, Origin(channel="web"), actor=("user", account_id)) as work:
        assert credentials.freeze_within(work, account_id, "active", "signed_in")
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401

    seen, failing = recorder(503)
    assert oidc.deliver_logouts(rt, httpx.Client(transport=failing)) == 0
    assert len(seen) == 1
    assert oidc.deliver_logouts(rt, httpx.Client(transport=failing)) == 0  # not due yet: backoff
    assert len(seen) == 1
    rt.clock.advance(seconds=61)
    seen, working = recorder(200)
    assert oidc.deliver_logouts(rt, httpx.Client(transport=working)) == 1
    assert seen[0]["url"] == BCL
    token = seen[0]["form"]["logout_token"]
    decoded = jwt.decode(token, keys.loaded(rt).public, algorithms=["RS256"])
    assert decoded.header["typ"] == "logout+jwt"
    claims = decoded.claims
    assert claims["aud"] == app["client_id"] and claims["iss"] == rt.settings.base_url
    assert claims["sub"] == id_claims["sub"] and claims["sid"] == id_claims["sid"]
    assert "http://schemas.openid.net/event/backchannel-logout" in claims["events"] and "nonce" not in claims
    assert oidc.deliver_logouts(rt, httpx.Client(transport=working)) == 0  # sent once
    assert actions(rt, "oidc.logout.")[-2:] == ["oidc.logout.queued", "oidc.logout.sent"]


def test_a_logout_that_keeps_failing_stops_after_the_last_attempt(client, rt):
    app = make_app(rt, backchannel_logout_uri=BCL)
    signed_in(client, rt)
    code, _ = get_code(client, app)
    exchange(client, app, code)
    client.post("/logout", data={"csrf_token": client.cookies.get("passport_csrf")})
    seen, failing = recorder(500)
    for _ in range(rt.settings.oidc_logout_attempts + 2):
        oidc.deliver_logouts(rt, httpx.Client(transport=failing))
        rt.clock.advance(minutes=40)
    assert len(seen) == rt.settings.oidc_logout_attempts
    with rt.db.read() as db:
        job = db.scalars(select(OidcLogout).where(OidcLogout.app_id == oidc.find_app(db, app["client_id"]).id)).one()
    assert job.failed_at is not None and job.sent_at is None and job.last_error == "HTTP 500"


def _unsigned(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_rp_initiated_logout_checks_the_hint(client, rt):
    app = make_app(rt, post_logout_redirect_uris=["https://rp.example.com/bye"])
    signed_in(client, rt)
    code, _ = get_code(client, app)
    tokens = exchange(client, app, code).json()
    claims = dict(jwt.decode(tokens["id_token"], keys.loaded(rt).public).claims)

    forged_none = _unsigned(claims)
    foreign_key = RSAKey.generate_key(2048, parameters={"kid": keys.loaded(rt).signing["RS256"].kid})
    forged_key = jwt.encode({"alg": "RS256", "kid": foreign_key.kid}, claims, foreign_key)
    for hint in (forged_none, forged_key, tokens["access_token"]):
        answer = client.get("/oauth/logout", params={"id_token_hint": hint,
                                                     "post_logout_redirect_uri": "https://rp.example.com/bye"},
                            follow_redirects=False)
        assert answer.status_code == 400 and "location" not in answer.headers
    assert client.get("/account", follow_redirects=False).status_code == 200  # still signed in

    unregistered = client.get("/oauth/logout", follow_redirects=False, params={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://evil.example.com/"})
    assert unregistered.status_code == 200 and "location" not in unregistered.headers  # signed out, no redirect
    assert client.get("/account", follow_redirects=False).status_code == 303

    signed_in(client, rt)
    code, _ = get_code(client, app)
    tokens = exchange(client, app, code).json()
    done = client.get("/oauth/logout", follow_redirects=False, params={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://rp.example.com/bye", "state": "s1"})
    assert done.status_code == 302 and done.headers["location"] == "https://rp.example.com/bye?state=s1"
    assert client.get("/account", follow_redirects=False).status_code == 303
    assert "oidc.logout" in actions(rt, "oidc.logout")


def test_without_a_hint_the_user_is_asked_first(client, rt):
    signed_in(client, rt)
    asked = client.get("/oauth/logout")
    assert asked.status_code == 200 and 'id="oidc-logout-form"' in asked.text
    assert client.get("/account", follow_redirects=False).status_code == 200
    refused = client.post("/oauth/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    confirmed = client.post("/oauth/logout", data={"csrf_token": csrf_of(asked.text)})
    assert confirmed.status_code == 200 and 'id="oidc-logout-done"' in confirmed.text
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_key_rotation_signs_with_the_new_key_and_keeps_the_old_one_published(client, rt):
    app = make_app(rt)
    signed_in(client, rt)
    before = {k["kid"] for k in client.get("/oauth/jwks").json()["keys"]}
    old_kid = keys.loaded(rt).signing["RS256"].kid
    with unit_of_work(rt, Origin(channel="cli"), actor=("cli", None)) as work:
        added = keys.rotate(rt, work.db, work.at, ("RS256",))
    new_kid = added[0].kid
    published = {k["kid"] for k in client.get("/oauth/jwks").json()["keys"]}
    assert before | {new_kid} == published and old_kid in published
    code, _ = get_code(client, app)
    id_token = exchange(client, app, code).json()["id_token"]
    assert jwt.decode(id_token, KeySet.import_key_set(client.get("/oauth/jwks").json())).header["kid"] == new_kid
    rt.clock.advance(seconds=rt.settings.oidc_id_token_seconds + 600)
    keys.forget(rt)
    assert old_kid not in {k["kid"] for k in client.get("/oauth/jwks").json()["keys"]}
    assert all("d" not in k for k in client.get("/oauth/jwks").json()["keys"])  # never a private part


def test_signing_keys_are_sealed_at_rest(rt):
    from passport.oidc.models import OidcSigningKey

    keys.loaded(rt)
    with rt.db.read() as db:
        rows = db.scalars(select(OidcSigningKey)).all()
    assert rows
    for row in rows:
        assert b'"d"' not in row.private_enc and b"-----BEGIN" not in row.private_enc
        assert "d" not in row.public_jwk


def test_the_export_lists_app_grants_and_finalisation_removes_them(client, rt):
    from passport.cancellation import service as cancellation

    app = make_app(rt, scopes=["openid", "profile", "phone"])
    account = signed_in(client, rt)
    account_id = account["account"]["id"]
    code, _ = get_code(client, app, scope="openid phone")
    exchange(client, app, code)
    with rt.db.read() as db:
        archive = cancellation._archive(rt, db, account_id, rt.clock.now())
    grants = archive["apps"]["grants"]
    assert [(g["client_id"], g["scopes"], g["claims"]) for g in grants] == [
        (app["client_id"], ["openid", "phone"], ["sub", "phone_number_masked"])]
    assert [(c["granted"], c["basis"]) for c in archive["apps"]["consents"]] == [(True, "explicit")]
    assert "apps：" in archive["README"]["zh-CN"]

    with unit_of_work(rt, Origin(channel="worker"), actor=("system", None)) as work:
        for eraser in cancellation._finalisers:
            eraser(work, account_id)
    with rt.db.read() as db:
        assert db.scalar(select(func.count()).select_from(OidcGrant).where(OidcGrant.account_id == account_id)) == 0
        assert db.scalar(select(func.count()).select_from(OidcToken).where(OidcToken.account_id == account_id)) == 0
        # The ledger of decisions stays (it names the pseudonymous id only).
        assert db.scalar(select(func.count()).select_from(OidcConsent).where(OidcConsent.account_id == account_id)) == 1


def test_the_apps_page_shows_and_withdraws_a_grant(client, rt):
    app = make_app(rt, name="协同办公", owner="示例公司")
    signed_in(client, rt)
    code, _ = get_code(client, app)
    tokens = exchange(client, app, code).json()
    page = client.get("/account/apps")
    assert page.status_code == 200 and "协同办公" in page.text and "示例公司" in page.text
    forged = client.post(f"/account/apps/{app['client_id']}/revoke", data={"csrf_token": "nope"})
    assert forged.status_code == 403
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 200
    done = client.post(f"/account/apps/{app['client_id']}/revoke", data={"csrf_token": csrf_of(page.text)},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/account/apps?done=revoked"
    assert 'id="oidc-apps-none"' in client.get("/account/apps").text
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401


def test_operators_register_and_disable_apps_in_the_console(client, rt):
    operator, reviewer = make_staff(rt, "operator"), make_staff(rt, "reviewer")
    client.cookies.set("passport_admin", reviewer["token"])
    assert client.get("/admin/apps").status_code == 403
    client.cookies.set("passport_admin", operator["token"])
    page = client.get("/admin/apps")
    assert page.status_code == 200
    created = client.post("/admin/apps", data={
        "csrf_token": csrf_of(page.text), "name": "控制台应用", "owner": "示例公司", "redirect_uris": REDIRECT,
        "scope_openid": "1", "scope_profile": "1"})
    assert created.status_code == 200
    client_id = re.search(r'id="created-client-id">([^<]+)<', created.text).group(1)
    secret = re.search(r'id="created-client-secret">([^<]+)<', created.text).group(1)
    with rt.db.read() as db:
        app = oidc.find_app(db, client_id)
        assert oidc.secret_matches(app, secret) and secret.encode() != app.secret_hash
    assert secret not in client.get("/admin/apps").text  # shown once
    disabled = client.post(f"/admin/apps/{client_id}/disable", data={"csrf_token": csrf_of(page.text)},
                           follow_redirects=False)
    assert disabled.status_code == 303
    with rt.db.read() as db:
        assert oidc.find_app(db, client_id).status == "disabled"
    with rt.db.read() as db:
        who = db.scalars(select(AuditEvent.actor_type).where(AuditEvent.action == "oidc.app.disabled")
                         .order_by(AuditEvent.seq.desc())).first()
    assert who == "staff"
    client.cookies.delete("passport_admin")


def test_the_cli_registers_lists_rotates_and_disables(rt, monkeypatch):
    from typer.testing import CliRunner

    from passport import logs
    from passport.cli import app as cli

    # The CLI would point the process's logging at the runner's output, which closes after each call.
    monkeypatch.setattr(logs, "configure_logging", lambda *args, **kwargs: None)

    env = {"PASSPORT_ENV": "test", "PASSPORT_DATA_DIR": str(rt.settings.data_dir),
           "PASSPORT_DATABASE_URL": rt.settings.resolved_database_url}
    runner = CliRunner()
    made = runner.invoke(cli, ["apps", "create", "命令行应用", "--redirect-uri", REDIRECT, "--scope", "openid",
                               "--scope", "phone", "--first-party", "--backchannel-logout-uri", BCL], env=env)
    assert made.exit_code == 0, made.output
    shown = json.loads(made.output)
    assert shown["scopes"] == ["openid", "phone"] and shown["first_party"] and shown["client_secret"]
    listed = runner.invoke(cli, ["apps", "list"], env=env)
    assert shown["client_id"] in listed.output and shown["client_secret"] not in listed.output
    rotated = json.loads(runner.invoke(cli, ["apps", "rotate-secret", shown["client_id"]], env=env).output)
    assert rotated["client_secret"] != shown["client_secret"]
    with rt.db.read() as db:
        app = oidc.find_app(db, shown["client_id"])
        assert oidc.secret_matches(app, rotated["client_secret"])
        assert not oidc.secret_matches(app, shown["client_secret"])
    bad = runner.invoke(cli, ["apps", "create", "x", "--redirect-uri", "http://example.com/cb#frag"], env=env)
    assert bad.exit_code == 2 and "invalid_redirect_uri" in bad.output
    assert runner.invoke(cli, ["apps", "disable", shown["client_id"]], env=env).exit_code == 0
    assert runner.invoke(cli, ["apps", "disable", "nope"], env=env).exit_code == 2
    keys_out = runner.invoke(cli, ["oidc", "keys", "rotate", "--alg", "ES256"], env=env)
    assert keys_out.exit_code == 0 and json.loads(keys_out.output)[0]["alg"] == "ES256"
    assert "retired" in runner.invoke(cli, ["oidc", "keys", "list"], env=env).output


def test_a_step_up_keeps_the_apps_session_and_its_logout_names_the_sid_they_know(client, rt):
    from passport_testing import STRONG_PASSWORD

    while oidc.deliver_logouts(rt, httpx.Client(transport=recorder(200)[1])):
        pass
    app = make_app(rt, backchannel_logout_uri=BCL)
    signed_in(client, rt)
    code, _ = get_code(client, app)
    tokens = exchange(client, app, code).json()
    sid = jwt.decode(tokens["id_token"], keys.loaded(rt).public).claims["sid"]
    form = client.get("/account/step-up")
    stepped = client.post("/account/step-up", data={"csrf_token": csrf_of(form.text), "password": STRONG_PASSWORD,
                                                    "next": "/account"}, follow_redirects=False)
    assert stepped.status_code == 303
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 200  # not a logout
    seen, working = recorder(200)
    assert oidc.deliver_logouts(rt, httpx.Client(transport=working)) == 0
    page = client.get("/account")
    client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    assert oidc.deliver_logouts(rt, httpx.Client(transport=working)) == 1
    assert jwt.decode(seen[0]["form"]["logout_token"], keys.loaded(rt).public).claims["sid"] == sid
