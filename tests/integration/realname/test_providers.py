"""The http provider against a real local HTTP server that checks our HMAC signature and signs its
answers: match, mismatch, timeout, 5xx (retried), and bad signatures both ways."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from passport.accounts.models import Account
from passport.realname.models import Attempt
from passport_testing import new_id_number, register_account

from .conftest import auth

SECRET = "provider-shared-secret-0123456789"
ME = "/api/v1/me/real-name"


def signature(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = f"{method}\n{path}\n{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class FakeProvider(ThreadingHTTPServer):
    """``script``: what to answer to each call in turn (the last one repeats): match, mismatch, slow,
    error, bad_signature."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script: list[str] = ["match"]
        self.calls: list[dict] = []
        self.refused = 0


class Handler(BaseHTTPRequestHandler):
    server: FakeProvider

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = signature(SECRET, "POST", self.path, self.headers["X-Timestamp"], self.headers["X-Nonce"], body)
        if not hmac.compare_digest(expected, self.headers.get("X-Signature", "")):
            self.server.refused += 1
            return self._send(401, b'{"error":"bad signature"}', sign=False)
        request = json.loads(body)
        self.server.calls.append(request | {"app_id": self.headers["X-App-Id"]})
        step = self.server.script[min(len(self.server.calls), len(self.server.script)) - 1]
        if step == "slow":
            time.sleep(1.5)
            step = "match"
        if step == "error":
            return self._send(502, b"upstream down", sign=False)
        result = "mismatch" if step == "mismatch" else "match"
        answer = json.dumps({"request_id": request["request_id"], "result": result, "reference": "ref-1"}).encode()
        self._send(200, answer, sign=True, forge=step == "bad_signature")

    def _send(self, status: int, body: bytes, *, sign: bool, forge: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if sign:
            timestamp, nonce = str(int(time.time())), "n0nce"
            mac = signature("wrong-secret" if forge else SECRET, "RESPONSE", self.path, timestamp, nonce, body)
            self.send_header("X-Timestamp", timestamp)
            self.send_header("X-Nonce", nonce)
            self.send_header("X-Signature", mac)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def fake(provider):
    server = FakeProvider()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    provider("http", realname_http_url=f"http://127.0.0.1:{server.server_address[1]}/v1/identity/verify",
             realname_http_app_id="passport-test", realname_http_secret=SECRET, realname_http_timeout_seconds=0.5,
             realname_http_retries=1)
    yield server
    server.shutdown()
    server.server_close()


def state(rt, account_id: str) -> tuple[str, list[str]]:
    with rt.db.read() as db:
        account = db.get(Account, account_id)
        attempts = db.scalars(select(Attempt.status).where(Attempt.account_id == account_id)).all()
        return account.real_name_status, list(attempts)


def test_a_match_verifies(client, rt, fake):
    done = register_account(client, rt)
    number = new_id_number()
    answer = client.post(ME, json={"name": "王小明", "id_number": number}, headers=auth(done))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "verified", "reason": None, "provider": "http"}
    [call] = fake.calls
    assert call["name"] == "王小明" and call["id_number"] == number and call["app_id"] == "passport-test"
    assert state(rt, done["account"]["id"]) == ("verified", ["verified"])


def test_a_mismatch_is_rejected_and_frees_the_id_number(client, rt, fake):
    fake.script = ["mismatch", "match"]
    first, second = register_account(client, rt), register_account(client, rt)
    number = new_id_number()
    answer = client.post(ME, json={"name": "王小明", "id_number": number}, headers=auth(first))
    assert answer.status_code == 200
    assert answer.json() == {"status": "rejected", "reason": "name_id_mismatch", "provider": "http"}
    me = client.get("/api/v1/me", headers=auth(first)).json()["real_name"]
    assert me == {"status": "rejected", "name": None, "id_number": None}
    # The refused identity holds no place: the real holder binds it.
    assert client.post(ME, json={"name": "王大明", "id_number": number}, headers=auth(second)).json()["status"] == \
        "verified"
    # And the first account may try again.
    retry = client.post(ME, json={"name": "王小明", "id_number": new_id_number()}, headers=auth(first))
    assert retry.json()["status"] == "verified"


def test_a_timeout_is_retried_then_503_and_nothing_is_held(client, rt, fake):
    fake.script = ["slow"]
    done = register_account(client, rt)
    started = time.monotonic()
    answer = client.post(ME, json={"name": "王小明", "id_number": new_id_number()}, headers=auth(done))
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "provider_unavailable" and answer.headers["Retry-After"]
    assert time.monotonic() - started < 5
    time.sleep(1.6)  # let the slow handlers finish before counting
    assert len(fake.calls) == 2  # the first try and one retry
    assert state(rt, done["account"]["id"]) == ("none", ["failed"])
    assert client.get("/api/v1/me", headers=auth(done)).json()["real_name"]["id_number"] is None


def test_a_5xx_is_retried(client, rt, fake):
    fake.script = ["error", "match"]
    done = register_account(client, rt)
    answer = client.post(ME, json={"name": "王小明", "id_number": new_id_number()}, headers=auth(done))
    assert answer.status_code == 200 and answer.json()["status"] == "verified"
    assert len(fake.calls) == 2


def test_a_5xx_every_time_is_503(client, rt, fake):
    fake.script = ["error"]
    done = register_account(client, rt)
    answer = client.post(ME, json={"name": "王小明", "id_number": new_id_number()}, headers=auth(done))
    assert answer.status_code == 503 and answer.json()["code"] == "provider_unavailable"
    assert len(fake.calls) == 2
    assert state(rt, done["account"]["id"]) == ("none", ["failed"])


def test_an_answer_with_a_bad_signature_is_not_believed(client, rt, fake):
    fake.script = ["bad_signature"]
    done = register_account(client, rt)
    answer = client.post(ME, json={"name": "王小明", "id_number": new_id_number()}, headers=auth(done))
    assert answer.status_code == 503 and answer.json()["code"] == "provider_unavailable"
    assert state(rt, done["account"]["id"]) == ("none", ["failed"])


def test_the_provider_refuses_a_request_signed_with_another_secret(client, rt, fake, provider):
    provider("http", realname_http_secret="not-the-shared-secret")
    done = register_account(client, rt)
    answer = client.post(ME, json={"name": "王小明", "id_number": new_id_number()}, headers=auth(done))
    assert answer.status_code == 503 and answer.json()["code"] == "provider_unavailable"
    assert fake.refused == 1 and fake.calls == []  # a 4xx is not retried
    assert state(rt, done["account"]["id"]) == ("none", ["failed"])


def test_a_missing_url_is_503_not_a_crash(client, rt, provider):
    provider("http", realname_http_url=None)
    done = register_account(client, rt)
    answer = client.post(ME, json={"name": "王小明", "id_number": new_id_number()}, headers=auth(done))
    assert answer.status_code == 503 and answer.json()["code"] == "provider_unavailable"
    assert state(rt, done["account"]["id"]) == ("none", [])
