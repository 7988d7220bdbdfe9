"""New-device login notices (issue 15): a sign-in from a device the account has not used before is
told to its owner (inbox, SMS within the caps, audit), with region, time and the freeze link; the
device the account was registered on, and the account's first device, are not news."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from passport.audit.models import AuditEvent
from passport.notify.models import InboxMessage, OutboxNotice
from passport.sessions.models import KnownDevice
from passport_testing import (
    STRONG_PASSWORD,
    bearer,
    last_code,
    login,
    login_form,
    login_with_code,
    register_account,
)

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/18.1 Mobile/15E148 Safari/604.1")


@pytest.fixture()
def other(app):
    """Another browser: its own cookie jar, so its own device cookie."""
    with TestClient(app) as second:
        yield second


def notices(rt, account_id: str) -> tuple[list[InboxMessage], list[OutboxNotice]]:
    with rt.db.read() as db:
        inbox = list(db.scalars(select(InboxMessage).where(InboxMessage.account_id == account_id,
                                                           InboxMessage.template == "notice_new_device")))
        sms = list(db.scalars(select(OutboxNotice).where(OutboxNotice.account_id == account_id,
                                                         OutboxNotice.template == "notice_new_device")))
    return inbox, sms


def events(rt, account_id: str) -> list[AuditEvent]:
    with rt.db.read() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.subject_id == account_id,
                                                        AuditEvent.action == "login.new_device")
                                .order_by(AuditEvent.seq)))


def test_the_device_of_registration_is_no_news_another_one_is(client, other, rt):
    account = register_account(client, rt)
    account_id = account["account"]["id"]
    login(client, account["phone"], status=201)
    assert notices(rt, account_id) == ([], [])
    login(other, account["phone"], status=201, **{"User-Agent": FIREFOX})
    inbox, sms = notices(rt, account_id)
    assert len(inbox) == 1 and len(sms) == 1
    params = json.loads(sms[0].params)
    assert params["device"] == "Firefox on Windows" and params["time"] and "region" in params
    assert other.cookies.get("passport_device")
    [event] = events(rt, account_id)
    assert json.loads(event.details)["notified"] is True
    # The SMS names the freeze path, which works without logging in.
    token = login(client, account["phone"]).json()["token"]
    answer = client.get("/api/v1/me/messages?lang=en", headers=bearer(token))
    text = next(item["text"] for item in answer.json()["items"] if item["template"] == "notice_new_device")
    assert "/account-stolen" in text and "Firefox on Windows" in text
    assert other.get("/account-stolen").status_code == 200
    # The same browser again: known now.
    login(other, account["phone"], status=201, **{"User-Agent": FIREFOX})
    assert len(notices(rt, account_id)[0]) == 1


def test_only_a_keyed_hash_of_the_device_is_stored(client, rt):
    account = register_account(client, rt)
    cookie = client.cookies.get("passport_device")
    assert cookie
    with rt.db.read() as db:
        rows = list(db.scalars(select(KnownDevice).where(KnownDevice.account_id == account["account"]["id"])))
    assert len(rows) == 1 and cookie.encode() not in rows[0].device_hash and len(rows[0].device_hash) == 32


def test_the_same_cookie_from_another_kind_of_browser_is_a_new_device(client, rt):
    account = register_account(client, rt)
    login(client, account["phone"], status=201, **{"User-Agent": SAFARI})
    inbox, _ = notices(rt, account["account"]["id"])
    assert len(inbox) == 1


def test_the_first_device_of_an_account_without_any_is_not_told(client, other, rt):
    account = register_account(client, rt)
    with rt.db.write() as db:
        db.execute(KnownDevice.__table__.delete().where(KnownDevice.account_id == account["account"]["id"]))
    login(other, account["phone"], status=201)
    assert notices(rt, account["account"]["id"]) == ([], [])
    [event] = events(rt, account["account"]["id"])
    assert json.loads(event.details)["notified"] is False


def test_code_login_and_the_login_page_tell_too(client, app, rt):
    account = register_account(client, rt)
    rt.clock.advance(seconds=61)
    with TestClient(app) as by_code:
        by_code.post("/api/v1/verification-codes", json={"to": account["phone"], "purpose": "login"})
        code = last_code(rt, account["phone"], "login")
        assert login_with_code(by_code, account["phone"], code).status_code == 201
    assert len(notices(rt, account["account"]["id"])[0]) == 1
    with TestClient(app) as browser:
        assert login_form(browser, account["phone"], STRONG_PASSWORD).status_code == 303
        assert browser.cookies.get("passport_device")
    assert len(notices(rt, account["account"]["id"])[0]) == 2
