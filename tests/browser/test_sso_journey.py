"""Single sign-on end to end (issue 19), with an independent relying party: Authlib's OAuth 2 client
(not the server code) and joserfc validate everything the provider says. Discovery → authorization
with PKCE through the real login pages in Chromium (password, then the authenticator code) → consent →
code → tokens → ID token checked against the JWKS (signature, iss, aud, exp, nonce) → userinfo →
refresh (rotated; the old refresh token replayed revokes the family) → revocation → RP-initiated
logout; then a back-channel logout token reaches the app's server when the password changes, and
validates."""

from __future__ import annotations

import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import pyotp
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from oidc_testing import make_app
from passport_testing import STRONG_PASSWORD, bearer, free_port, register_account

pytestmark = pytest.mark.browser

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class RelyingParty:
    """The app's own web server: the redirect URI, the post-logout page and the back-channel logout
    endpoint, recording what reached them."""

    def __init__(self) -> None:
        self.port = free_port()
        self.callbacks: list[str] = []
        self.logouts: list[str] = []
        party = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if not self.path.startswith("/favicon"):
                    party.callbacks.append(self.path)
                self._answer(200, b"<!doctype html><title>RP</title><p id=rp>relying party</p>")

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                party.logouts.append(parse_qs(body).get("logout_token", [""])[0])
                self._answer(200, b"")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture()
def rp():
    party = RelyingParty()
    yield party
    party.close()


@pytest.fixture()
def issuer(rt, live_server, monkeypatch):
    monkeypatch.setattr(rt.settings, "base_url", live_server)
    return live_server


def validated_id_token(id_token: str, jwks: dict, issuer: str, client_id: str, nonce: str) -> dict:
    token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["RS256", "ES256"])
    # leeway: the server's clock runs ahead (the test moved it on for the authenticator codes)
    JWTClaimsRegistry(leeway=120, iss={"essential": True, "value": issuer}, aud={"essential": True, "value": client_id},
                      exp={"essential": True}, iat={"essential": True}, sub={"essential": True},
                      nonce={"essential": True, "value": nonce}).validate(token.claims)
    return dict(token.claims)


def totp_account(http: httpx.Client, rt) -> tuple[dict, str]:
    done = register_account(http, rt, nickname="单点登录")
    headers = bearer(done["session"]["token"])
    secret = http.post("/api/v1/me/totp", headers=headers).json()["secret"]
    answer = http.post("/api/v1/me/totp/confirm", json={"code": pyotp.TOTP(secret).at(rt.clock.now())},
                       headers=headers)
    assert answer.status_code == 204, answer.text
    rt.clock.advance(seconds=30)  # the confirming code used this step
    return done, secret


