"""The code flow at the API level: authorize, consent, token, userinfo, refresh rotation and reuse,
revocation, introspection, and the refusals (redirect URI, PKCE, code reuse, expiry, disabled apps,
scope escalation)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from oidc_testing import REDIRECT, authorize_url, consent, exchange, get_code, make_app, query_of, signed_in, to_app


def test_code_flow_gives_tokens_and_userinfo(client, rt):
    app = make_app(rt)
    signed_in(client, rt)
    code, query = get_code(client, app, scope="openid profile phone status")
    answer = exchange(client, app, code)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert {"access_token", "refresh_token", "id_token", "expires_in"} <= tokens.keys()
    info = client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200, info.text
    claims = info.json()
    assert claims["nickname"] == "测试用户"
    assert "****" in claims["phone_number_masked"] and "phone_number" not in claims
    assert claims["account_status"] == "active"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_wrong_redirect_uri_is_shown_here_never_redirected(client, rt):
    app = make_app(rt)
    signed_in(client, rt)
    for uri in ("https://evil.example.com/callback", REDIRECT + "/", REDIRECT + "?x=1", "https://rp.example.com/CALLBACK"):
        answer = client.get(authorize_url(app, redirect_uri=uri), follow_redirects=False)
        assert answer.status_code == 400, uri
        assert "location" not in answer.headers
    unknown = client.get(authorize_url({"client_id": "nope"}), follow_redirects=False)
    assert unknown.status_code == 400 and "location" not in unknown.headers


def test_public_client_needs_s256_pkce_and_the_right_verifier(client, rt):
    from oidc_testing import pkce

    app = make_app(rt, public=True)
    signed_in(client, rt)
    refused = client.get(authorize_url(app), follow_redirects=False)  # no code_challenge
    assert refused.status_code == 302 and query_of(refused.headers["location"])["error"] == "invalid_request"
    plain = client.get(authorize_url(app, code_challenge="x" * 43, code_challenge_method="plain"),
                       follow_redirects=False)
    assert query_of(plain.headers["location"])["error"] == "invalid_request"

    verifier, challenge = pkce()
    code, _ = get_code(client, app, code_challenge=challenge, code_challenge_method="S256")
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": app["client_id"]}
    missing = client.post("/oauth/token", data=base)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    # The code was spent by that try: PKCE is checked after the code is claimed (no second chance).
    code, _ = get_code(client, app, code_challenge=challenge, code_challenge_method="S256")
    wrong = client.post("/oauth/token", data=base | {"code": code, "code_verifier": pkce()[0]})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    code, _ = get_code(client, app, code_challenge=challenge, code_challenge_method="S256")
    good = client.post("/oauth/token", data=base | {"code": code, "code_verifier": verifier})
    assert good.status_code == 200, good.text
    # A public client never authenticates with a secret it does not have, nor as another client.
    assert "client_secret" not in app


def test_code_reuse_fails_and_revokes_what_the_first_use_got(client, rt):
    app = make_app(rt)
    signed_in(client, rt)
    code, _ = get_code(client, app)
    first = exchange(client, app, code).json()
    assert client.get("/oauth/userinfo", headers=bearer(first["access_token"])).status_code == 200
    second = exchange(client, app, code)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert client.get("/oauth/userinfo", headers=bearer(first["access_token"])).status_code == 401
    refresh = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                          auth=(app["client_id"], app["client_secret"]))
    assert refresh.status_code == 400


def test_expired_code_is_refused(client, rt):
    app = make_app(rt)
    signed_in(client, rt)
    code, _ = get_code(client, app)
    rt.clock.advance(seconds=rt.settings.oidc_code_seconds + 1)
    answer = exchange(client, app, code)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_code_is_bound_to_its_client_and_secret(client, rt):
    app, other = make_app(rt), make_app(rt, name="另一个应用")
    signed_in(client, rt)
    code, _ = get_code(client, app)
    stolen = exchange(client, other, code)  # another app's credentials with this app's code
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    wrong_secret = client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                     "redirect_uri": REDIRECT}, auth=(app["client_id"], "guess"))
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    assert exchange(client, app, code).status_code == 200  # neither try spent it


def test_scope_escalation_is_refused(client, rt):
    app = make_app(rt, scopes=["openid", "profile"])
    signed_in(client, rt)
    answer = client.get(authorize_url(app, scope="openid profile phone"), follow_redirects=False)
    assert answer.status_code == 302 and query_of(answer.headers["location"])["error"] == "invalid_scope"
    code, _ = get_code(client, app, scope="openid")
    tokens = exchange(client, app, code).json()
    wider = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                                              "scope": "openid profile"}, auth=(app["client_id"], app["client_secret"]))
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"


def test_refresh_rotates_and_reuse_revokes_the_family(client, rt):
    app = make_app(rt)
    signed_in(client, rt)
    code, _ = get_code(client, app)
    first = exchange(client, app, code).json()
    auth = (app["client_id"], app["client_secret"])
    second = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                         auth=auth)
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert client.get("/oauth/userinfo", headers=bearer(first["access_token"])).status_code == 401  # rotated away
    assert client.get("/oauth/userinfo", headers=bearer(second["access_token"])).status_code == 200
    # The old refresh token again (an attacker's copy): refused, and the legitimate new pair dies too.
    replay = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                         auth=auth)
    assert replay.status_code == 400
    assert client.get("/oauth/userinfo", headers=bearer(second["access_token"])).status_code == 401
    third = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
                        auth=auth)
    assert third.status_code == 400


def test_disabled_app_stops_at_once(client, rt):
    from passport.audit.service import Origin
    from passport.oidc import service

    app = make_app(rt)
    signed_in(client, rt)
    code, _ = get_code(client, app)
    tokens = exchange(client, app, code).json()
    spare, _ = get_code(client, app)
    service.disable_app(rt, Origin(channel="cli"), app["client_id"])
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    assert exchange(client, app, spare).status_code == 401  # the client itself is gone
    again = client.get(authorize_url(app), follow_redirects=False)
    assert again.status_code == 400 and "location" not in again.headers


def test_introspection_only_for_the_tokens_own_app_or_a_resource_server(client, rt):
    app = make_app(rt)
    other = make_app(rt, name="别的应用")
    resource = make_app(rt, name="资源服务", resource_server=True)
    signed_in(client, rt)
    code, _ = get_code(client, app)
    token = exchange(client, app, code).json()["access_token"]

    def introspect(who):
        return client.post("/oauth/introspect", data={"token": token}, auth=(who["client_id"], who["client_secret"]))

    own = introspect(app).json()
    assert own["active"] is True and own["client_id"] == app["client_id"] and own["scope"] == "openid profile"
    assert introspect(other).json() == {"active": False}
    assert introspect(resource).json()["active"] is True
    assert client.post("/oauth/introspect", data={"token": token}).status_code == 401  # no client at all


def test_revocation_ends_the_pair(client, rt):
    app = make_app(rt)
    signed_in(client, rt)
    code, _ = get_code(client, app)
    tokens = exchange(client, app, code).json()
    auth = (app["client_id"], app["client_secret"])
    assert client.post("/oauth/revoke", data={"token": tokens["refresh_token"]}, auth=auth).status_code == 200
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    refresh = client.post("/oauth/token", auth=auth,
                          data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 400


def test_consent_is_asked_once_recorded_and_denial_goes_back(client, rt):
    from passport.oidc.models import OidcConsent

    app = make_app(rt)
    account = signed_in(client, rt)
    shown = client.get(authorize_url(app, scope="openid phone"), follow_redirects=False)
    assert shown.status_code == 200 and "测试应用" in shown.text
    assert account["phone"] not in shown.text  # the screen shows the number masked
    denied = consent(client, shown, "deny")
    assert query_of(to_app(denied))["error"] == "access_denied"
    shown = client.get(authorize_url(app, scope="openid phone"), follow_redirects=False)
    assert "code" in query_of(to_app(consent(client, shown)))
    again = client.get(authorize_url(app, scope="openid phone"), follow_redirects=False)
    assert again.status_code == 302 and "code" in query_of(again.headers["location"])  # granted before
    forced = client.get(authorize_url(app, scope="openid phone", prompt="consent"), follow_redirects=False)
    assert forced.status_code == 200
    with rt.db.read() as db:
        rows = (db.query(OidcConsent).filter(OidcConsent.account_id == account["account"]["id"])
                .order_by(OidcConsent.id).all())
    assert [(r.granted, r.basis, r.scopes, r.channel) for r in rows] == [
        (False, "refused", ["openid", "phone"], "web"), (True, "explicit", ["openid", "phone"], "web")]
    assert rows[1].ip is not None


def test_first_party_skips_consent_only_for_non_sensitive_scopes(client, rt):
    app = make_app(rt, first_party=True)
    signed_in(client, rt)
    direct = client.get(authorize_url(app, scope="openid profile"), follow_redirects=False)
    assert direct.status_code == 302 and "code" in query_of(direct.headers["location"])
    asked = client.get(authorize_url(app, scope="openid profile phone"), follow_redirects=False)
    assert asked.status_code == 200


def test_not_signed_in_goes_to_login_and_prompt_none_does_not(client, rt):
    app = make_app(rt)
    answer = client.get(authorize_url(app), follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=%2Foauth%2Fauthorize")
    silent = client.get(authorize_url(app, prompt="none"), follow_redirects=False)
    assert silent.status_code == 302 and query_of(silent.headers["location"])["error"] == "login_required"


def test_frozen_account_gets_no_code_and_its_tokens_stop(client, rt):
    from passport.accounts.models import Account
    from passport.audit.service import Origin
    from passport.credentials import service as credentials
    from passport.work import unit_of_work

    app = make_app(rt)
    account = signed_in(client, rt)
    code, _ = get_code(client, app)
    tokens = exchange(client, app, code).json()
    with unit_of_work(rt, Origin(channel="web"), actor=("user", account["account"]["id"])) as work:
        assert credentials.freeze_within(work, account["account"]["id"], "active", "signed_in")
    with rt.db.read() as db:
        status = db.get(Account, account["account"]["id"]).status
    assert status == "frozen"
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    answer = client.get(authorize_url(app), follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")  # no session any more


def test_me_apps_lists_and_revokes(client, rt):
    from passport_testing import login

    app = make_app(rt)
    account = signed_in(client, rt)
    code, _ = get_code(client, app, scope="openid phone")
    tokens = exchange(client, app, code).json()
    token = login(client, account["phone"], account["password"], status=201).json()["token"]
    listed = client.get("/api/v1/me/apps", headers=bearer(token)).json()
    assert [(a["client_id"], a["scopes"], a["claims"]) for a in listed] == [
        (app["client_id"], ["openid", "phone"], ["sub", "phone_number_masked"])]
    assert listed[0]["last_issued_at"] is not None
    assert client.delete("/api/v1/me/apps/nope", headers=bearer(token)).status_code == 404
    assert client.delete(f"/api/v1/me/apps/{app['client_id']}", headers=bearer(token)).status_code == 204
    assert client.get("/api/v1/me/apps", headers=bearer(token)).json() == []
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    assert client.delete(f"/api/v1/me/apps/{app['client_id']}", headers=bearer(token)).status_code == 404


def test_client_credentials_with_the_moderation_scope_may_check_text(client, rt):
    service_app = make_app(rt, name="审核服务", redirect_uris=[], scopes=["moderation"], grants=["client_credentials"])
    user_app = make_app(rt)
    auth = (service_app["client_id"], service_app["client_secret"])
    answer = client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "moderation"}, auth=auth)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert "refresh_token" not in tokens and "id_token" not in tokens
    checked = client.post("/api/v1/moderation/check", json={"field": "nickname", "text": "小明"},
                          headers=bearer(tokens["access_token"]))
    assert checked.status_code == 200 and checked.json()["verdict"] == "allow"
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401  # no user
    # An app without the grant type, and a user's token without the scope, get nothing.
    refused = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(user_app["client_id"], user_app["client_secret"]))
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
    signed_in(client, rt)
    code, _ = get_code(client, user_app)
    user_token = exchange(client, user_app, code).json()["access_token"]
    assert client.post("/api/v1/moderation/check", json={"field": "nickname", "text": "小明"},
                       headers=bearer(user_token)).status_code == 401
    assert client.post("/api/v1/moderation/check", json={"field": "nickname", "text": "小明"}).status_code == 401


def test_a_database_dump_holds_no_client_secret_code_or_token(client, rt):
    from sqlalchemy import MetaData, select

    app = make_app(rt)
    signed_in(client, rt)
    code, _ = get_code(client, app)
    tokens = exchange(client, app, code).json()
    refreshed = client.post("/oauth/token", auth=(app["client_id"], app["client_secret"]),
                            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).json()
    secrets_given = [app["client_secret"], code, tokens["access_token"], tokens["refresh_token"],
                     refreshed["access_token"], refreshed["refresh_token"]]
    metadata = MetaData()
    with rt.db.read() as db:
        metadata.reflect(bind=db.connection())
        dump = repr([db.execute(select(table)).all() for table in metadata.sorted_tables])
    assert not [s for s in secrets_given if s in dump]
    assert app["client_id"] in dump  # the dump is real


def test_token_requests_are_rate_limited_per_ip(client, rt, monkeypatch):
    app = make_app(rt)
    monkeypatch.setattr(rt.settings, "oidc_per_ip_minute", 3)
    auth = (app["client_id"], "wrong")
    answers = [client.post("/oauth/token", auth=auth, data={"grant_type": "client_credentials"}) for _ in range(4)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert answers[-1].json()["code"] == "rate_limited" and int(answers[-1].headers["retry-after"]) >= 1
    assert client.post("/oauth/introspect", data={"token": "x"}, auth=auth).status_code == 429


def test_prompt_login_and_max_age_ask_for_a_new_sign_in(client, rt):
    from urllib.parse import parse_qs, unquote, urlsplit

    app = make_app(rt)
    account = signed_in(client, rt)
    code, _ = get_code(client, app)  # granted, signed in: straight through
    again = client.get(authorize_url(app, prompt="login"), follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/login?")
    back = unquote(parse_qs(urlsplit(again.headers["location"]).query)["next"][0])
    assert back.startswith("/oauth/authorize?") and "prompt=login" not in back and "login_after=" in back
    rt.clock.advance(seconds=2)
    still = client.get(back, follow_redirects=False)  # the old sign-in does not count
    assert still.status_code == 303 and still.headers["location"].startswith("/login?")
    client.get("/login")
    done = client.post("/login", follow_redirects=False, data={
        "csrf_token": client.cookies.get("passport_csrf"), "method": "password", "login": account["phone"],
        "password": account["password"], "next": back})
    assert done.status_code == 303 and done.headers["location"] == back
    assert to_app(client.get(back, follow_redirects=False))
    rt.clock.advance(seconds=120)
    aged = client.get(authorize_url(app, max_age="60"), follow_redirects=False)
    assert aged.status_code == 303 and aged.headers["location"].startswith("/login?")
    fresh = client.get(authorize_url(app, max_age="3600"), follow_redirects=False)
    assert "code" in query_of(to_app(fresh))


def test_login_next_stays_on_this_site(client, rt):
    account = signed_in(client, rt)
    client.get("/login")
    for target, expected in (("//evil.example.com/x", "/account"), ("https://evil.example.com", "/account"),
                             ("/\\evil.example.com", "/account"), ("/account/apps", "/account/apps")):
        answer = client.post("/login", follow_redirects=False, data={
            "csrf_token": client.cookies.get("passport_csrf"), "method": "password", "login": account["phone"],
            "password": account["password"], "next": target})
        assert answer.status_code == 303 and answer.headers["location"] == expected, target


def test_claims_follow_the_scopes_and_what_the_operator_allowed(client, rt):
    from datetime import UTC, datetime

    from passport.accounts.models import EMAIL, REAL_NAME, Account
    from passport.db import new_id
    from passport.realname.models import Organization, OrganizationAdmin

    everything = ["openid", "profile", "phone", "email", "realname", "organizations", "status"]
    plain = make_app(rt, scopes=everything)
    allowed = make_app(rt, scopes=everything, allowed_claims=["phone_number", "name"], name="可见完整信息",
                       sector="oa.example.com")
    account = signed_in(client, rt)
    account_id = account["account"]["id"]
    now = datetime.now(UTC)
    org_id = new_id()
    with rt.db.write() as db:
        row = db.get(Account, account_id)
        row.real_name_status = "verified"
        row.real_name_enc = rt.keys.cipher.encrypt("张三", REAL_NAME, account_id)
        row.email_enc = rt.keys.cipher.encrypt("zhang@example.com", EMAIL, account_id)
        db.add(Organization(id=org_id, name="示例科技有限公司", uscc="91350100M000100Y43", status="verified",
                            created_by=account_id, created_at=now))
        db.flush()
        db.add(OrganizationAdmin(organization_id=org_id, account_id=account_id, added_by=account_id, created_at=now,
                                 accepted_at=now))
    scope = " ".join(everything)
    seen = {}
    for app in (plain, allowed):
        code, _ = get_code(client, app, scope=scope)
        token = exchange(client, app, code).json()["access_token"]
        seen[app["name"]] = client.get("/oauth/userinfo", headers=bearer(token)).json()
    masked, full = seen[plain["name"]], seen[allowed["name"]]
    assert "phone_number" not in masked and masked["phone_number_masked"].endswith(account["phone"][-4:])
    assert "name" not in masked and masked["realname_verified"] is True and masked["realname_level"] == "person"
    assert full["phone_number"] == "+86" + account["phone"] and full["name"] == "张三"
    assert masked["email"] == "zhang@example.com" and masked["email_verified"] is True
    assert masked["organizations"] == [{"id": org_id, "name": "示例科技有限公司", "role": "administrator"}]
    assert masked["account_status"] == "active"
    assert masked["sub"] != full["sub"]  # pairwise: two sectors cannot join the user by sub
    assert all("id_number" not in key for key in {**masked, **full})
    only_openid = get_code(client, plain, scope="openid")[0]
    token = exchange(client, plain, only_openid).json()["access_token"]
    assert set(client.get("/oauth/userinfo", headers=bearer(token)).json()) == {"sub"}


def test_the_audit_trail_names_grants_tokens_reuse_and_revocation_never_the_tokens(client, rt):
    from sqlalchemy import select

    from passport.audit.models import AuditEvent

    app = make_app(rt)
    signed_in(client, rt)
    with rt.db.read() as db:
        first_seq = db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    code, _ = get_code(client, app)
    tokens = exchange(client, app, code).json()
    auth = (app["client_id"], app["client_secret"])
    new = client.post("/oauth/token", auth=auth, data={"grant_type": "refresh_token",
                                                        "refresh_token": tokens["refresh_token"]}).json()
    replay = client.post("/oauth/token", auth=auth,
                         data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 400
    client.post("/oauth/revoke", auth=auth, data={"token": new["access_token"]})
    with rt.db.read() as db:
        rows = db.execute(select(AuditEvent.action, AuditEvent.details).where(AuditEvent.seq > first_seq)
                          .where(AuditEvent.action.startswith("oidc.")).order_by(AuditEvent.seq)).all()
    assert [r.action for r in rows] == ["oidc.consent.granted", "oidc.token.issued", "oidc.token.issued",
                                        "oidc.refresh.reused", "oidc.token.revoked"]
    text = repr([r.details for r in rows])
    assert not [t for t in (code, tokens["access_token"], tokens["refresh_token"], new["access_token"],
                            new["refresh_token"], app["client_secret"]) if t in text]


def test_ui_locales_picks_the_language_of_the_login_and_consent_pages(client, rt):
    app = make_app(rt)
    visitor = client.get(authorize_url(app, ui_locales="en-US zh-CN"), follow_redirects=False)
    assert visitor.status_code == 303 and "lang=en" in visitor.headers["location"]
    signed_in(client, rt)
    asked = client.get(authorize_url(app, ui_locales="en"), follow_redirects=True)
    assert asked.status_code == 200 and "Allow 测试应用 to sign you in?" in asked.text.replace("&#34;", '"')
    chinese = client.get(authorize_url(app, ui_locales="zh-CN"), follow_redirects=True)
    assert "允许“测试应用”使用您的奥集能账号登录？" in chinese.text


def test_an_account_waiting_for_its_cancellation_gets_no_code(client, rt):
    from sqlalchemy import update

    from passport.accounts.models import Account
    from passport.sessions.service import forget_sessions

    app = make_app(rt)
    account = signed_in(client, rt)
    code, _ = get_code(client, app)
    tokens = exchange(client, app, code).json()
    with rt.db.write() as db:  # what cancellation.request_cancellation leaves (the session stays usable)
        db.execute(update(Account).where(Account.id == account["account"]["id"]).values(status="cancelling"))
    forget_sessions(rt, account_id=account["account"]["id"])
    answer = client.get(authorize_url(app), follow_redirects=False)
    assert answer.status_code == 302 and query_of(answer.headers["location"])["error"] == "access_denied"
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    assert client.post("/oauth/token", auth=(app["client_id"], app["client_secret"]), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).status_code == 400


def test_profile_scope_carries_the_avatar_address_and_the_ip_region(client, rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "avatar_review", "none")
    app = make_app(rt)
    account = signed_in(client, rt)
    code, _ = get_code(client, app, scope="openid profile")
    tokens = exchange(client, app, code).json()
    claims = client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).json()
    assert "picture" not in claims and claims["ip_region"]  # no avatar yet; the region is always told
    uploaded = client.put("/api/v1/me/avatar", files={"avatar": ("a.png", _drawing(), "image/png")},
                          headers=bearer(account["session"]["token"]))
    assert uploaded.status_code == 200, uploaded.text
    claims = client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).json()
    assert claims["picture"].startswith(rt.settings.base_url.rstrip("/") + f"/u/{account['account']['id']}/avatar/")
    assert client.get(claims["picture"].removeprefix(rt.settings.base_url.rstrip("/"))).status_code == 200


def _drawing() -> bytes:
    image = Image.new("RGB", (300, 300), (240, 240, 240))
    ImageDraw.Draw(image).ellipse((60, 60, 240, 240), fill=(30, 90, 200))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
