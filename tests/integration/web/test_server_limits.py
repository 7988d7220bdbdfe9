"""Issue 16: the limits of a real ``passport serve`` (a subprocess on a free port): slow clients are
cut off after the read timeouts, oversized or too many headers refused, idle keep-alive closed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from passport_testing import free_port

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    data = tmp_path_factory.mktemp("served")
    port = free_port()
    env = os.environ | {
        "PASSPORT_ENV": "test", "PASSPORT_DATA_DIR": str(data), "PASSPORT_LOG_LEVEL": "WARNING",
        "PASSPORT_SERVER_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "PASSPORT_SERVER_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
        "PASSPORT_SERVER_KEEP_ALIVE_SECONDS": "1", "PASSPORT_SERVER_MAX_HEADERS": "50",
        "PASSPORT_SERVER_MAX_HEADER_BYTES": str(16 * 1024), "PASSPORT_SERVER_LIMIT_CONCURRENCY": "4",
    }
    env.pop("PASSPORT_DATABASE_URL", None)
    env.pop("PASSPORT_REDIS_URL", None)
    passport = [sys.executable, "-m", "passport"]
    subprocess.run([*passport, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    server = subprocess.Popen([*passport, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(Path(data) / "serve.log", "wb"))  # noqa: SIM115 - closed with the process
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as probe:
                probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                if probe.recv(100).startswith(b"HTTP/1.1 200"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError("passport serve did not start: " + (Path(data) / "serve.log").read_text())
        time.sleep(0.2)
    yield port
    server.terminate()
    server.wait(10)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes, float]:
    """Read until the server closes the connection; whether it did within ``seconds``."""
    started = time.monotonic()
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return False, received, time.monotonic() - started
    except ConnectionResetError:
        pass
    return True, received, time.monotonic() - started


def test_a_slowloris_client_is_cut_off_after_the_header_timeout(served):
    with connect(served) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        closed = False
        for _ in range(int(HEADER_TIMEOUT * 10)):  # a header line every 0.2 s: each one "progress"
            time.sleep(0.2)
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        if not closed:
            closed, received, _ = closed_within(sock, 2)
        assert closed
        assert time.monotonic() - started < HEADER_TIMEOUT + 2.5


def test_a_silent_connection_is_closed(served):
    with connect(served) as sock:
        closed, _, took = closed_within(sock, HEADER_TIMEOUT + 2)
        assert closed and took >= HEADER_TIMEOUT - 0.2


def test_a_slow_body_is_cut_off_after_the_body_timeout(served):
    with connect(served) as sock:
        sock.sendall(b"POST /api/v1/sessions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"login\":")
        closed, received, took = closed_within(sock, BODY_TIMEOUT + 3)
        assert closed
        assert took < BODY_TIMEOUT + 2.5


def test_oversized_headers_are_refused(served):
    with connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (1024 * 1024) + b"\r\n\r\n")
        closed, received, _ = closed_within(sock, 5)
        assert closed and received.split(b" ", 2)[1] in (b"400", b"431"), received[:100]


def test_too_many_headers_are_refused(served):
    with connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(10_000))
                     + b"\r\n")
        closed, received, _ = closed_within(sock, 5)
        assert closed and received.split(b" ", 2)[1] in (b"400", b"431"), received[:100]
    with connect(served) as sock:  # past the count, within the size
        lines = b"".join(b"X-%d: 1\r\n" % i for i in range(60))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + lines + b"\r\n")
        closed, received, _ = closed_within(sock, 5)
        assert closed and received.startswith(b"HTTP/1.1 431"), received[:100]


def test_keep_alive_serves_several_requests_then_idles_out(served):
    with connect(served) as sock:
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            answer = b""
            while not answer.endswith(b'{"status":"ok"}'):
                answer += sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
            assert b"connection: close" not in answer.lower()
        closed, _, took = closed_within(sock, 4)
        assert closed and took < 3


def test_past_the_concurrency_cap_a_request_gets_503(served):
    held = [connect(served) for _ in range(4)]  # open connections count against the cap
    try:
        with connect(served) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 503"), answer[:100]
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    with connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
