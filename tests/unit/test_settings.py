from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from passport.settings import Settings

KEY = base64.b64encode(bytes(32)).decode()
SAFE_PROD = dict(
    env="prod",
    database_url="postgresql://passport@db.internal/passport",
    encryption_keys=f"k1:{KEY}",
    blind_index_key=KEY,
    secret_key=KEY,
    audit_keys=f"a1:{KEY}",
    sms_backend="aliyun",
    email_backend="smtp",
    base_url="https://passport.example.cn",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """Settings read PASSPORT_* variables; the test suite itself sets PASSPORT_ENV=test."""
    import os

    for name in list(os.environ):
        if name.startswith("PASSPORT_"):
            monkeypatch.delenv(name)


def test_dev_accepts_the_defaults():
    settings = Settings()
    assert settings.env == "dev"
    assert settings.is_dev
    assert settings.sms_backend == "outbox"
    assert settings.resolved_database_url.startswith("sqlite:///")
    assert settings.resolved_database_url.endswith("passport.sqlite3")
    assert settings.trusted_proxies == []


def test_test_env_counts_as_dev():
    assert Settings(env="test").is_dev
    assert not Settings(**SAFE_PROD).is_dev


def test_prod_accepts_safe_settings():
    settings = Settings(**SAFE_PROD)
    assert settings.env == "prod"
    assert settings.resolved_database_url == SAFE_PROD["database_url"]


def test_prod_with_the_defaults_names_every_problem():
    with pytest.raises(ValidationError) as info:
        Settings(env="prod")
    message = str(info.value)
    for problem in ("PASSPORT_DATABASE_URL must point at PostgreSQL", "PASSPORT_ENCRYPTION_KEYS is required",
                    "PASSPORT_BLIND_INDEX_KEY is required", "PASSPORT_SECRET_KEY is required",
                    "PASSPORT_AUDIT_KEYS is required",
                    "PASSPORT_SMS_BACKEND=outbox", "PASSPORT_EMAIL_BACKEND=outbox",
                    "PASSPORT_BASE_URL must be https://"):
        assert problem in message


@pytest.mark.parametrize(("override", "problem"), [
    ({"database_url": "sqlite:////var/lib/passport/passport.sqlite3"}, "PASSPORT_DATABASE_URL"),
    ({"database_url": None}, "PASSPORT_DATABASE_URL"),
    ({"encryption_keys": None}, "PASSPORT_ENCRYPTION_KEYS is required"),
    ({"blind_index_key": ""}, "PASSPORT_BLIND_INDEX_KEY is required"),
    ({"secret_key": None}, "PASSPORT_SECRET_KEY is required"),
    ({"audit_keys": None}, "PASSPORT_AUDIT_KEYS is required"),
    ({"sms_backend": "outbox"}, "PASSPORT_SMS_BACKEND=outbox"),
    ({"email_backend": "outbox"}, "PASSPORT_EMAIL_BACKEND=outbox"),
    ({"base_url": "http://passport.example.cn"}, "PASSPORT_BASE_URL must be https://"),
])
def test_prod_refuses_each_unsafe_value(override, problem):
    with pytest.raises(ValidationError) as info:
        Settings(**(SAFE_PROD | override))
    message = str(info.value)
    assert "unsafe production settings" in message
    assert problem in message
    assert message.count("PASSPORT_") == 1


def test_prod_is_refused_when_configured_from_the_environment(monkeypatch):
    monkeypatch.setenv("PASSPORT_ENV", "prod")
    monkeypatch.setenv("PASSPORT_DATABASE_URL", "sqlite:///passport.sqlite3")
    with pytest.raises(ValidationError, match="PASSPORT_DATABASE_URL must point at PostgreSQL"):
        Settings()


def test_file_secrets_are_read_by_secret(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text(f"  {KEY}\n", encoding="utf-8")
    settings = Settings(secret_key=f"file://{path}")
    assert settings.secret_key == f"file://{path}"
    assert settings.secret("secret_key") == KEY


def test_file_secrets_work_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "keys"
    path.write_text(f"k2:{KEY},k1:{KEY}\n", encoding="utf-8")
    monkeypatch.setenv("PASSPORT_ENCRYPTION_KEYS", f"file://{path}")
    assert Settings().secret("encryption_keys") == f"k2:{KEY},k1:{KEY}"


def test_inline_and_missing_secrets_are_returned_as_given():
    settings = Settings(secret_key=KEY)
    assert settings.secret("secret_key") == KEY
    assert settings.secret("blind_index_key") is None


def test_a_missing_secret_file_is_an_error(tmp_path):
    settings = Settings(secret_key=f"file://{tmp_path / 'absent'}")
    with pytest.raises(FileNotFoundError):
        settings.secret("secret_key")


@pytest.mark.parametrize(("raw", "expected"), [
    ("10.0.0.1", ["10.0.0.1"]),
    ("10.0.0.1,10.0.0.2", ["10.0.0.1", "10.0.0.2"]),
    (" 10.0.0.1 , 192.168.0.0/16 ,", ["10.0.0.1", "192.168.0.0/16"]),
    ("", []),
])
def test_trusted_proxies_parses_a_comma_separated_string(raw, expected):
    assert Settings(trusted_proxies=raw).trusted_proxies == expected


def test_trusted_proxies_accepts_a_list():
    assert Settings(trusted_proxies=["10.0.0.1"]).trusted_proxies == ["10.0.0.1"]


def test_trusted_proxies_parses_a_comma_separated_environment_variable(monkeypatch):
    monkeypatch.setenv("PASSPORT_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2")
    assert Settings().trusted_proxies == ["10.0.0.1", "10.0.0.2"]
