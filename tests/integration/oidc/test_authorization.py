"""The code flow at the API level: authorize, consent, token, userinfo, refresh rotation and reuse,
revocation, introspection, and the refusals (redirect URI, PKCE, code reuse, expiry, disabled apps,
scope escalation)."""

from __future__ import annotations

from oidc_testing import REDIRECT, authorize_url, consent, exchange, get_code, make_app, query_of, signed_in


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
