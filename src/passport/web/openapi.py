"""The OpenAPI document as the API really answers (issue 16): every error is ``application/problem+json``
(RFC 9457) with a stable ``code``, and each operation lists the statuses and codes it can answer and
how it authenticates.

Most of it is derived from the routes, so a new route is documented without a word from its author:

- a dependency marked with :func:`guard` (``guards.Authenticated``, ``guards.staff_permission``) adds
  its security requirement and its codes (401 ``not_authenticated``, 403 ``forbidden`` …), and 403
  ``csrf_failed`` on unsafe methods when a cookie may carry the session;
- a path parameter adds 404 ``not_found``; query, header, cookie or body parameters 422
  ``validation_failed``; a body 400 ``malformed_body`` and 413 ``body_too_large``; an unsafe method 429
  ``rate_limited``; every ``/api/`` operation 503 ``service_unavailable`` | ``maintenance``.

What only the handler knows it states with ``responses=problems(phone_taken=409, invalid_code=422)``.
``tests/openapi_contract.py`` checks, over the whole test suite, that every answer is documented.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from passport.web.http import problem_type

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CODES_KEY = "x-problem-codes"
# What FastAPI documents for its own 422 body, which this API never answers.
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")

STATUS_TEXT = {400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found",
               409: "Conflict", 410: "Gone", 413: "Request body too large", 422: "Invalid input",
               429: "Too many requests", 503: "Service unavailable"}

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "An account's session token (`POST /sessions`): `Authorization: Bearer <token>`."},
    "session_cookie": {"type": "apiKey", "in": "cookie", "name": "passport_session",
                       "description": "The browser session of an account (set by the login page)."},
    "staff_bearer": {"type": "http", "scheme": "bearer",
                     "description": "A staff member's token (`POST /admin/sessions`)."},
    "staff_cookie": {"type": "apiKey", "in": "cookie", "name": "passport_admin",
                     "description": "A staff member's browser session (set by the admin login page)."},
    "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
             "description": "Double-submit token: the value of the `passport_csrf` cookie. Needed with a session "
                            "cookie on POST, PUT, PATCH and DELETE (403 `csrf_failed` otherwise); not with a "
                            "bearer token."},
}

PROBLEM_SCHEMAS: dict[str, dict[str, Any]] = {
    "Problem": {
        "title": "Problem",
        "type": "object",
        "description": "An error (RFC 9457). `code` is stable; `title` and `detail` are text in the request's "
                       "language. Some codes carry more members (`retry_after` with 429 `rate_limited`, "
                       "`mfa_token` with 401 `mfa_required`, `pending` with 403 `consent_required` …).",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "format": "uri",
                     "examples": ["https://passport.orginone.cn/problems/rate-limited"]},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "examples": ["rate_limited"]},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ProblemFieldError"},
                       "description": "One entry per field that is not valid."},
            "retry_after": {"type": "integer", "minimum": 0,
                            "description": "Seconds to wait (429), as in the `Retry-After` header."},
        },
        "additionalProperties": True,
    },
    "ProblemFieldError": {
        "title": "ProblemFieldError",
        "type": "object",
        "required": ["field", "code", "message"],
        "properties": {
            "field": {"type": "string", "description": "The field, dotted for nested ones (`agreements.0`)."},
            "code": {"type": "string"},
            "message": {"type": "string"},
        },
    },
}

RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.",
                               "schema": {"type": "integer", "minimum": 1}}}


@dataclass(frozen=True)
class Guard:
    """What a dependency adds to the operations that use it."""

    security: tuple[str, ...]
    codes: dict[str, int]
    cookie: str | None = None
    note: str | None = None


@dataclass
class _Answers:
    codes: dict[int, set[str]] = field(default_factory=dict)

    def add(self, status: int, *codes: str) -> None:
        self.codes.setdefault(status, set()).update(codes)


def guard(dependency: Callable, *, bearer: str, cookie: str | None = None, note: str | None = None,
          **codes: int) -> Callable:
    """Mark an authentication dependency: its security schemes (``bearer`` and, when a cookie may carry
    the session instead, ``cookie``, which needs ``csrf`` on unsafe methods) and the codes it answers."""
    dependency.openapi_guard = Guard((bearer,), dict(codes), cookie, note)  # type: ignore[attr-defined]
    return dependency


def problems(**codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the problem codes it answers besides those derived from its
    dependencies, as ``code=status`` (``problems(phone_taken=409, invalid_code=422)``)."""
    by_status: dict[int, list[str]] = {}
    for code, status in codes.items():
        by_status.setdefault(status, []).append(code)
    return {status: {"description": STATUS_TEXT.get(status, "Problem"), _CODES_KEY: sorted(names)}
            for status, names in by_status.items()}


def problem_example(status: int, code: str, title: str, **members: Any) -> dict[str, Any]:
    """A problem body as the API answers it in English (``Accept-Language: en``), for ``examples``."""
    return {"type": problem_type(code), "title": title, "status": status, "detail": title, "code": code, **members}


