"""The contract is checked against what the API really answers: over the whole test run, every answer of
an operation in the OpenAPI document (its status, its media type and, for a problem, its ``code``) must
be one the document lists. ``conftest.py`` puts :class:`AnswerRecorder` in front of the suite's app and
fails the run (``pytest_sessionfinish``) when :func:`undocumented` names any answer.

500 is left out on purpose: it is never documented (API.md: never 500), and the fuzzing against a live
server (``tests/contract``) fails on any."""

from __future__ import annotations

import json
from dataclasses import dataclass

from passport.web.openapi import PROBLEM_MEDIA_TYPE, api_routes

_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Answer:
    method: str
    path: str
    status: int
    media_type: str | None
    code: str | None
    has_body: bool


class AnswerRecorder:
    """ASGI middleware: notes each answer (problem bodies are read for their ``code``)."""

    def __init__(self, app, answers: set[Answer]) -> None:
        self.app = app
        self.answers = answers

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started: dict = {}
        body = bytearray()

        async def recording_send(message):
            if message["type"] == "http.response.start":
                started.update(status=message["status"], headers=message.get("headers", []))
            elif message["type"] == "http.response.body" and len(body) < _BODY_LIMIT:
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            if started:
                self.answers.add(_answer(scope, started, bytes(body)))


def _answer(scope, started: dict, body: bytes) -> Answer:
    content_type = next((v.decode("latin-1") for k, v in started["headers"] if k.lower() == b"content-type"), None)
    media_type = content_type.split(";")[0].strip().lower() if content_type else None
    code = None
    if media_type == PROBLEM_MEDIA_TYPE:
        try:
            code = json.loads(body).get("code")
        except (ValueError, AttributeError):
            code = "<unreadable problem body>"
    return Answer(scope["method"], scope["path"], started["status"], media_type, code, bool(body))


def undocumented(app, answers: set[Answer]) -> list[str]:
    """What the answers show that the app's OpenAPI document does not list, one line each."""
    document = app.openapi()
    routes = [(route, route.path_regex) for route in api_routes(app.routes) if route.include_in_schema]
    found: set[str] = set()
    for answer in answers:
        if answer.status == 500:
            continue
        route = next((r for r, regex in routes if answer.method in r.methods and regex.match(answer.path)), None)
        if route is None:
            continue
        operation = document["paths"].get(route.path_format, {}).get(answer.method.lower())
        if operation is None:
            continue
        where = f"{answer.method} {route.path_format}"
        response = operation["responses"].get(str(answer.status)) or operation["responses"].get("default")
        if response is None:
            found.add(f"{where}: status {answer.status} ({answer.code or answer.media_type}) is not documented")
            continue
        content = response.get("content", {})
        if answer.has_body and answer.media_type and answer.media_type not in content:
            found.add(f"{where}: {answer.status} answered {answer.media_type}, documented {sorted(content)}")
            continue
        if answer.code is not None:
            listed = _codes(content.get(PROBLEM_MEDIA_TYPE, {}).get("schema", {}))
            if listed is not None and answer.code not in listed:
                found.add(f"{where}: {answer.status} code {answer.code!r} is not documented (listed: {sorted(listed)})")
    return sorted(found)


def _codes(schema: dict) -> set[str] | None:
    for part in schema.get("allOf", ()):
        enum = part.get("properties", {}).get("code", {}).get("enum")
        if enum is not None:
            return set(enum)
    return None