def test_an_independent_relying_party_signs_a_user_in_and_out(page, rt, issuer, rp):
    from passport.oidc import service as oidc

    app = make_app(rt, redirect_uris=[f"{rp.url}/callback"], post_logout_redirect_uris=[f"{rp.url}/bye"],
                   backchannel_logout_uri=f"{rp.url}/backchannel", scopes=["openid", "profile", "phone", "status"],
                   owner="示例科技有限公司")
    with httpx.Client(base_url=issuer) as http:
        account, secret = totp_account(http, rt)
        meta = http.get("/.well-known/openid-configuration").json()
        jwks = http.get(meta["jwks_uri"]).json()
    assert meta["issuer"] == issuer and meta["code_challenge_methods_supported"] == ["S256"]

    client = OAuth2Client(app["client_id"], app["client_secret"], scope="openid profile phone",
                          redirect_uri=f"{rp.url}/callback", code_challenge_method="S256")
    verifier, nonce = generate_token(48), secrets.token_urlsafe(12)
    url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)

    page.goto(url)
    page.wait_for_selector("#form-password")
    page.fill("#form-password input[name=login]", account["phone"])
    page.fill("#form-password input[name=password]", account["password"])
    page.click("#form-password #submit")
    page.wait_for_selector("#form-mfa")
    page.fill("#form-mfa input[name=totp]", pyotp.TOTP(secret).at(rt.clock.now()))
    page.click("#form-mfa #submit")
    page.wait_for_selector("#oidc-consent-form")
    assert "示例科技有限公司" in page.inner_text("#oidc-consent-owner")
    items = page.inner_text("#oidc-consent-items")
    assert "单点登录" in items and "****" in items and account["phone"] not in page.content()
    page.click("#oidc-allow")
    page.wait_for_selector("#rp")
    callback = f"{rp.url}{rp.callbacks[-1]}"
    assert f"state={state}" in callback

    tokens = client.fetch_token(meta["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    claims = validated_id_token(tokens["id_token"], jwks, issuer, app["client_id"], nonce)
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["sid"] and claims["auth_time"] <= claims["iat"]
    info = client.get(meta["userinfo_endpoint"]).json()
    assert info["sub"] == claims["sub"] and info["nickname"] == "单点登录"
    assert info["phone_number_masked"].startswith(account["phone"][:3]) and "phone_number" not in info

    old = dict(tokens)
    new = client.refresh_token(meta["token_endpoint"], refresh_token=old["refresh_token"])
    assert new["refresh_token"] != old["refresh_token"] and new["access_token"] != old["access_token"]
    assert client.get(meta["userinfo_endpoint"]).status_code == 200
    with httpx.Client() as raw:
        replay = raw.post(meta["token_endpoint"], auth=(app["client_id"], app["client_secret"]),
                          data={"grant_type": "refresh_token", "refresh_token": old["refresh_token"]})
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        assert client.get(meta["userinfo_endpoint"]).status_code == 401  # the family is revoked

    # Signed in and granted before: straight back with a code, no login or consent screen.
    verifier, nonce = generate_token(48), secrets.token_urlsafe(12)
    url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    page.goto(url)
    page.wait_for_selector("#rp")
    tokens = client.fetch_token(meta["token_endpoint"], authorization_response=f"{rp.url}{rp.callbacks[-1]}",
                                code_verifier=verifier)
    assert client.get(meta["userinfo_endpoint"]).status_code == 200
    client.revoke_token(meta["revocation_endpoint"], token=tokens["access_token"], token_type_hint="access_token")
    assert client.get(meta["userinfo_endpoint"]).status_code == 401

    page.goto(f"{meta['end_session_endpoint']}?id_token_hint={tokens['id_token']}"
              f"&post_logout_redirect_uri={rp.url}/bye&state=bye-state")
    page.wait_for_selector("#rp")
    assert rp.callbacks[-1] == "/bye?state=bye-state"
    page.goto(f"{issuer}/account")
    page.wait_for_url(re.compile(r".*/login.*"))

    # Signed in again through the app; then the password changes (from another device): the app's
    # back-channel logout endpoint gets a logout token for this user, and it validates.
    verifier, nonce = generate_token(48), secrets.token_urlsafe(12)
    url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    page.goto(url)
    page.fill("#form-password input[name=login]", account["phone"])
    page.fill("#form-password input[name=password]", account["password"])
    page.click("#form-password #submit")
    page.wait_for_selector("#form-mfa")
    rt.clock.advance(seconds=30)
    page.fill("#form-mfa input[name=totp]", pyotp.TOTP(secret).at(rt.clock.now()))
    page.click("#form-mfa #submit")
    page.wait_for_selector("#rp")
    tokens = client.fetch_token(meta["token_endpoint"], authorization_response=f"{rp.url}{rp.callbacks[-1]}",
                                code_verifier=verifier)
    claims = validated_id_token(tokens["id_token"], jwks, issuer, app["client_id"], nonce)
    while oidc.deliver_logouts(rt):  # what the RP-initiated logout queued
        pass
    rp.logouts.clear()
    with httpx.Client(base_url=issuer) as http:
        changed = http.put("/api/v1/me/password", headers=bearer(account["session"]["token"]),
                           json={"current_password": STRONG_PASSWORD, "new_password": "Another!long-Pass9"})
        assert changed.status_code == 200, changed.text
    assert oidc.deliver_logouts(rt) >= 1
    assert rp.logouts
    for logout_token in rp.logouts:
        decoded = jwt.decode(logout_token, KeySet.import_key_set(jwks), algorithms=["RS256", "ES256"])
        assert decoded.header["typ"] == "logout+jwt"
        JWTClaimsRegistry(leeway=120, iss={"essential": True, "value": issuer},
                          aud={"essential": True, "value": app["client_id"]},
                          iat={"essential": True}, jti={"essential": True},
                          sub={"essential": True, "value": claims["sub"]}).validate(decoded.claims)
        assert BACKCHANNEL_EVENT in decoded.claims["events"] and "nonce" not in decoded.claims
    assert client.get(meta["userinfo_endpoint"]).status_code == 401  # its tokens were revoked too
    page.goto(f"{issuer}/account")
    page.wait_for_url(re.compile(r".*/login.*"))
