"""Issue 15, what the operations endpoints show to someone with only network access: /metrics only
from PASSPORT_METRICS_ALLOW or with PASSPORT_METRICS_TOKEN, the API docs off in prod unless
PASSPORT_API_DOCS=true, /readyz without exception names, /dev/* only in dev."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from passport.app import create_app
from passport.settings import Settings
from passport_testing import make_settings

KEY = "A" * 43 + "="
PROD = dict(env="prod", database_url="postgresql://passport@db.invalid/passport", encryption_keys=f"k1:{KEY}",
            blind_index_key=KEY, secret_key=KEY, audit_keys=f"a1:{KEY}", sms_backend="aliyun", email_backend="smtp",
            base_url="https://passport.example.cn")
TOKEN = "m" * 40


def app_with(rt, tmp_path, **overrides):
    """An app with these settings over the test runtime (only the settings decide what it exposes)."""
    base = PROD if overrides.pop("prod", False) else {"env": "test"}
    return create_app(Settings(**(base | {"data_dir": tmp_path} | overrides)), runtime=rt)


def get(app, path: str, ip: str = "127.0.0.1", **headers: str):
    return TestClient(app, client=(ip, 40000)).get(path, headers=headers)


# --- /metrics ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("prod", [False, True], ids=["test", "prod"])
def test_metrics_answer_loopback_by_default_and_nobody_else(rt, tmp_path, prod):
    app = app_with(rt, tmp_path, prod=prod)
    assert get(app, "/metrics").status_code == 200
    assert "passport_http_requests_total" in get(app, "/metrics").text
    assert get(app, "/metrics", ip="::1").status_code == 200
    for outsider in ("203.0.113.7", "10.0.0.5", "testclient"):
        refused = get(app, "/metrics", ip=outsider)
        assert refused.status_code == 404, outsider
        assert "passport_http" not in refused.text


def test_metrics_from_an_allowed_network(rt, tmp_path):
    app = app_with(rt, tmp_path, prod=True, metrics_allow="10.0.0.0/8, 192.168.1.10")
    assert get(app, "/metrics", ip="10.20.30.40").status_code == 200
    assert get(app, "/metrics", ip="192.168.1.10").status_code == 200
    assert get(app, "/metrics", ip="192.168.1.11").status_code == 404
    assert get(app, "/metrics", ip="127.0.0.1").status_code == 404  # the list replaces the default


def test_metrics_with_the_bearer_token_from_anywhere(rt, tmp_path):
    secret = tmp_path / "metrics-token"
    secret.write_text(TOKEN + "\n", encoding="utf-8")
    for value in (TOKEN, f"file://{secret}"):
        app = app_with(rt, tmp_path, prod=True, metrics_token=value)
        assert get(app, "/metrics", ip="203.0.113.7", Authorization=f"Bearer {TOKEN}").status_code == 200
        for wrong in (f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN):
            assert get(app, "/metrics", ip="203.0.113.7", Authorization=wrong).status_code == 404, wrong


def test_forwarded_requests_do_not_pass_as_loopback(rt, tmp_path):
    # A reverse proxy on the same host forwards an outsider's request: its peer address is loopback.
    app = app_with(rt, tmp_path, prod=True)
    assert get(app, "/metrics", **{"X-Forwarded-For": "203.0.113.7"}).status_code == 404
    assert get(app, "/metrics", Forwarded="for=203.0.113.7").status_code == 404
    # Declared as a trusted proxy, the client behind it is what counts.
    behind = app_with(rt, tmp_path, prod=True, trusted_proxies="127.0.0.1", metrics_allow="10.0.0.0/8")
    assert get(behind, "/metrics", **{"X-Forwarded-For": "203.0.113.7"}).status_code == 404
    assert get(behind, "/metrics", **{"X-Forwarded-For": "10.1.1.1"}).status_code == 200
    # A spoofed header from an outsider talking to the service directly changes nothing.
    direct = app_with(rt, tmp_path, prod=True, metrics_allow="10.0.0.0/8")
    assert get(direct, "/metrics", ip="203.0.113.7", **{"X-Forwarded-For": "10.1.1.1"}).status_code == 404


def test_metrics_settings_are_checked_at_start():
    with pytest.raises(ValueError, match="PASSPORT_METRICS_ALLOW"):
        Settings(env="test", metrics_allow="not-a-network")


# --- API docs ---------------------------------------------------------------------------------------

def test_api_docs_are_off_in_prod_unless_enabled(rt, tmp_path):
    prod = app_with(rt, tmp_path, prod=True)
    for path in ("/api/docs", "/api/v1/openapi.json"):
        assert get(prod, path, ip="203.0.113.7").status_code == 404, path
        assert get(prod, path).status_code == 404, path
    enabled = app_with(rt, tmp_path, prod=True, api_docs=True)
    assert get(enabled, "/api/v1/openapi.json").json()["info"]["title"] == "passport"
    assert get(enabled, "/api/docs").status_code == 200
    test = app_with(rt, tmp_path)
    assert get(test, "/api/v1/openapi.json").status_code == 200
    disabled = app_with(rt, tmp_path, api_docs=False)
    assert get(disabled, "/api/docs").status_code == 404
    # The document itself is still built (``passport openapi``), whatever serves it.
    assert "/api/v1/me" in prod.openapi()["paths"]


# --- /readyz ----------------------------------------------------------------------------------------

class _BrokenDatabase(RuntimeError):
    pass


def test_readyz_names_no_exception(client, rt, monkeypatch):
    def broken(*_args, **_kwargs):
        raise _BrokenDatabase("connection to server at 10.0.0.3 failed: password authentication failed")

    monkeypatch.setattr(rt.db, "read", broken)
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "unavailable" and answer.json()["checks"]["database"] == "unavailable"
    assert "_BrokenDatabase" not in answer.text and "10.0.0.3" not in answer.text
    assert set(answer.json()["checks"].values()) <= {"ok", "unavailable"}


# --- /dev/* -----------------------------------------------------------------------------------------

def test_dev_outbox_only_in_dev(rt, tmp_path, data_dir):
    dev = create_app(make_settings(data_dir, env="dev"), runtime=rt)
    assert get(dev, "/dev/outbox").status_code == 200
    for app in (app_with(rt, tmp_path), app_with(rt, tmp_path, prod=True)):
        answer = get(app, "/dev/outbox")
        assert answer.status_code == 404
        assert "dev/outbox" not in get(app, "/login").text  # no link to it either
