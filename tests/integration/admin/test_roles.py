"""Every role against every admin endpoint (issue 4): 403 ``forbidden`` exactly when the role lacks
the endpoint's permission; 401 without a staff session. Endpoints are read from the app, so ones
added later are covered without touching this file."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from passport.admin import service as admin
from passport.admin.models import Staff
from passport.audit.service import Origin
from passport_testing import bearer, make_staff

PREFIX = "/api/v1/admin"
PUBLIC = {("POST", f"{PREFIX}/sessions"),  # the staff login itself, by TOTP code or by passkey (issue 21)
          ("POST", f"{PREFIX}/sessions/passkey/options"), ("POST", f"{PREFIX}/sessions/passkey")}


def permission_of(route: APIRoute) -> str | None:
    """The permission named by the route's staff_permission dependency (searched depth-first)."""
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        permission = getattr(dependant.call, "permission", None)
        if permission:
            return permission
        stack.extend(dependant.dependencies)
    return None


def admin_endpoints(app) -> list[tuple[str, str, str | None]]:
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not (context.path or "").startswith(PREFIX):
            continue
        for method in sorted(route.methods):
            found.append((method, context.path, permission_of(route)))
    return sorted(found)


@pytest.fixture(scope="module")
def guarded(app) -> list[tuple[str, str, str]]:
    endpoints = admin_endpoints(app)
    assert endpoints
    return [(m, p, perm) for m, p, perm in endpoints if (m, p) not in PUBLIC]


def test_every_admin_endpoint_names_a_permission(app):
    for method, path, permission in admin_endpoints(app):
        if (method, path) in PUBLIC:
            continue
        assert permission in admin.PERMISSIONS, f"{method} {path} has no staff_permission dependency"


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "0" * 32, path)


def call(client, method: str, path: str, headers: dict | None = None):
    return client.request(method, concrete(path), headers=headers or {},
                          json={} if method in {"POST", "PUT", "PATCH"} else None)


@pytest.fixture(scope="module")
def members(rt):
    return {role: make_staff(rt, role) for role in admin.ROLES}


def fresh_token(rt, staff_id: str) -> str:
    """A new session for each call: an endpoint may end the session it was called with (logout)."""
    with rt.db.write() as db:
        return admin.start_staff_session(rt, db, db.get(Staff, staff_id), Origin(channel="api"))


@pytest.mark.parametrize("role", admin.ROLES)
def test_each_role_against_every_admin_endpoint(rt, client, members, guarded, role):
    wrong = []
    for method, path, permission in guarded:
        answer = call(client, method, path, bearer(fresh_token(rt, members[role]["id"])))
        is_json = "json" in answer.headers.get("content-type", "")
        refused = answer.status_code == 403 and is_json and answer.json().get("code") == "forbidden"
        allowed = role in admin.PERMISSIONS[permission]
        if refused == allowed or answer.status_code == 401:
            wrong.append(f"{role} {method} {path} ({permission}): {answer.status_code} {answer.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_every_admin_endpoint_needs_a_staff_session(rt, client, guarded):
    ended = make_staff(rt, "auditor")  # a token whose staff session has ended
    client.delete("/api/v1/admin/sessions/current", headers=ended["headers"])
    wrong = []
    for method, path, _permission in guarded:
        for headers in ({}, {"Authorization": "Bearer not-a-staff-token"}, ended["headers"]):
            answer = call(client, method, path, headers)
            if answer.status_code != 401 or answer.json().get("code") != "not_authenticated":
                wrong.append(f"{method} {path} {headers}: {answer.status_code} {answer.text[:200]}")
    assert not wrong, "\n".join(wrong)
