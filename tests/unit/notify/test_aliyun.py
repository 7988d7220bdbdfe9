from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl

import httpx
import pytest

from passport.senders.aliyun import AliyunSms, canonical_query, percent_encode, sign, string_to_sign
from passport.senders.sms import SendResult, SmsError, SmsMessage
from passport.settings import Settings

SECRET = "s3cr3t-Key+/="
PHONE = "+8613812345678"
CODE = "493817"
SENT_AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
NONCE = "6a1f4e2c-0b4d-4f5e-9a2b-3c4d5e6f7a8b"
MESSAGE = SmsMessage(to=PHONE, purpose="login", text=f"验证码 {CODE}", code=CODE)


def _hmac_b64(key: str, text: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), text.encode(), hashlib.sha1).digest()).decode()


# --- Signature against Alibaba Cloud's published examples -----------------------------------

# SMS API reference, "签名机制" (help.aliyun.com/document_detail/56189.html; inputs also in
# /document_detail/101343.htm): AccessKeyId testId, secret testSecret, GET.
SMS_DOC_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
SMS_DOC_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123"
    "%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou"
    "%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1"
    "%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8"
    "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466"
    "%26SignatureVersion%3D1.0%26TemplateCode%3DSMS_71390007"
    "%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D"
    "%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
)


def test_sms_doc_example_string_to_sign_and_signature() -> None:
    assert string_to_sign(SMS_DOC_PARAMS, "GET") == SMS_DOC_STRING_TO_SIGN
    assert sign(SMS_DOC_PARAMS, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_rpc_signature_doc_example_describe_regions() -> None:
    # "Signature mechanism" example for ECS DescribeRegions (testid / testsecret). The key is
    # spelled "TimeStamp" in that example and must stay so: it changes both order and signature.
    params = {
        "TimeStamp": "2016-02-23T12:46:24Z",
        "Format": "XML",
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "Version": "2014-05-26",
        "SignatureVersion": "1.0",
    }
    assert sign(params, "testsecret", "GET") == "CT9X0VtwR86fNWSnsc6v8YGOjuE="


def test_signature_ignores_an_existing_signature_param() -> None:
    signed = dict(SMS_DOC_PARAMS, Signature="stale")
    assert sign(signed, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_method_is_part_of_the_string_to_sign() -> None:
    assert string_to_sign(SMS_DOC_PARAMS, "POST") == "POST" + SMS_DOC_STRING_TO_SIGN.removeprefix("GET")
    assert sign(SMS_DOC_PARAMS, "testSecret", "POST") != sign(SMS_DOC_PARAMS, "testSecret", "GET")


# --- Encoding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a b", "a%20b"),
        ("*", "%2A"),
        ("~", "~"),
        ("+", "%2B"),
        ("AZaz09-_.~", "AZaz09-_.~"),
        ("/:=&?", "%2F%3A%3D%26%3F"),
        ("%", "%25"),
        ("验证码", "%E9%AA%8C%E8%AF%81%E7%A0%81"),
        ('{"code":"1"}', "%7B%22code%22%3A%221%22%7D"),
    ],
)
def test_percent_encode(raw: str, encoded: str) -> None:
    assert percent_encode(raw) == encoded


def test_canonical_query_sorts_by_key_and_encodes_both_sides() -> None:
    assert canonical_query({"b": "x y", "A": "1", "a": "*", "Signature": "zzz"}) == "A=1&a=%2A&b=x%20y"


# --- build_request ------------------------------------------------------------------------


def make_sender(handler=None, **overrides) -> AliyunSms:
    transport = httpx.MockTransport(handler or (lambda request: httpx.Response(500)))
    kwargs = {
        "access_key_id": "LTAI-test",
        "access_key_secret": SECRET,
        "sign_name": "通行证",
        "template_code": "SMS_123456789",
        "endpoint": "https://dysmsapi.example/",
        "transport": transport,
    } | overrides
    return AliyunSms(**kwargs)


def test_build_request_has_every_required_param_and_a_valid_signature() -> None:
    method, url, params = make_sender().build_request(MESSAGE, SENT_AT, NONCE)
    assert (method, url) == ("POST", "https://dysmsapi.example/")
    assert {k: v for k, v in params.items() if k != "Signature"} == {
        "AccessKeyId": "LTAI-test",
        "Action": "SendSms",
        "Format": "JSON",
        "PhoneNumbers": "13812345678",
        "RegionId": "cn-hangzhou",
        "SignName": "通行证",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": NONCE,
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_123456789",
        "TemplateParam": '{"code":"493817"}',
        "Timestamp": "2026-03-04T05:06:07Z",
        "Version": "2017-05-25",
    }
    assert json.loads(params["TemplateParam"]) == {"code": CODE}
    # Recompute from the spec by hand, not with the module's helpers.
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    enc = {"TemplateParam": "%7B%22code%22%3A%22493817%22%7D", "SignName": "%E9%80%9A%E8%A1%8C%E8%AF%81"}
    query = "&".join(f"{k}={enc.get(k, v).replace(':', '%3A')}" for k, v in pairs)
    expected_sts = "POST&%2F&" + query.replace("%", "%25").replace("=", "%3D").replace("&", "%26")
    assert params["Signature"] == _hmac_b64(SECRET + "&", expected_sts)


