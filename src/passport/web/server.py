"""The HTTP protocol ``passport serve`` runs uvicorn with (issue 16): uvicorn's h11 protocol, which
bounds the request line and headers (``h11_max_incomplete_event_size``: past it 400, connection
closed), plus what uvicorn lacks: a deadline for a client to send its headers, and one to send its
body, counted from the first byte (a slowloris client trickling a byte at a time gains nothing), and
a cap on the number of header lines (431). Past a deadline the connection is closed, with a 408 when
no answer has begun. Keep-alive idling and the concurrency cap stay uvicorn's own
(``timeout_keep_alive``, ``limit_concurrency``: 503)."""

from __future__ import annotations

import asyncio
from functools import cache

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from passport.settings import Settings


@cache
def _settings() -> Settings:
    return Settings()  # read once per server process, not once per connection


class LimitedH11Protocol(H11Protocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        settings = _settings()
        self.header_timeout = settings.server_header_timeout_seconds
        self.body_timeout = settings.server_body_timeout_seconds
        self.max_headers = settings.server_max_headers
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: str | None = None  # "headers" or "body"

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("headers")  # a connection that never sends a byte is a slowloris too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def handle_events(self) -> None:
        if self._too_many_headers():
            return
        super().handle_events()

    def _too_many_headers(self) -> bool:
        # h11 has parsed nothing yet; count the header lines of what is buffered of this request.
        if self.conn.their_state is not h11.IDLE:
            return False
        buffered = bytes(self.conn.trailing_data[0])
        end = buffered.find(b"\r\n\r\n")
        head = buffered if end < 0 else buffered[:end]
        if head.count(b"\n") <= self.max_headers:
            return False
        self._refuse(431, b"Request Header Fields Too Large")
        return True

    def _follow(self) -> None:
        """Arm the deadline the connection is now under: the body's while one streams in; the
        headers' while a request is starting (from its first byte, or from the connection's start for
        its first request); none while the app answers, nor while an idle keep-alive connection
        waits (uvicorn's timeout_keep_alive)."""
        if self.transport is None or self.transport.is_closing():
            return self._disarm()
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._arm("body")
        elif state is h11.IDLE:
            if self.conn.trailing_data[0]:
                self._arm("headers")
            elif self.timeout_keep_alive_task is not None:
                self._disarm()
        else:
            self._disarm()

    def _arm(self, what: str) -> None:
        if self._waiting_for == what:
            return  # the deadline runs from the first byte: trickling data does not move it
        self._disarm()
        self._waiting_for = what
        seconds = self.header_timeout if what == "headers" else self.body_timeout
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline, self._waiting_for = None, None

    def _expired(self) -> None:
        what, self._deadline, self._waiting_for = self._waiting_for, None, None
        if self.transport.is_closing():
            return
        self.logger.warning("Closed a connection that took too long to send its %s.", what)
        if self.conn.our_state is h11.IDLE and self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self._refuse(408, b"Request Timeout")
        else:
            self.transport.close()
        if self.cycle is not None:
            self.cycle.disconnected = True
            self.cycle.message_event.set()

    def _refuse(self, status: int, reason: bytes) -> None:
        self._disarm()
        body = reason + b"\n"
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
                             b"content-length: %d\r\n\r\n%s" % (status, reason, len(body), body))
        self.transport.close()
