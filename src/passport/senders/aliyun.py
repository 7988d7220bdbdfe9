"""Alibaba Cloud SMS (Dysmsapi ``SendSms``, API version 2017-05-25) over the signed RPC protocol.

Signing follows Alibaba Cloud's "Signature mechanism" for RPC APIs (signature version 1.0,
HMAC-SHA1). Requests are POSTed as a form body so the phone number and the code never appear in
a URL, where proxies and httpx error messages would carry them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import NamedTuple, Self
from urllib.parse import quote

import httpx

from passport.clock import as_utc
from passport.identity.phone import mask_phone, national
from passport.senders.sms import SendResult, SmsError, SmsMessage

log = logging.getLogger(__name__)

METHOD = "POST"
_FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}

# Error codes worth another attempt: flow control and transient faults on Aliyun's side
# ("SendSms" error codes; "Throttling.*" / "ServiceUnavailable" are common RPC errors). Anything
# else (bad number, template, sign name, credentials, signature) fails the same way every time.
_RETRYABLE_CODES = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "SignatureNonceUsed"})
_RETRYABLE_PREFIXES = ("Throttling", "ServiceUnavailable", "InternalError")

_REQUIRED = {
    "access_key_id": "sms_aliyun_access_key_id",
    "access_key_secret": "sms_aliyun_access_key_secret",
    "sign_name": "sms_aliyun_sign_name",
    "template_code": "sms_aliyun_template_code",
}


class SignedRequest(NamedTuple):
    method: str
    url: str
    params: dict[str, str]  # including Signature


def percent_encode(value: str) -> str:
    """RFC 3986 encoding of UTF-8 bytes, as "Signature mechanism" step 1 prescribes.

    Only ``A-Z a-z 0-9 - _ . ~`` stay literal, so space is ``%20``, ``*`` is ``%2A``, ``+`` is
    ``%2B`` and ``~`` is not escaped.
    """
    return quote(value.encode("utf-8"), safe="~")


def canonical_query(params: dict[str, str]) -> str:
    """Sorted, encoded ``key=value`` pairs joined by ``&``; ``Signature`` itself is never signed."""
    return "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )


def string_to_sign(params: dict[str, str], method: str = METHOD) -> str:
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def sign(params: dict[str, str], secret: str, method: str = METHOD) -> str:
    """Base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign)); the "&" is part of the key."""
    digest = hmac.new(
        f"{secret}&".encode(), string_to_sign(params, method).encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def _timestamp(sent_at: datetime) -> str:
    return as_utc(sent_at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _retryable(code: str) -> bool:
    return code in _RETRYABLE_CODES or code.startswith(_RETRYABLE_PREFIXES)


class AliyunSms:
    name = "aliyun"

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str,
        template_code: str,
        endpoint: str = "https://dysmsapi.aliyuncs.com/",
        templates: dict[str, str] | None = None,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.sign_name = sign_name
        self.template_code = template_code
        # Notices: each needs its own registered template; ``PASSPORT_SMS_TEMPLATES`` maps notice
        # template ids (notify/templates/*.toml) to TemplateCodes. Codes use ``template_code``.
        self.templates = dict(templates or {})
        self.endpoint = endpoint
        self._client = client or httpx.Client(timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        return f"AliyunSms(access_key_id={self.access_key_id!r}, endpoint={self.endpoint!r})"

    @classmethod
    def from_settings(cls, settings, **kwargs) -> Self:
        values = {arg: settings.secret(field) for arg, field in _REQUIRED.items()}
        missing = [f"PASSPORT_{_REQUIRED[arg].upper()}" for arg, value in values.items() if not value]
        if missing:
            raise RuntimeError("PASSPORT_SMS_BACKEND=aliyun needs " + ", ".join(missing))
        return cls(
            **values,
            endpoint=settings.sms_aliyun_endpoint,
            templates=settings.sms_templates,
            timeout=settings.sms_timeout_seconds,
            **kwargs,
        )

    def close(self) -> None:
        self._client.close()

    def build_request(self, message: SmsMessage, sent_at: datetime, nonce: str) -> SignedRequest:
        phone = national(message.to)
        if len(phone) != 11 or not (phone.isascii() and phone.isdigit()):
            # Mainland numbers only: SendSms wants them without the country code.
            raise SmsError(f"not a mainland mobile number: {mask_phone(message.to)}", retryable=False)
        template = {"code": message.code} if message.code is not None else message.params
        template_code = self.template_code if message.code is not None else self.templates.get(message.purpose)
        if not template_code:
            # The same every time until an operator registers it: no retry, the row shows why.
            raise SmsError(f"no aliyun TemplateCode for notice {message.purpose!r} (PASSPORT_SMS_TEMPLATES)",
                           retryable=False)
        params = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "PhoneNumbers": phone,
            "RegionId": "cn-hangzhou",
            "SignName": self.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": nonce,
            "SignatureVersion": "1.0",
            "TemplateCode": template_code,
            "TemplateParam": json.dumps(template, ensure_ascii=False, separators=(",", ":")),
            "Timestamp": _timestamp(sent_at),
            "Version": "2017-05-25",
        }
        params["Signature"] = sign(params, self._secret, METHOD)
        return SignedRequest(METHOD, self.endpoint, params)

    def send(self, message: SmsMessage, sent_at: datetime) -> SendResult:
        request = self.build_request(message, sent_at, str(uuid.uuid4()))
        to = mask_phone(message.to)
        # Signature excluded from canonical_query, so append it; the rest is already form-encoded.
        body = f"{canonical_query(request.params)}&Signature={percent_encode(request.params['Signature'])}"
        try:
            response = self._client.request(request.method, request.url, content=body, headers=_FORM)
        except httpx.HTTPError as exc:
            log.warning("aliyun SendSms to %s failed: %s", to, type(exc).__name__)
            raise SmsError(f"aliyun SMS to {to}: {type(exc).__name__}", retryable=True) from exc
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        code = payload.get("Code") if isinstance(payload, dict) else None
        if code == "OK":
            return SendResult(self.name, payload.get("BizId"))
        retryable = response.status_code >= 500 or response.status_code == 429
        if code:
            retryable = retryable or _retryable(code)
        # The provider's Message is left out on purpose: SignatureDoesNotMatch echoes the server's
        # string-to-sign, which holds the phone number and the code.
        detail = code or f"HTTP {response.status_code}"
        request_id = payload.get("RequestId") if isinstance(payload, dict) else None
        log.warning(
            "aliyun SendSms to %s refused: %s (request %s, retryable=%s)", to, detail, request_id, retryable
        )
        raise SmsError(
            f"aliyun SMS to {to} refused: {detail} (request {request_id})",
            retryable=retryable,
            provider_code=code,
        )
