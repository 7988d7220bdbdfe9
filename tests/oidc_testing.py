"""Helpers for the single sign-on tests: register an app, sign in through the pages, get a code."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from passport_testing import csrf_of, login_form, register_account

REDIRECT = "https://rp.example.com/callback"


def make_app(rt, **options) -> dict:
    from passport.audit.service import Origin
    from passport.oidc import service

    options.setdefault("redirect_uris", [REDIRECT])
    options.setdefault("scopes", ["openid", "profile", "phone", "status"])
    return service.create_app(rt, Origin(channel="cli"), name=options.pop("name", "测试应用"), **options)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def signed_in(client, rt) -> dict:
    account = register_account(client, rt)
    answer = login_form(client, account["phone"], account["password"])
    assert answer.status_code == 303, answer.text
    return account


def authorize_url(app: dict, **params) -> str:
    values = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": REDIRECT,
              "scope": "openid profile", "state": "st-" + secrets.token_hex(4), "nonce": "n-" + secrets.token_hex(4)}
    values.update(params)
    return "/oauth/authorize?" + urlencode({k: v for k, v in values.items() if v is not None})


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def consent(client, answer, decision: str = "allow"):
    """Answer the consent screen ``answer`` shows (its hidden fields, CSRF and the button)."""
    assert answer.status_code == 200, answer.text
    page = answer.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    fields = {k: html.unescape(v) for k, v in fields.items()}
    fields["csrf_token"] = csrf_of(page)
    fields["decision"] = decision
    return client.post("/oauth/authorize", data=fields, follow_redirects=False)


def to_app(answer) -> str | None:
    """Where an answer sends the browser back to the app: a 302's Location, or the address of the page
    that moves on by itself after our own forms (``oidc_continue.html``); None for anything else."""
    if answer.status_code == 302:
        return answer.headers["location"]
    found = re.search(r'<a id="oidc-continue" href="([^"]+)"', answer.text) if answer.status_code == 200 else None
    return html.unescape(found.group(1)) if found else None


def get_code(client, app: dict, **params) -> tuple[str, dict]:
    """Through the authorization endpoint and (if shown) the consent screen to the code."""
    answer = client.get(authorize_url(app, **params), follow_redirects=False)
    if answer.status_code == 200:
        answer = consent(client, answer)
    location = to_app(answer)
    assert location, answer.text
    query = query_of(location)
    assert "code" in query, query
    return query["code"], query


def exchange(client, app: dict, code: str, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT} | extra
    return client.post("/oauth/token", data=data, auth=(app["client_id"], app["client_secret"]))
