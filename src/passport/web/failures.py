"""What a request that fails answers (issue 16), at one place around the whole app.

- Every request gets an id: the ``X-Request-ID`` answer header, and a field of every log line written
  while it runs (structlog's context), so a client's report finds its log lines.
- A dependency that is down or too slow (the database, Redis) answers 503 ``service_unavailable``
  with ``Retry-After`` (API.md), a page in the user's language for a browser; never 500.
- A GET or HEAD whose pooled database connection was killed (the database restarted) runs once more:
  by then the pool holds new connections, so the client does not see the restart.
- Anything else answers 500 ``internal_error``. Either way the answer is a whole HTTP response, so the
  connection stays usable (an exception left to the server would close it without ``Connection:
  close``), and the log gets the exception's type, where it was raised and the request id: never its
  message or traceback, which carry SQL parameters and personal data.
"""

from __future__ import annotations

import secrets
import traceback
from pathlib import Path

import structlog
from limits.errors import StorageError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.requests import Request

from passport import db, errors
from passport.web import html, http

log = structlog.get_logger("passport.http")
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
_PACKAGE = str(Path(__file__).resolve().parent.parent)


def dependency_down(error: BaseException) -> bool:
    return db.unavailable(error) or isinstance(error, StorageError | RedisConnectionError | RedisTimeoutError)


def where(error: BaseException) -> str:
    """The innermost line of passport's own code the exception passed: file and line, no values."""
    found = "?"
    for frame, line in traceback.walk_tb(error.__traceback__):
        filename = frame.f_code.co_filename
        if filename.startswith(_PACKAGE):
            found = f"{filename[len(_PACKAGE) + 1:]}:{line}"
    return found


class Failures:
    def __init__(self, app, retry_after: int = 5) -> None:
        self.app = app
        self.retry_after = retry_after

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        started = False
        received: list[dict] = []

        async def recorded_receive():
            message = await receive()
            if message["type"] == "http.request":
                received.append(message)
            return message

        async def replayed_receive():
            return received.pop(0) if received else await receive()

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            try:
                await self.app(scope, recorded_receive, tracked_send)
                return
            except Exception as error:
                if started or not (scope["method"] in IDEMPOTENT and db.disconnected(error)):
                    return await self._failed(scope, tracked_send, error, started)
                log.warning("db.reconnected", error=type(error).__name__)
            try:
                await self.app(scope, replayed_receive, tracked_send)
            except Exception as error:
                await self._failed(scope, tracked_send, error, started)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)

    async def _failed(self, scope, send, error: Exception, started: bool) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        down = dependency_down(error)
        log.error("http.dependency_unavailable" if down else "http.unhandled", error=type(error).__name__,
                  where=where(error), route=route, method=scope["method"], request_id=scope["state"]["request_id"])
        if started:
            raise error  # half an answer was sent: only closing the connection can tell the client
        if down:
            refused = errors.service_unavailable(self.retry_after)
        else:
            refused = errors.DomainError("internal_error", "Something went wrong on our side.", 500)
        refused.extra["request_id"] = scope["state"]["request_id"]
        request = Request(scope)
        if http.wants_page(request):
            # Without the page context: it reads the session from the database that may be down.
            response = html.error_page(request, refused, plain=True)
        else:
            response = http.problem(request, refused)
        await response(scope, None, send)
