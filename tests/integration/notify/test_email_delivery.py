"""Email notices through the outbox against a real aiosmtpd server: a server that refuses (421/451,
or is not there at all) gets the notice again later with backoff; a 5xx refusal fails it for good;
what arrives is the rendered template, subject and body."""

from __future__ import annotations

import email
import email.policy
import time
import uuid

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from passport.accounts.models import EMAIL, Account
from passport.agreements import marketing
from passport.notify import outbox
from passport.notify.models import OutboxNotice
from passport.senders.smtp import SmtpEmail
from passport_testing import bearer, deliver_notices, free_port, register_account


class FlakyInbox:
    """Refuses the first ``refusals`` messages with ``reply``, then accepts and keeps them."""

    def __init__(self, only_to: str, refusals: int, reply: str = "451 4.3.0 Mail server busy, try again later"):
        self.only_to, self.refusals, self.reply = only_to, refusals, reply
        self.received: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.only_to not in envelope.rcpt_tos:  # notices left due by earlier tests: accepted, not kept
            return "250 OK"
        if self.refusals:
            self.refusals -= 1
            return self.reply
        self.received.append(email.message_from_bytes(envelope.original_content or envelope.content,
                                                      policy=email.policy.default))
        return "250 Message accepted for delivery"


def start(handler, port: int | None = None) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=port or free_port())
    controller.start()
    return controller


def smtp(port: int) -> SmtpEmail:
    return SmtpEmail(host="127.0.0.1", port=port, security="none", sender="奥集能 <no-reply@passport.example>",
                     timeout=5.0)


@pytest.fixture()
def with_email(client, rt):
    """An account with a verified email address (set directly; binding has its own tests)."""
    deliver_notices(rt)
    done = register_account(client, rt)
    address = f"notice-{uuid.uuid4().hex[:10]}@example.com"
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == done["account"]["id"]).values(
            email_enc=rt.keys.cipher.encrypt(address, EMAIL, done["account"]["id"]),
            email_bidx=rt.keys.blind_index("email", address)))
    return done | {"email": address}


def email_row(rt, account_id: str) -> OutboxNotice:
    with rt.db.read() as db:
        return db.scalars(select(OutboxNotice).where(OutboxNotice.account_id == account_id,
                                                     OutboxNotice.channel == "email")).one()


def queue(rt, account_id: str) -> None:
    with rt.db.write() as db:
        outbox.notify_account(rt, db, account_id=account_id, template="password_changed",
                               params={"time": "2026-11-29 15:20"}, channels=("inbox", "email"))


def test_delivery_is_retried_after_the_smtp_server_refuses(rt, with_email, monkeypatch):
    handler = FlakyInbox(with_email["email"], refusals=1)
    server = start(handler)
    try:
        monkeypatch.setattr(rt, "email", smtp(server.port))
        account_id = with_email["account"]["id"]
        queue(rt, account_id)
        deliver_notices(rt)
        row = email_row(rt, account_id)
        assert row.status == "pending" and row.attempts == 1 and "SMTP 451" in row.last_error
        assert with_email["email"] not in row.last_error  # recipients are masked in the error
        assert handler.received == []
        assert deliver_notices(rt) == 0  # backoff: not due yet
        rt.clock.advance(seconds=rt.settings.notice_retry_base_seconds + 1)
        deliver_notices(rt)
        row = email_row(rt, account_id)
        assert row.status == "sent" and row.attempts == 2 and row.provider == "smtp"
        assert row.provider_message_id.startswith("<") and row.sent_at is not None
        [mail] = handler.received
        assert mail["To"] == with_email["email"] and mail["Subject"] == "密码已修改"
        assert "2026-11-29 15:20" in mail.get_content() and "/account-stolen" in mail.get_content()
    finally:
        server.stop()


def test_delivery_is_retried_when_the_server_is_down_then_comes_up(rt, with_email, monkeypatch):
    port = free_port()
    monkeypatch.setattr(rt, "email", smtp(port))
    account_id = with_email["account"]["id"]
    queue(rt, account_id)
    deliver_notices(rt)  # nothing listens: connection refused
    row = email_row(rt, account_id)
    assert row.status == "pending" and "unreachable" in row.last_error
    handler = FlakyInbox(with_email["email"], refusals=0)
    server = start(handler, port)
    try:
        rt.clock.advance(seconds=rt.settings.notice_retry_base_seconds + 1)
        deliver_notices(rt)
        deadline = time.monotonic() + 5
        while not handler.received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(handler.received) == 1 and email_row(rt, account_id).status == "sent"
    finally:
        server.stop()


def test_a_permanent_refusal_is_not_retried(rt, with_email, monkeypatch):
    handler = FlakyInbox(with_email["email"], refusals=5, reply="554 5.7.1 Message rejected")
    server = start(handler)
    try:
        monkeypatch.setattr(rt, "email", smtp(server.port))
        queue(rt, with_email["account"]["id"])
        deliver_notices(rt)
        row = email_row(rt, with_email["account"]["id"])
        assert row.status == "failed" and row.attempts == 1 and "SMTP 554" in row.last_error
        assert handler.refusals == 4  # asked once
    finally:
        server.stop()


def test_marketing_email_carries_a_one_click_unsubscribe(client, rt, with_email, monkeypatch):
    handler = FlakyInbox(with_email["email"], refusals=0)
    server = start(handler)
    try:
        monkeypatch.setattr(rt, "email", smtp(server.port))
        token = with_email["session"]["token"]
        client.put("/api/v1/me/notification-preferences", headers=bearer(token),
                   json={"marketing": True})
        with rt.db.write() as db:
            outbox.notify_account(rt, db, account_id=with_email["account"]["id"], template="notice_message",
                                   params={"title": "新功能", "text": "欢迎体验"}, channels=("email",),
                                   category="marketing")
        deliver_notices(rt)
        [mail] = handler.received
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = mail["List-Unsubscribe"].strip("<>")
        assert "/notices/unsubscribe/one-click?token=" in url and "/notices/unsubscribe?token=" in mail.get_content()
    finally:
        server.stop()
    path = url.split("://", 1)[1].split("/", 1)[1]
    forged = client.post("/" + path[:-1] + ("0" if path[-1] != "0" else "1"), content=b"List-Unsubscribe=One-Click",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert forged.status_code == 400
    done = client.post("/" + path, content=b"List-Unsubscribe=One-Click",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200
    assert marketing.preferences(rt, with_email["account"]["id"])["marketing"] is False
