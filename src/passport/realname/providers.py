"""Real-name providers behind one interface (COMPLIANCE R1): ``check(name, id_number)`` answers
verified, rejected or pending.

- ``http``: a commercial two-factor identity check (name + ID number against the national register)
  spoken to as JSON over HTTPS. Requests and answers carry an HMAC-SHA256 signature over
  ``METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nSHA256(body)`` with the shared secret; an answer whose signature
  does not verify is not believed. Timeouts, connection errors and 5xx are retried; when no
  trustworthy answer comes, ``ProviderUnavailable`` (503 ``provider_unavailable``).
- ``manual``: the user uploads an image of the ID document and a reviewer decides (pending).
- ``dev``: format checks only (they ran before), allowed only in dev and test, recorded as such.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx
import structlog

from passport.settings import Settings

log = structlog.get_logger("passport.realname")
SIGNATURE_MAX_AGE = 300  # seconds an answer's timestamp may differ from ours


@dataclass(frozen=True)
class Outcome:
    status: str  # verified | rejected | pending
    reference: str | None = None
    reason: str | None = None


class ProviderUnavailable(Exception):
    pass


class Provider(Protocol):
    name: str

    def check(self, name: str, id_number: str) -> Outcome: ...


class DevProvider:
    """Format checks only: never in prod (settings refuse it, and so does ``make_provider``)."""

    name = "dev"

    def check(self, name: str, id_number: str) -> Outcome:
        return Outcome("verified", reference="dev-format-only")


class ManualProvider:
    name = "manual"

    def check(self, name: str, id_number: str) -> Outcome:
        return Outcome("pending")


def sign(secret: bytes, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = "\n".join((method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()))
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def signed_headers(secret: bytes, app_id: str, method: str, path: str, body: bytes, now: float) -> dict[str, str]:
    timestamp, nonce = str(int(now)), secrets.token_hex(16)
    return {"X-App-Id": app_id, "X-Timestamp": timestamp, "X-Nonce": nonce,
            "X-Signature": sign(secret, method, path, timestamp, nonce, body)}


def verify_signature(secret: bytes, method: str, path: str, headers, body: bytes, now: float) -> bool:
    timestamp, nonce, signature = (headers.get("x-timestamp", ""), headers.get("x-nonce", ""),
                                   headers.get("x-signature", ""))
    number = timestamp.isascii() and timestamp.isdigit()
    if not (number and nonce and signature) or abs(now - int(timestamp)) > SIGNATURE_MAX_AGE:
        return False
    return hmac.compare_digest(sign(secret, method, path, timestamp, nonce, body), signature)


class HttpProvider:
    """``POST {url}`` ``{"request_id","name","id_number"}`` → ``{"request_id","result":"match"|"mismatch"}``;
    both directions signed (see the module docstring); the answer's signature covers ``RESPONSE`` and
    the request path."""

    name = "http"

    def __init__(self, url: str, app_id: str, secret: bytes, timeout: float, retries: int,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url, self.app_id, self.secret = url, app_id, secret
        self.path = urlsplit(url).path or "/"
        self.timeout, self.retries = timeout, retries
        self.transport = transport

    def check(self, name: str, id_number: str) -> Outcome:
        request_id = secrets.token_hex(16)
        body = json.dumps({"request_id": request_id, "name": name, "id_number": id_number},
                          ensure_ascii=False, separators=(",", ":")).encode()
        last_error = "no attempt"
        with httpx.Client(timeout=self.timeout, transport=self.transport, follow_redirects=False) as client:
            for attempt in range(self.retries + 1):
                if attempt:
                    time.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))
                headers = signed_headers(self.secret, self.app_id, "POST", self.path, body, time.time())
                try:
                    answer = client.post(self.url, content=body,
                                         headers=headers | {"Content-Type": "application/json"})
                except httpx.HTTPError as exc:
                    last_error = type(exc).__name__
                    log.warning("realname.provider_error", provider="http", attempt=attempt + 1, error=last_error)
                    continue
                if answer.status_code >= 500:
                    last_error = f"status {answer.status_code}"
                    log.warning("realname.provider_error", provider="http", attempt=attempt + 1,
                                status=answer.status_code)
                    continue
                return self._read(answer, request_id)
        raise ProviderUnavailable(last_error)

    def _read(self, answer: httpx.Response, request_id: str) -> Outcome:
        if answer.status_code != 200:
            # 4xx: our request is wrong (signature, credentials); retrying would not help.
            log.error("realname.provider_refused", provider="http", status=answer.status_code)
            raise ProviderUnavailable(f"status {answer.status_code}")
        if not verify_signature(self.secret, "RESPONSE", self.path, answer.headers, answer.content, time.time()):
            log.error("realname.provider_bad_signature", provider="http")
            raise ProviderUnavailable("bad signature")
        try:
            data = json.loads(answer.content)
        except ValueError:
            raise ProviderUnavailable("not JSON") from None
        if not isinstance(data, dict) or data.get("request_id") != request_id:
            raise ProviderUnavailable("answer to another request")
        result = data.get("result")
        if result == "match":
            return Outcome("verified", reference=str(data.get("reference") or request_id)[:64])
        if result == "mismatch":
            return Outcome("rejected", reference=str(data.get("reference") or request_id)[:64],
                           reason="name_id_mismatch")
        raise ProviderUnavailable(f"unknown result {str(result)[:32]!r}")


def make_provider(settings: Settings) -> Provider:
    if settings.realname_provider == "http":
        secret = settings.secret("realname_http_secret")
        if not settings.realname_http_url or not secret:
            raise ProviderUnavailable("PASSPORT_REALNAME_HTTP_URL and PASSPORT_REALNAME_HTTP_SECRET are not set")
        return HttpProvider(settings.realname_http_url, settings.realname_http_app_id or "", secret.encode(),
                            settings.realname_http_timeout_seconds, settings.realname_http_retries)
    if settings.realname_provider == "dev":
        if not settings.is_dev:
            raise ProviderUnavailable("the dev provider is for dev and test only")
        return DevProvider()
    return ManualProvider()
