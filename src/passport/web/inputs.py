"""One guard for every string a client sends (issue 16): the path, the query, headers and cookies, and
JSON, form and multipart bodies are refused when they carry NUL or another control character, before
any route reads them. PostgreSQL refuses NUL in text (a 500 where it reached a query), and no account
data, token or identifier needs a control character. Text fields of a body may hold tabs and line
breaks (a message, an announcement); nothing else may.

A path that holds one is 404 ``not_found`` (no such resource can exist); anything else 422
``validation_failed`` naming the field, with the code ``control_character``. Pages get the same
error as a page in the user's language.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from passport import errors
from passport.web import html, http

# In a path, a query, a header, a cookie, a token, a file name: no control character at all.
STRICT = re.compile("[\x00-\x1f\x7f]")
# In a body's text: tabs and line breaks are text.
TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A JSON body: the same characters raw, or escaped (``\u0000``, ``\b``, ``\f``) after an even run of
# backslashes (``\\u0000`` is a backslash and the letters "u0000", which are text).
JSON_TEXT = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|(?<!\\)(?:\\\\)*\\(?:u000[0-8bBcCeEfF]|u001[0-9a-fA-F]"
                       rb"|u007[fF]|[bf])")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def control_character(field: str) -> errors.DomainError:
    return errors.DomainError("validation_failed", "Some fields are not valid.", 422, [
        errors.FieldError(field, "control_character", "Text may not contain control characters.")])


class InputGuard:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refused = _outside_body(scope)
        if refused is not None:
            return await _refuse(scope, send, refused)
        kind = _content_type(scope)
        if scope["method"] not in BODY_METHODS or kind not in _BODY_CHECKS:
            return await self.app(scope, receive, send)
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break

        field = await _BODY_CHECKS[kind](scope, body)
        if field is not None:
            return await _refuse(scope, send, control_character(field))
        queue = [{"type": "http.request", "body": body, "more_body": False},
                 *(m for m in messages if m["type"] != "http.request")]  # a disconnect, if it came

        async def replayed():
            return queue.pop(0) if queue else await receive()

        await self.app(scope, replayed, send)


def _outside_body(scope) -> errors.DomainError | None:
    if STRICT.search(scope.get("path", "")):
        return errors.not_found()
    query = scope.get("query_string", b"").decode("latin-1")
    for key, value in parse_qsl(query, keep_blank_values=True):
        if STRICT.search(key) or STRICT.search(value):
            return control_character(f"query.{key[:64]}")
    for name, value in scope.get("headers", ()):
        if TEXT.search(value.decode("latin-1")):
            return control_character(f"header.{name.decode('latin-1')[:64]}")
    for name, value in Request(scope).cookies.items():  # a quoted cookie may spell "\000"
        if STRICT.search(name) or STRICT.search(value):
            return control_character(f"cookie.{name[:64]}")
    return None


def _content_type(scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""


async def _json(_scope, body: bytes) -> str | None:
    """The field that holds the character (``nickname``, ``items.0.name``), as the schema's own errors
    name fields. A body that is not JSON passes: the route refuses it (400 ``malformed_body``)."""
    if not JSON_TEXT.search(body):
        return None
    try:
        document = json.loads(body, strict=False)  # strict=False: raw control characters are read
    except ValueError:  # not JSON at all: the route answers 400 malformed_body, nothing reaches the database
        return None
    return _json_field(document, ()) or "body"


def _json_field(value: Any, path: tuple[str, ...]) -> str | None:
    if isinstance(value, str):
        return ".".join(path) or "body" if TEXT.search(value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        where = (*path, str(key))
        if isinstance(key, str) and TEXT.search(key):
            return ".".join(where)
        found = _json_field(item, where)
        if found:
            return found
    return None


async def _urlencoded(_scope, body: bytes) -> str | None:
    for key, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
        if STRICT.search(key) or TEXT.search(value):
            return key[:64]
    return None


async def _multipart(scope, body: bytes) -> str | None:
    sent = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return sent.pop(0) if sent else {"type": "http.disconnect"}

    try:
        form = await Request(scope, receive).form()
    except Exception:  # noqa: BLE001 - a broken form is the route's to refuse, as before
        return None
    try:
        for key, value in form.multi_items():
            if STRICT.search(key):
                return key[:64]
            if isinstance(value, UploadFile):
                if value.filename and STRICT.search(value.filename):
                    return key[:64]
            elif TEXT.search(value):
                return key[:64]
    finally:
        await form.close()
    return None


_BODY_CHECKS = {"application/json": _json, "application/x-www-form-urlencoded": _urlencoded,
                "multipart/form-data": _multipart}


async def _refuse(scope, send, refused: errors.DomainError) -> None:
    request = Request(scope)
    if http.wants_page(request):
        response = await run_in_threadpool(html.error_page, request, refused)
    else:
        response = http.problem(request, refused)
    await response(scope, None, send)