def examples(request: dict[str, Any] | None = None, answers: dict[int, dict[str, Any]] | None = None) -> dict:
    """``openapi_extra=`` for a route: named examples of its JSON body and of its answers by status (a
    problem for 4xx and 5xx)."""
    extra: dict[str, Any] = {}
    if request:
        extra["requestBody"] = {"content": {"application/json": {"examples": _named(request)}}}
    for status, named in (answers or {}).items():
        media_type = PROBLEM_MEDIA_TYPE if status >= 400 else "application/json"
        extra.setdefault("responses", {})[str(status)] = {"content": {media_type: {"examples": _named(named)}}}
    return extra


def _named(values: dict[str, Any]) -> dict[str, Any]:
    return {name: {"value": value} for name, value in values.items()}


def install(app: FastAPI) -> None:
    """Build the app's document with the problem answers and security filled in (once, then cached)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(build(), app.routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any], routes: Iterable[Any]) -> dict[str, Any]:
    components = document.setdefault("components", {})
    components.setdefault("schemas", {}).update(PROBLEM_SCHEMAS)
    components["securitySchemes"] = SECURITY_SCHEMES
    for route in api_routes(routes):
        if not route.include_in_schema:
            continue
        for method in sorted(route.methods):
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            if operation is not None:
                _complete_operation(operation, route, method)
    used = json.dumps(document["paths"])
    for name in _FASTAPI_VALIDATION:
        if f'"#/components/schemas/{name}"' not in used:
            components["schemas"].pop(name, None)
    return document


def api_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """The app's API routes as they answer (prefixes and router dependencies applied)."""
    for context in iter_route_contexts(list(routes)):
        if isinstance(context.original_route, APIRoute):
            yield context


def operation_answers(route: Any, method: str) -> tuple[dict[int, set[str]], list[dict[str, list]], list[str]]:
    """The problem codes by status, the security alternatives and the notes of one operation."""
    answers = _Answers()
    security: list[dict[str, list]] = []
    notes: list[str] = []
    unsafe = method in UNSAFE
    for marked in _guards(route.dependant):
        for code, status in marked.codes.items():
            answers.add(status, code)
        security.append({scheme: [] for scheme in marked.security})
        if marked.cookie:
            security.append({marked.cookie: [], "csrf": []} if unsafe else {marked.cookie: []})
            if unsafe:
                answers.add(403, "csrf_failed")
        if marked.note:
            notes.append(marked.note)
    dependant = route.dependant
    flat = _flatten(dependant)
    if flat.path_params:
        answers.add(404, "not_found")
    typed_path = [p for p in flat.path_params if p.field_info.annotation is not str]
    if typed_path or flat.query_params or flat.header_params or flat.cookie_params or flat.body_params:
        answers.add(422, "validation_failed")
    if flat.body_params:
        answers.add(400, "malformed_body")
        answers.add(413, "body_too_large")
    if unsafe:
        answers.add(429, "rate_limited")
    if route.path_format.startswith("/api/"):
        answers.add(503, "service_unavailable", "maintenance")
    for status, response in route.responses.items():
        if isinstance(response, dict) and _CODES_KEY in response:
            answers.add(int(status), *response[_CODES_KEY])
    return answers.codes, security, notes


def _complete_operation(operation: dict[str, Any], route: Any, method: str) -> None:
    codes, security, notes = operation_answers(route, method)
    responses = operation.setdefault("responses", {})
    if 422 not in codes:  # FastAPI's HTTPValidationError for a string path parameter: never answered
        responses.pop("422", None)
    for status, names in sorted(codes.items()):
        response = responses.setdefault(str(status), {})
        response.pop(_CODES_KEY, None)
        listed = ", ".join(f"`{name}`" for name in sorted(names))
        response["description"] = f"{STATUS_TEXT.get(status, 'Problem')}: {listed}"
        content = response.setdefault("content", {})
        content.pop("application/json", None)  # FastAPI's HTTPValidationError: never answered
        problem = content.setdefault(PROBLEM_MEDIA_TYPE, {})
        problem["schema"] = {"allOf": [{"$ref": PROBLEM_REF},
                                       {"properties": {"code": {"enum": sorted(names)},
                                                       "status": {"const": status}}}]}
        if status in (429, 503):
            response["headers"] = RETRY_AFTER
    if security:
        operation["security"] = security
    if notes:
        operation["description"] = "\n\n".join([operation.get("description", "").rstrip(), *notes]).strip()


def _guards(dependant: Dependant) -> list[Guard]:
    found: list[Guard] = []
    for sub in dependant.dependencies:
        marked = getattr(sub.call, "openapi_guard", None)
        if isinstance(marked, Guard):
            found.append(marked)
        found.extend(_guards(sub))
    return found


def _flatten(dependant: Dependant) -> Dependant:
    flat = Dependant(path_params=list(dependant.path_params), query_params=list(dependant.query_params),
                     header_params=list(dependant.header_params), cookie_params=list(dependant.cookie_params),
                     body_params=list(dependant.body_params))
    for sub in dependant.dependencies:
        inner = _flatten(sub)
        flat.path_params.extend(inner.path_params)
        flat.query_params.extend(inner.query_params)
        flat.header_params.extend(inner.header_params)
        flat.cookie_params.extend(inner.cookie_params)
        flat.body_params.extend(inner.body_params)
    return flat
