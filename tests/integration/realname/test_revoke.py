"""Withdrawing a verification (a stolen or disputed ID number): by a reviewer through the admin API and
by an operator with ``passport realname revoke``; the ID number is free again. Staff find verified
accounts by ID number through the blind index."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from passport.cli import app as cli_app
from passport_testing import make_staff, register_account

from .conftest import auth, verified_person

ADMIN = "/api/v1/admin"


@pytest.fixture()
def cli(rt, monkeypatch):
    monkeypatch.setenv("PASSPORT_ENV", "test")
    monkeypatch.setenv("PASSPORT_DATABASE_URL", rt.settings.resolved_database_url)
    monkeypatch.setenv("PASSPORT_DATA_DIR", str(rt.settings.data_dir))
    if rt.settings.redis_url:
        monkeypatch.setenv("PASSPORT_REDIS_URL", rt.settings.redis_url)
    monkeypatch.setattr("passport.logs.configure_logging", lambda *args, **kwargs: None)
    return lambda *args: CliRunner().invoke(cli_app, list(args))


def test_staff_find_the_account_by_id_number_and_a_reviewer_revokes_it(client, rt, provider):
    holder = verified_person(client, rt, provider)
    reviewer = make_staff(rt, "reviewer")
    found = client.get(f"{ADMIN}/accounts", params={"id_number": holder["id_number"].lower()},
                       headers=reviewer["headers"]).json()
    assert [a["id"] for a in found["items"]] == [holder["account"]["id"]]
    masked = f"{holder['id_number'][:4]}{'*' * 10}{holder['id_number'][-4:]}"
    assert found["items"][0]["real_name"] == {"status": "verified", "name": "张*三", "id_number": masked}
    client.cookies.set("passport_admin", reviewer["token"])
    detail = client.get(f"/admin/accounts/{holder['account']['id']}").text
    assert 'data-status="verified"' in detail and masked in detail and holder["id_number"] not in detail
    client.cookies.delete("passport_admin")
    url = f"{ADMIN}/accounts/{holder['account']['id']}/real-name/revoke"
    short = client.post(url, json={"reason": "冒用"}, headers=reviewer["headers"])
    assert short.status_code == 422 and short.json()["code"] == "reason_required"
    assert client.post(url, json={"reason": "身份证号被他人冒用"}, headers=make_staff(rt, "auditor")["headers"]) \
        .status_code == 403
    done = client.post(url, json={"reason": "身份证号被他人冒用，本人已申诉"}, headers=reviewer["headers"])
    assert done.status_code == 200 and done.json()["status"] == "none"
    assert client.get("/api/v1/me", headers=auth(holder)).json()["real_name"]["status"] == "none"
    again = client.post(url, json={"reason": "身份证号被他人冒用，本人已申诉"}, headers=reviewer["headers"])
    assert again.status_code == 409 and again.json()["code"] == "not_verified"
    owner = register_account(client, rt)
    rebound = client.post("/api/v1/me/real-name", json={"name": "张小三", "id_number": holder["id_number"]},
                          headers=auth(owner))
    assert rebound.json()["status"] == "verified"


def test_operators_revoke_from_the_command_line(cli, client, rt, provider):
    holder = verified_person(client, rt, provider)
    done = cli("realname", "revoke", holder["account"]["id"], "--reason", "公安机关通报身份冒用")
    assert done.exit_code == 0, done.output
    assert "none" in done.output
    assert client.get("/api/v1/me/real-name", headers=auth(holder)).json()["status"] == "none"
    refused = cli("realname", "revoke", holder["account"]["id"], "--reason", "公安机关通报身份冒用")
    assert refused.exit_code == 1 and "not_verified" in refused.output
