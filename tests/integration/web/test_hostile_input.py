"""Issue 16: NUL, other control characters and non-ASCII digits in every path parameter, query
parameter and string field (JSON or form) of every operation and page, generated from ``app.routes``:
no answer is a 5xx. Runs on the suite's database (SQLite, or PostgreSQL with PASSPORT_TEST_DATABASE_URL),
signed in as a user (and as a superadmin for the staff API) so the values reach the services."""

from __future__ import annotations

import types
import typing
from datetime import datetime
from enum import Enum
from urllib.parse import quote

import psycopg
import pytest
from fastapi.params import Form
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel

from passport.admin.service import ROLES
from passport_testing import (
    DATABASE_URL,
    bearer,
    make_runtime,
    make_settings,
    make_staff,
    publish_agreements,
    register_account,
)

HOSTILE = ("a\x00b", "\x00", "x\x01y", "\x1b[0m", "x.²³.password.abc.def", "²³", "１２３４５６", "9" * 40)
# One per request kind is enough to show the guard; the rest run through every string at once.
CONTROL = ("a\x00b", "x\x01y")


def _is_str(annotation) -> bool:
    if annotation is str:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_str(arg) for arg in typing.get_args(annotation))
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_str(typing.get_args(annotation)[0])
    return False


def sample(annotation, text: str):
    """A value of ``annotation`` whose every string is ``text`` (the rest plausible, so the strings pass
    validation and reach the services)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return sample(typing.get_args(annotation)[0], text)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return sample(next((a for a in args if _is_str(a)), args[0]), text)
    if origin is typing.Literal:
        return typing.get_args(annotation)[0]
    if origin in (list, tuple, set, frozenset):
        inner = typing.get_args(annotation)
        return [sample(inner[0], text)] if inner else [text]
    if origin is dict:
        key, value = typing.get_args(annotation) or (str, str)
        return {sample(key, text): sample(value, text)}
    if annotation is str:
        return text
    if annotation is bool:
        return True
    if annotation is int:
        return 1
    if annotation is float:
        return 1.0
    if annotation is datetime:
        return "2030-01-01T00:00:00Z"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return next(iter(annotation)).value
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {(f.alias or name): sample(f.annotation, text) for name, f in annotation.model_fields.items()}
    return text


def operations(app):
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not (isinstance(route, APIRoute) and context.path):
            continue
        dependant = route.dependant
        paths = [p.name for p in dependant.path_params]
        queries = [p for p in dependant.query_params]
        forms = [p for p in dependant.body_params if isinstance(p.field_info, Form)]
        json_model = route.body_field.field_info.annotation if route.body_field and not forms else None
        if json_model is None and route.body_field is not None and not forms:
            json_model = route.body_field.type_
        if not (paths or queries or forms or json_model):
            continue
        for method in sorted(route.methods - {"HEAD"}):
            yield method, context.path, paths, queries, forms, json_model


def request_for(method, path, paths, queries, forms, json_model, text, path_text=None):
    url = path
    for name in paths:
        url = url.replace("{" + name + "}", quote(path_text if path_text is not None else text, safe=""))
    params = {q.alias: text if _is_str(q.field_info.annotation) else sample(q.field_info.annotation, text)
              for q in queries}
    kwargs: dict = {"params": params}
    if forms:
        kwargs["data"] = {f.alias: text if _is_str(f.field_info.annotation) else str(sample(f.field_info.annotation,
                                                                                            text))
                          for f in forms}
    elif json_model is not None and method in ("POST", "PUT", "PATCH", "DELETE"):
        kwargs["json"] = sample(json_model, text)
    return method, url, kwargs


def own_database_url() -> str | None:
    """On PostgreSQL a database of this module's own beside the suite's: the operations it calls with
    hostile values (schedule maintenance, publish, announce…) must not change what other tests see."""
    if not (DATABASE_URL or "").startswith("postgresql"):
        return None  # SQLite: the module's own data directory holds its own file
    base, _, name = DATABASE_URL.rpartition("/")
    own = f"{name}_hostile"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (own,)).fetchone():
            admin.execute(f'CREATE DATABASE "{own}"')
    return f"{base}/{own}"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from passport.app import create_app

    runtime = make_runtime(make_settings(tmp_path_factory.mktemp("hostile"), database_url=own_database_url()))
    publish_agreements(runtime)
    yield create_app(runtime=runtime)
    runtime.close()


@pytest.fixture(scope="module")
def rt(app):
    return app.state.runtime


@pytest.fixture()
def client(app):
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def signed_in(app, rt):
    with TestClient(app) as client:
        user = register_account(client, rt)
    return user["session"]["token"], {role: make_staff(rt, role)["token"] for role in ROLES}


def test_no_hostile_string_gets_a_5xx(app, client, rt, signed_in):
    user_token, staff_tokens = signed_in
    failures, sent = [], 0
    for method, path, paths, queries, forms, json_model in operations(app):
        api = path.startswith("/api/")
        if path.startswith("/api/v1/admin"):
            # The role that holds the operation's permission, so the values get past the role check.
            probe_verb, probe_url, probe_kwargs = request_for(method, path, paths, queries, forms, json_model, "²³")
            token = next((t for t in staff_tokens.values() if client.request(
                probe_verb, probe_url, headers=bearer(t), **probe_kwargs).status_code != 403),
                staff_tokens["superadmin"])
            headers = bearer(token)
        else:
            headers = bearer(user_token) if api else {"Accept": "text/html"}
        client.cookies.clear()
        if not api:
            client.cookies.set("passport_session", user_token)
        for text in HOSTILE:
            # Every string at once, then (when there are path parameters) a well-formed path with only
            # the query and body hostile, so those reach a route that exists.
            variants = [request_for(method, path, paths, queries, forms, json_model, text)]
            if paths:
                variants.append(request_for(method, path, paths, queries, forms, json_model, text, path_text="0" * 32))
            for verb, url, kwargs in variants:
                answer = client.request(verb, url, headers=headers, **kwargs)
                sent += 1
                if answer.status_code >= 500:
                    failures.append((verb, path, repr(text), answer.status_code, answer.text[:200]))
    client.cookies.clear()
    assert sent > 500
    assert failures == []


@pytest.mark.parametrize("text", CONTROL)
def test_control_characters_are_refused_before_any_route(client, text):
    in_path = client.get(f"/api/v1/announcements/{quote(text)}")
    assert in_path.status_code == 404
    in_query = client.get("/api/v1/announcements", params={"limit": "5", "x": text})
    assert in_query.status_code == 422
    assert in_query.json()["errors"][0]["code"] == "control_character"
    in_json = client.post("/api/v1/sessions", json={"login": text, "password": "x"})
    assert in_json.status_code == 422 and in_json.json()["errors"][0]["code"] == "control_character"
    in_form = client.post("/login", data={"login": text, "password": "x"}, headers={"Accept": "text/html"})
    assert in_form.status_code == 422 and "<html" in in_form.text
    in_cookie = client.get("/api/v1/me", headers={"Cookie": 'passport_session="a\\000b"'})
    assert in_cookie.status_code == 422


def test_text_fields_keep_tabs_line_breaks_and_escaped_backslashes(client):
    # Valid JSON text the guard must let through to the route (which answers as it always did).
    answer = client.post("/api/v1/sessions", json={"login": "13800000000", "password": "line\none\ttab \\u0000"})
    assert answer.status_code == 401, answer.text


def test_superscript_digits_in_an_mfa_token_are_a_wrong_token(client):
    for path, kwargs in (("/api/v1/sessions/mfa", {"json": {"mfa_token": "x.²³.password.n.m", "code": "123456"}}),
                         ("/login/mfa", {"data": {"mfa_token": "x.²³.password.n.m", "code": "123456"}})):
        answer = client.post(path, **kwargs)
        assert answer.status_code < 500, (path, answer.status_code)


def test_huge_offsets_and_sequence_numbers_are_refused(client, rt):
    reviewer, auditor = make_staff(rt, "reviewer"), make_staff(rt, "auditor")
    for staff, url in ((reviewer, "/api/v1/admin/accounts?offset=99999999999999999999"),
                       (reviewer, "/api/v1/admin/reviews?queue=real_name&offset=99999999999999999999"),
                       (auditor, "/api/v1/admin/audit?before=99999999999999999999")):
        answer = client.get(url, headers=bearer(staff["token"]))
        assert answer.status_code == 422, (url, answer.text)