def test_build_request_is_deterministic_and_converts_time_to_utc() -> None:
    sender = make_sender()
    beijing = SENT_AT.astimezone(timezone(timedelta(hours=8)))
    assert sender.build_request(MESSAGE, beijing, NONCE) == sender.build_request(MESSAGE, SENT_AT, NONCE)
    assert sender.build_request(MESSAGE, SENT_AT.replace(tzinfo=None), NONCE).params["Timestamp"] == (
        "2026-03-04T05:06:07Z"
    )
    other = sender.build_request(MESSAGE, SENT_AT, "another-nonce").params["Signature"]
    assert other != sender.build_request(MESSAGE, SENT_AT, NONCE).params["Signature"]


def test_build_request_uses_params_and_the_notice_template_when_there_is_no_code() -> None:
    message = SmsMessage(to=PHONE, purpose="notice", text="…", params={"name": "张三", "time": "10:00"})
    params = make_sender(templates={"notice": "SMS_NOTICE_7"}).build_request(message, SENT_AT, NONCE).params
    assert json.loads(params["TemplateParam"]) == {"name": "张三", "time": "10:00"}
    assert params["TemplateCode"] == "SMS_NOTICE_7"


def test_a_notice_without_a_registered_template_fails_for_good() -> None:
    message = SmsMessage(to=PHONE, purpose="password_changed", text="…", params={"time": "10:00"})
    with pytest.raises(SmsError) as info:
        make_sender(templates={"other": "SMS_1"}).build_request(message, SENT_AT, NONCE)
    assert info.value.retryable is False and "password_changed" in str(info.value)


def test_notice_templates_come_from_settings() -> None:
    settings = Settings(env="test", sms_backend="aliyun", sms_aliyun_access_key_id="id",
                        sms_aliyun_access_key_secret="secret", sms_aliyun_sign_name="sign",
                        sms_aliyun_template_code="SMS_CODE", sms_templates={"notice_locked": "SMS_LOCK"})
    assert AliyunSms.from_settings(settings).templates == {"notice_locked": "SMS_LOCK"}


def test_build_request_refuses_non_mainland_numbers_without_leaking_them() -> None:
    message = SmsMessage(to="+85291234567", purpose="login", text="", code=CODE)
    with pytest.raises(SmsError) as info:
        make_sender().build_request(message, SENT_AT, NONCE)
    assert info.value.retryable is False
    assert "91234567" not in str(info.value)


# --- send ---------------------------------------------------------------------------------


def reply(payload: dict, status: int = 200):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=payload)

    return handler, seen


def assert_nothing_leaks(error: SmsError, caplog: pytest.LogCaptureFixture) -> None:
    texts = [str(error), repr(error), str(error.__cause__ or ""), caplog.text]
    for text in texts:
        for secret in (SECRET, CODE, "13812345678"):
            assert secret not in text
    assert "138****5678" in str(error)


