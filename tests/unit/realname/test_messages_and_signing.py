"""Per-part error messages all have Chinese text; the provider's HMAC signing; provider selection."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from passport.realname import organizations, pages, person
from passport.realname.providers import (
    DevProvider,
    HttpProvider,
    ManualProvider,
    ProviderUnavailable,
    make_provider,
    sign,
    signed_headers,
    verify_signature,
)
from passport.settings import Settings
from passport.web.i18n import catalog


@pytest.mark.parametrize("messages", [person.ID_MESSAGES, organizations.USCC_MESSAGES, person.NAME_MESSAGES,
                                      pages.DONE_NOTICES])
def test_every_part_message_has_a_chinese_translation(messages):
    chinese = catalog("zh-CN")
    missing = [m for m in messages.values() if not chinese.get(m)]
    assert missing == []


def test_id_and_uscc_messages_cover_every_part_the_validators_name():
    assert set(person.ID_MESSAGES) == {"length", "format", "region", "date", "sequence", "check"}
    assert set(organizations.USCC_MESSAGES) == {"length", "charset", "region", "check"}


def test_the_signature_is_hmac_sha256_over_method_path_time_nonce_and_body_digest():
    body = b'{"name":"x"}'
    expected = hmac.new(b"k", f"POST\n/v1/check\n1700000000\nabc\n{hashlib.sha256(body).hexdigest()}".encode(),
                        hashlib.sha256).hexdigest()
    assert sign(b"k", "post", "/v1/check", "1700000000", "abc", body) == expected


def test_signed_headers_verify_and_any_change_breaks_them():
    body = b'{"request_id":"1"}'
    headers = {k.lower(): v for k, v in signed_headers(b"secret", "app", "POST", "/p", body, 1_700_000_000).items()}
    assert verify_signature(b"secret", "POST", "/p", headers, body, 1_700_000_000)
    assert not verify_signature(b"other", "POST", "/p", headers, body, 1_700_000_000)
    assert not verify_signature(b"secret", "POST", "/q", headers, body, 1_700_000_000)
    assert not verify_signature(b"secret", "POST", "/p", headers, body + b" ", 1_700_000_000)
    assert not verify_signature(b"secret", "POST", "/p", headers, body, 1_700_000_000 + 301)  # replayed later
    assert not verify_signature(b"secret", "POST", "/p", headers | {"x-timestamp": "soon"}, body, 1_700_000_000)


def test_the_provider_follows_the_settings(tmp_path):
    settings = Settings(env="test", data_dir=tmp_path)
    assert isinstance(make_provider(settings), ManualProvider)
    settings.realname_provider = "dev"
    assert isinstance(make_provider(settings), DevProvider)
    settings.env = "prod"  # even if the settings check were bypassed
    with pytest.raises(ProviderUnavailable):
        make_provider(settings)
    settings.realname_provider = "http"
    with pytest.raises(ProviderUnavailable):
        make_provider(settings)
    settings.realname_http_url, settings.realname_http_secret = "https://id.example.cn/v1/check", "s3cret"
    provider = make_provider(settings)
    assert isinstance(provider, HttpProvider) and provider.path == "/v1/check"


def test_prod_refuses_an_http_provider_without_https_or_secret():
    base = dict(env="prod", database_url="postgresql://x/y", encryption_keys="k", blind_index_key="k",
                secret_key="k", audit_keys="k", sms_backend="aliyun", email_backend="smtp",
                base_url="https://p.example.cn")
    with pytest.raises(ValueError, match="PASSPORT_REALNAME_HTTP_URL"):
        Settings(**base, realname_provider="http", realname_http_url="http://id.example.cn", realname_http_secret="s")
    assert Settings(**base, realname_provider="http", realname_http_url="https://id.example.cn",
                    realname_http_secret="s").realname_provider == "http"
    assert Settings(**base).realname_provider == "manual"
