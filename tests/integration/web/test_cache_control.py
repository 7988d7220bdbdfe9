"""Issue 15: no answer that may carry a secret or personal data is kept by a browser or a shared
cache. Every API answer and every page says ``Cache-Control: no-store`` (static files excepted); the
routes are read from the app, so a new one is covered without being listed here."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from passport import guards
from passport.admin import service as admin
from passport_testing import STRONG_PASSWORD, bearer, login, login_form, make_staff, register_account

PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


def _calls(dependant):
    yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _filled(path: str) -> str:
    return PATH_PARAM.sub("0" * 32, path)


def _all_routes(app) -> list[tuple[str, APIRoute]]:
    """(full path, route) of every route the app answers, those of included routers too."""
    return [(context.path, context.original_route) for context in iter_route_contexts(app.routes)
            if isinstance(context.original_route, APIRoute) and context.path]


def _routes(app, prefix: str):
    return [(path, r) for path, r in _all_routes(app) if path.startswith(prefix)]


def _user_gets(app) -> list[str]:
    return sorted({_filled(path) for path, r in _routes(app, "/api/v1/") if "GET" in r.methods
                   and guards.require_principal in set(_calls(r.dependant))})


def _staff_gets(app) -> list[tuple[str, str]]:
    found = set()
    for path, route in _routes(app, "/api/v1/"):
        if "GET" not in route.methods:
            continue
        for call in _calls(route.dependant):
            permission = getattr(call, "permission", None)
            if permission:
                found.add((_filled(path), sorted(admin.PERMISSIONS[permission])[0]))
    return sorted(found)


def _no_store(answer) -> bool:
    return "no-store" in answer.headers.get("cache-control", "")


def test_the_route_lists_are_not_empty(app):
    # Guards the generated lists below: a refactor of the guards must not make them vacuous.
    assert len(_user_gets(app)) >= 10 and "/api/v1/me" in _user_gets(app)
    assert len(_staff_gets(app)) >= 5


def test_every_signed_in_api_get_answers_no_store(client, rt, app):
    token = register_account(client, rt)["session"]["token"]
    missing = []
    for path in _user_gets(app):
        answer = client.get(path, headers=bearer(token))
        if not _no_store(answer):
            missing.append((path, answer.status_code))
    assert missing == []


def test_every_staff_api_get_answers_no_store(client, rt, app):
    tokens: dict[str, str] = {}
    missing = []
    for path, role in _staff_gets(app):
        if role not in tokens:
            tokens[role] = make_staff(rt, role)["token"]
        answer = client.get(path, headers=bearer(tokens[role]))
        if not _no_store(answer):
            missing.append((path, answer.status_code))
    assert missing == []


def test_every_api_answer_says_no_store_even_refusals(client, app):
    # What an attacker without a session sees: 401, 404, 405, 422 — none of it cached either.
    missing = []
    routes = _routes(app, "/api/v1/")
    assert len(routes) > 50
    for path, route in routes:
        for method in sorted(route.methods - {"HEAD"}):
            answer = client.request(method, _filled(path))
            if not _no_store(answer):
                missing.append((method, path, answer.status_code))
    assert missing == []
    for answer in (client.get("/api/v1/no-such-thing"), client.delete("/api/v1/me"),
                   client.post("/api/v1/sessions", content=b"x" * (2 * 1024 * 1024),
                               headers={"Content-Type": "application/json"})):
        assert _no_store(answer), (answer.request.url, answer.status_code)


def test_answers_carrying_a_token_say_no_store(client, rt):
    done = register_account(client, rt)
    assert _no_store(login(client, done["phone"], STRONG_PASSWORD))
    assert _no_store(client.post("/api/v1/me/recovery-key", json={"password": STRONG_PASSWORD},
                                 headers=bearer(done["session"]["token"])))
    assert _no_store(client.post("/api/v1/me/totp", headers=bearer(done["session"]["token"])))


def test_every_page_redirect_and_error_page_says_no_store(client, rt, app):
    pages = sorted({path for path, r in _all_routes(app) if "GET" in r.methods and not path.startswith("/api/")})
    assert "/account" in pages and len(pages) > 20
    missing = []
    for path in pages:  # as a visitor: the page, or the 303 to /login, or an error page
        answer = client.get(_filled(path), follow_redirects=False, headers={"Accept": "text/html"})
        if not _no_store(answer):
            missing.append((path, answer.status_code))
    done = register_account(client, rt)
    login_form(client, done["phone"])
    for path in pages:  # signed in
        answer = client.get(_filled(path), follow_redirects=False, headers={"Accept": "text/html"})
        if not _no_store(answer):
            missing.append((path, answer.status_code))
    assert missing == []
    assert _no_store(client.get("/no-such-page", headers={"Accept": "text/html"}))


@pytest.mark.parametrize("path", ["/static/app.css"])
def test_static_files_stay_cacheable(client, path):
    answer = client.get(path)
    assert answer.status_code == 200 and not _no_store(answer)