def test_send_ok_returns_biz_id_and_posts_a_signed_form() -> None:
    handler, seen = reply({"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "r"})
    result = make_sender(handler).send(MESSAGE, SENT_AT)
    assert result == SendResult("aliyun", "900619746936498440^0")

    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://dysmsapi.example/"  # nothing personal in the URL
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    form = dict(parse_qsl(request.content.decode("ascii"), keep_blank_values=True, strict_parsing=True))
    assert form["PhoneNumbers"] == "13812345678"
    assert form["SignName"] == "通行证"
    assert json.loads(form["TemplateParam"]) == {"code": CODE}
    signature = form.pop("Signature")
    sts = "POST&%2F&" + percent_encode(canonical_query(form))
    assert signature == _hmac_b64(SECRET + "&", sts)


def test_send_uses_a_fresh_nonce_each_time() -> None:
    handler, seen = reply({"Code": "OK", "BizId": "1"})
    sender = make_sender(handler)
    sender.send(MESSAGE, SENT_AT)
    sender.send(MESSAGE, SENT_AT)
    nonces = {dict(parse_qsl(r.content.decode()))["SignatureNonce"] for r in seen}
    assert len(nonces) == 2


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (200, "isv.BUSINESS_LIMIT_CONTROL", True),
        (400, "Throttling.User", True),
        (200, "isp.SYSTEM_ERROR", True),
        (503, "ServiceUnavailable", True),
        (200, "isv.MOBILE_NUMBER_ILLEGAL", False),
        (200, "isv.SMS_TEMPLATE_ILLEGAL", False),
        (200, "isv.SMS_SIGNATURE_ILLEGAL", False),
        (404, "InvalidAccessKeyId.NotFound", False),
        (400, "SignatureDoesNotMatch", False),
    ],
)
def test_send_classifies_provider_codes(
    status: int, code: str, retryable: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # Aliyun echoes the string-to-sign (phone, code) in SignatureDoesNotMatch messages.
    echoed = f"server string to sign is:POST&%2F&PhoneNumbers%3D13812345678 {CODE} {SECRET}"
    handler, _ = reply({"Code": code, "Message": echoed, "RequestId": "req-1"}, status)
    with caplog.at_level(logging.DEBUG), pytest.raises(SmsError) as info:
        make_sender(handler).send(MESSAGE, SENT_AT)
    assert info.value.retryable is retryable
    assert info.value.provider_code == code
    assert code in str(info.value) and "req-1" in str(info.value)
    assert_nothing_leaks(info.value, caplog)


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("connection refused"), httpx.ReadTimeout("timed out"), httpx.ConnectTimeout("t")],
)
def test_send_network_failures_are_retryable(exc: Exception, caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with caplog.at_level(logging.DEBUG), pytest.raises(SmsError) as info:
        make_sender(handler).send(MESSAGE, SENT_AT)
    assert info.value.retryable is True
    assert info.value.provider_code is None
    assert_nothing_leaks(info.value, caplog)


@pytest.mark.parametrize(("status", "retryable"), [(502, True), (500, True), (429, True), (403, False)])
def test_send_non_json_http_errors(status: int, retryable: bool, caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="<html>gateway</html>")

    with caplog.at_level(logging.DEBUG), pytest.raises(SmsError) as info:
        make_sender(handler).send(MESSAGE, SENT_AT)
    assert info.value.retryable is retryable
    assert f"HTTP {status}" in str(info.value)
    assert_nothing_leaks(info.value, caplog)


def test_repr_does_not_show_the_secret() -> None:
    assert SECRET not in repr(make_sender())


# --- from_settings ------------------------------------------------------------------------

COMPLETE = {
    "sms_backend": "aliyun",
    "sms_aliyun_access_key_id": "LTAI-test",
    "sms_aliyun_access_key_secret": SECRET,
    "sms_aliyun_sign_name": "通行证",
    "sms_aliyun_template_code": "SMS_1",
}


@pytest.mark.parametrize("field", sorted(k for k in COMPLETE if k != "sms_backend"))
def test_from_settings_names_the_missing_setting(field: str) -> None:
    settings = Settings(env="test", **(COMPLETE | {field: None}))
    with pytest.raises(RuntimeError, match=f"PASSPORT_{field.upper()}") as info:
        AliyunSms.from_settings(settings)
    assert SECRET not in str(info.value)


def test_from_settings_lists_every_missing_setting() -> None:
    settings = Settings(env="test", sms_backend="aliyun", **{k: None for k in COMPLETE if k != "sms_backend"})
    with pytest.raises(RuntimeError) as info:
        AliyunSms.from_settings(settings)
    for field in ("ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "SIGN_NAME", "TEMPLATE_CODE"):
        assert f"PASSPORT_SMS_ALIYUN_{field}" in str(info.value)


def test_from_settings_resolves_file_secrets_and_endpoint(tmp_path) -> None:
    secret_file = tmp_path / "aliyun_secret"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    handler, seen = reply({"Code": "OK", "BizId": "42"})
    settings = Settings(
        env="test",
        **(COMPLETE | {"sms_aliyun_access_key_secret": f"file://{secret_file}"}),
        sms_aliyun_endpoint="https://sms.internal.example/",
        sms_timeout_seconds=1.5,
    )
    sender = AliyunSms.from_settings(settings, transport=httpx.MockTransport(handler))
    assert sender.name == "aliyun"
    assert sender._client.timeout == httpx.Timeout(1.5)
    assert sender.send(MESSAGE, SENT_AT) == SendResult("aliyun", "42")
    assert str(seen[0].url) == "https://sms.internal.example/"
    form = dict(parse_qsl(seen[0].content.decode()))
    assert form.pop("Signature") == _hmac_b64(
        SECRET + "&", "POST&%2F&" + percent_encode(canonical_query(form))
    )
