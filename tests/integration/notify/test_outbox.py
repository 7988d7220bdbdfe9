"""The notice outbox: rows written in the event's transaction, delivered by the worker with
exponential backoff, failures recorded on the row and never lost; a crashed worker's claim comes back
after its lease; on PostgreSQL two workers deliver 1,000 notices with no duplicate and none lost."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from passport.accounts.models import Account
from passport.agreements import marketing
from passport.audit.service import Origin
from passport.notify import export as notify_export
from passport.notify import outbox
from passport.notify.models import RECIPIENT, InboxMessage, OutboxNotice
from passport.senders.sms import SendResult, SmsError
from passport_testing import deliver_notices, outbox_messages, register_account


class CountingSms:
    """A fake SMS provider that keeps what it is given, or fails as told."""

    name = "counting"

    def __init__(self, fail_with: Exception | None = None, failures: int = 0, only_to: str | None = None) -> None:
        self.sent: list = []
        self.fail_with, self.failures, self.only_to = fail_with, failures, only_to
        self.lock = threading.Lock()

    def send(self, message, sent_at):
        with self.lock:
            # Only this test's number fails: notices left due by earlier tests go through.
            if self.failures and self.only_to in (None, message.to):
                self.failures -= 1
                raise self.fail_with
            self.sent.append(message)
            return SendResult(self.name, f"m-{len(self.sent)}")


@pytest.fixture()
def account(client, rt):
    deliver_notices(rt)  # nothing queued by earlier tests reaches this test's fake provider
    return register_account(client, rt)


def rows_of(rt, account_id: str) -> list[OutboxNotice]:
    with rt.db.read() as db:
        return list(db.scalars(select(OutboxNotice).where(OutboxNotice.account_id == account_id)
                               .order_by(OutboxNotice.id)))


def queue(rt, account_id: str, template: str = "notice_locked", params=None, **kwargs) -> None:
    with rt.db.write() as db:
        outbox.notify_account(rt, db, account_id=account_id, template=template,
                               params={"minutes": 15} if params is None else params, **kwargs)


def test_notice_is_queued_in_the_callers_transaction(rt, account):
    account_id = account["account"]["id"]
    with pytest.raises(RuntimeError), rt.db.write() as db:
        outbox.notify_account(rt, db, account_id=account_id, template="notice_locked", params={"minutes": 15})
        raise RuntimeError("the event rolls back")
    assert rows_of(rt, account_id) == []
    queue(rt, account_id)
    [row] = rows_of(rt, account_id)
    assert row.status == "pending" and row.channel == "sms" and row.attempts == 0
    with rt.db.read() as db:
        assert db.scalar(select(InboxMessage.template).where(InboxMessage.account_id == account_id)) == "notice_locked"


def test_recipient_is_stored_encrypted(rt, account):
    queue(rt, account["account"]["id"])
    [row] = rows_of(rt, account["account"]["id"])
    assert account["phone"].encode() not in row.recipient_enc
    assert rt.keys.cipher.decrypt(row.recipient_enc, RECIPIENT["sms"], row.id) == "+86" + account["phone"]


def test_worker_delivers_and_records_the_send(rt, account, monkeypatch):
    sms = CountingSms()
    monkeypatch.setattr(rt, "sms", sms)
    queue(rt, account["account"]["id"])
    assert deliver_notices(rt) >= 1
    [message] = [m for m in sms.sent if m.to == "+86" + account["phone"]]
    assert message.purpose == "notice_locked" and message.text.startswith("【奥集能】") and "15 分钟" in message.text
    [row] = rows_of(rt, account["account"]["id"])
    assert row.status == "sent" and row.attempts == 1 and row.provider == "counting"
    assert row.provider_message_id and row.sent_at is not None and row.last_error is None
    assert row.recipient_enc is None  # not needed once sent, so not kept, even encrypted
    assert deliver_notices(rt) == 0  # sent once, never again


def test_provider_errors_are_retried_with_exponential_backoff(rt, account, monkeypatch):
    sms = CountingSms(SmsError("aliyun SMS refused: Throttling.User", retryable=True), failures=3,
                      only_to="+86" + account["phone"])
    monkeypatch.setattr(rt, "sms", sms)
    queue(rt, account["account"]["id"])
    base = rt.settings.notice_retry_base_seconds
    waits = []
    for _ in range(3):
        before = rt.clock.now()
        deliver_notices(rt)
        [row] = rows_of(rt, account["account"]["id"])
        assert row.status == "pending" and "Throttling.User" in row.last_error and row.recipient_enc
        waits.append((row.next_attempt_at - before).total_seconds())
        assert deliver_notices(rt) == 0  # not due yet
        rt.clock.advance(seconds=waits[-1] + 1)
    assert [round(w / base) for w in waits] == [1, 2, 4]
    deliver_notices(rt)
    [row] = rows_of(rt, account["account"]["id"])
    assert row.status == "sent" and row.attempts == 4 and row.last_error is None


def test_a_final_provider_error_fails_at_once_and_stays_visible(rt, account, monkeypatch):
    monkeypatch.setattr(rt, "sms", CountingSms(SmsError("isv.MOBILE_NUMBER_ILLEGAL", retryable=False), failures=1,
                                               only_to="+86" + account["phone"]))
    queue(rt, account["account"]["id"])
    deliver_notices(rt)
    [row] = rows_of(rt, account["account"]["id"])
    assert row.status == "failed" and row.attempts == 1 and "MOBILE_NUMBER_ILLEGAL" in row.last_error
    failed = [n for n in outbox.list_outbox(rt, status="failed") if n["id"] == row.id]
    assert failed and failed[0]["to"] == account["phone"][:3] + "****" + account["phone"][-4:]
    # An operator fixes the cause and sends failed notices again.
    monkeypatch.setattr(rt, "sms", CountingSms())
    assert outbox.retry_failed(rt, Origin(channel="cli")) >= 1
    deliver_notices(rt)
    assert rows_of(rt, account["account"]["id"])[0].status == "sent"


def test_retries_stop_after_the_maximum_attempts(rt, account, monkeypatch):
    monkeypatch.setattr(rt.settings, "notice_max_attempts", 3)
    monkeypatch.setattr(rt, "sms", CountingSms(ConnectionError("provider down"), failures=99,
                                               only_to="+86" + account["phone"]))
    queue(rt, account["account"]["id"])
    for _ in range(5):
        deliver_notices(rt)
        rt.clock.advance(seconds=rt.settings.notice_retry_cap_seconds + 1)
    [row] = rows_of(rt, account["account"]["id"])
    assert row.status == "failed" and row.attempts == 3 and "ConnectionError: provider down" in row.last_error


def test_unknown_template_or_missing_parameter_fails_at_queue_time(rt, account):
    account_id = account["account"]["id"]
    with pytest.raises(outbox.TemplateError):
        queue(rt, account_id, template="no_such_notice", params={})
    with pytest.raises(outbox.TemplateError, match="minutes"):
        queue(rt, account_id, params={})
    with pytest.raises(ValueError, match="channels"):
        queue(rt, account_id, channels=("pigeon",))
    assert rows_of(rt, account_id) == []


def test_a_template_gone_at_delivery_is_recorded_and_retried(rt, account, monkeypatch):
    monkeypatch.setattr(rt, "sms", CountingSms())
    queue(rt, account["account"]["id"])
    with rt.db.write() as db:
        db.execute(update(OutboxNotice).where(OutboxNotice.account_id == account["account"]["id"])
                   .values(template="removed_template"))
    deliver_notices(rt)
    [row] = rows_of(rt, account["account"]["id"])
    assert row.status == "pending" and "unknown notice template 'removed_template'" in row.last_error
    with rt.db.write() as db:  # the template is back (a deploy): the next attempt sends it
        db.execute(update(OutboxNotice).where(OutboxNotice.id == row.id).values(template="notice_locked"))
    rt.clock.advance(seconds=rt.settings.notice_retry_base_seconds + 1)
    deliver_notices(rt)
    assert rows_of(rt, account["account"]["id"])[0].status == "sent"


def test_missing_recipient_is_recorded_and_found_again_later(rt, account, monkeypatch):
    sms = CountingSms()
    monkeypatch.setattr(rt, "sms", sms)
    account_id = account["account"]["id"]
    with rt.db.write() as db:
        phone_enc = db.get(Account, account_id).phone_enc
        db.execute(update(Account).where(Account.id == account_id).values(phone_enc=None))
    queue(rt, account_id)
    deliver_notices(rt)
    [row] = rows_of(rt, account_id)
    assert row.status == "pending" and row.last_error == "missing_recipient" and row.attempts == 1
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == account_id).values(phone_enc=phone_enc))
    rt.clock.advance(seconds=rt.settings.notice_retry_base_seconds + 1)
    deliver_notices(rt)
    assert rows_of(rt, account_id)[0].status == "sent"
    assert [m.to for m in sms.sent if m.to == "+86" + account["phone"]]


def test_email_channel_needs_a_verified_address(rt, account):
    queue(rt, account["account"]["id"], channels=("email",))
    assert rows_of(rt, account["account"]["id"]) == []


def test_a_crashed_workers_claim_comes_back_after_the_lease(rt, account, monkeypatch):
    sms = CountingSms()
    monkeypatch.setattr(rt, "sms", sms)
    queue(rt, account["account"]["id"])
    [stale] = [job for job in outbox._claim(rt, 100) if job.account_id == account["account"]["id"]]  # then "crashes"
    assert deliver_notices(rt) == 0  # leased: nobody else sends it
    rt.clock.advance(seconds=rt.settings.notice_lease_seconds + 1)
    deliver_notices(rt)
    [row] = rows_of(rt, account["account"]["id"])
    assert row.status == "sent" and row.attempts == 2
    # The crashed worker waking up late cannot overwrite the outcome it no longer owns.
    outbox._record(rt, [outbox._failure(rt, stale, RuntimeError("late"))])
    assert rows_of(rt, account["account"]["id"])[0].status == "sent"


def test_dev_outbox_gets_notices_in_chinese(rt, account):
    queue(rt, account["account"]["id"])
    deliver_notices(rt)
    [line] = [m for m in outbox_messages(rt) if m["to"] == "+86" + account["phone"] and m["purpose"] == "notice_locked"]
    assert line["code"] is None and "密码登录已被锁定 15 分钟" in line["text"]


def test_export_masks_and_erase_deletes(rt, account):
    account_id = account["account"]["id"]
    queue(rt, account_id)
    with rt.db.write() as db:  # one already delivered: erased with the account
        db.execute(update(OutboxNotice).where(OutboxNotice.account_id == account_id).values(status="sent"))
    # A notice other than a second lock (that one is capped and coalesced, issue 15), still on its way:
    queue(rt, account_id, "password_changed", {"time": "2026-01-02 03:04"})  # kept for the worker (issue 16)
    with rt.db.read() as db:
        exported = notify_export.export_account(rt, db, account_id)
    assert "密码登录已锁定" in [message["title"] for message in exported["messages"]]
    assert exported["notices"][0]["to"] == account["phone"][:3] + "****" + account["phone"][-4:]
    assert account["phone"] not in json.dumps(exported)
    with rt.db.write() as db:
        notify_export.erase_account(rt, db, account_id)
    assert [(r.channel, r.status) for r in rows_of(rt, account_id)] == [("sms", "pending")]
    with rt.db.read() as db:
        assert db.scalar(select(InboxMessage.id).where(InboxMessage.account_id == account_id)) is None


def test_two_workers_on_postgresql_deliver_each_notice_exactly_once(rt, account):
    if rt.db.is_sqlite:
        pytest.skip("FOR UPDATE SKIP LOCKED is PostgreSQL's; SQLite serialises writers (BEGIN IMMEDIATE)")
    from passport.runtime import build_runtime

    account_id = account["account"]["id"]
    total = 1000
    with rt.db.write() as db:
        for i in range(total):
            outbox.notify_account(rt, db, account_id=account_id, template="notice_message",
                                   params={"title": "bulk", "text": f"n{i}"}, channels=("sms",))
    workers = [build_runtime(rt.settings, pool_size=2) for _ in range(2)]
    senders = [CountingSms(), CountingSms()]
    for worker, sender in zip(workers, senders, strict=True):
        worker.sms, worker.clock = sender, rt.clock

    def run(worker) -> None:
        while outbox.deliver_due(worker, limit=25):
            pass

    threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for worker in workers:
        worker.close()
    texts = [m.text for sender in senders for m in sender.sent if m.to == "+86" + account["phone"]]
    assert len(texts) == total, "a notice was sent twice or not at all"
    assert sorted(texts) == sorted(f"【奥集能】n{i}" for i in range(total))
    assert all(sender.sent for sender in senders), "both workers took part"
    statuses = {row.status for row in rows_of(rt, account_id)}
    assert statuses == {"sent"}


def test_old_sent_notices_are_swept(rt, account, monkeypatch):
    from passport.worker import sweep

    monkeypatch.setattr(rt, "sms", CountingSms())
    queue(rt, account["account"]["id"])
    deliver_notices(rt)
    with rt.db.write() as db:
        db.execute(update(OutboxNotice).where(OutboxNotice.account_id == account["account"]["id"])
                   .values(created_at=rt.clock.now() - timedelta(days=rt.settings.notice_retention_days + 1)))
    queue(rt, account["account"]["id"])  # a fresh one stays
    assert sweep(rt)["notices"] >= 1
    assert [row.status for row in rows_of(rt, account["account"]["id"])] == ["pending"]


class SlowSms(CountingSms):
    """Each send takes the whole send timeout (by the test clock); while the first worker is busy a
    second worker runs deliver_due after every send, as a concurrent worker would."""

    def __init__(self, rt, seconds: float) -> None:
        super().__init__()
        self.rt, self.seconds, self.busy = rt, seconds, False

    def send(self, message, sent_at):
        result = super().send(message, sent_at)
        if self.busy:  # the second worker's own sends are fast
            return result
        self.rt.clock.advance(seconds=self.seconds)
        self.busy = True
        try:
            outbox.deliver_due(self.rt)
        finally:
            self.busy = False
        return result


def test_a_slow_provider_never_gets_a_notice_twice(rt, account, monkeypatch):
    monkeypatch.setattr(rt.settings, "notice_lease_seconds", 120)
    monkeypatch.setattr(rt.settings, "sms_timeout_seconds", 10.0)
    monkeypatch.setattr(rt.settings, "smtp_timeout_seconds", 10.0)
    sms = SlowSms(rt, 10.0)
    monkeypatch.setattr(rt, "sms", sms)
    account_id, total = account["account"]["id"], 15
    with rt.db.write() as db:
        for i in range(total):
            outbox.notify_account(rt, db, account_id=account_id, template="notice_message",
                                   params={"title": "slow", "text": f"s{i}"}, channels=("sms",))
    assert outbox._claim_size(rt) == 12  # what one 120 s lease covers at 10 s a send
    outbox.deliver_due(rt)
    rt.clock.advance(seconds=rt.settings.notice_lease_seconds + 1)  # a skipped row comes back after its lease
    deliver_notices(rt)
    texts = [m.text for m in sms.sent if m.to == "+86" + account["phone"]]
    assert sorted(texts) == sorted(f"【奥集能】s{i}" for i in range(total)), "each notice exactly once"
    assert {row.status for row in rows_of(rt, account_id)} == {"sent"}


def grant_marketing(rt, account_id: str, granted: bool = True) -> None:
    marketing.set_marketing(rt, Origin(channel="cli"), account_id, granted)


def test_withdrawing_consent_cancels_queued_marketing(rt, account, monkeypatch):
    from passport.audit.models import AuditEvent

    sms = CountingSms()
    monkeypatch.setattr(rt, "sms", sms)
    account_id = account["account"]["id"]
    grant_marketing(rt, account_id)
    queue(rt, account_id, template="notice_message", params={"title": "促销", "text": "新品"}, category="marketing")
    queue(rt, account_id)  # a service notice is not affected
    grant_marketing(rt, account_id, False)
    marketing_row, service_row = rows_of(rt, account_id)
    assert marketing_row.status == "failed" and marketing_row.last_error == "withdrawn"
    assert marketing_row.recipient_enc is None and service_row.status == "pending"
    with rt.db.read() as db:
        assert db.scalar(select(AuditEvent.details).where(AuditEvent.action == "notices.withdrawn",
                                                          AuditEvent.subject_id == account_id)) is not None
    deliver_notices(rt)
    assert [m.purpose for m in sms.sent if m.to == "+86" + account["phone"]] == ["notice_locked"]
    # An operator's "send failed notices again" does not bring it back either.
    outbox.retry_failed(rt, Origin(channel="cli"))
    deliver_notices(rt)
    assert [m.purpose for m in sms.sent if m.to == "+86" + account["phone"]] == ["notice_locked"]
    assert rows_of(rt, account_id)[0].last_error == "withdrawn"


def test_the_worker_checks_marketing_consent_again_before_sending(rt, account, monkeypatch):
    """Consent withdrawn elsewhere (the consent ledger directly): the worker still never sends it."""
    from passport.agreements import service as agreements

    sms = CountingSms()
    monkeypatch.setattr(rt, "sms", sms)
    account_id = account["account"]["id"]
    grant_marketing(rt, account_id)
    queue(rt, account_id, template="notice_message", params={"title": "促销", "text": "新品"}, category="marketing")
    with rt.db.write() as db:
        agreements.set_purpose(rt, db, account_id, "marketing", False, Origin(channel="cli"))
    deliver_notices(rt)
    [row] = rows_of(rt, account_id)
    assert row.status == "failed" and row.last_error == "withdrawn" and row.recipient_enc is None
    assert [m for m in sms.sent if m.to == "+86" + account["phone"]] == []


def test_a_cancelled_accounts_failed_notice_keeps_no_recipient(rt, account, monkeypatch):
    account_id = account["account"]["id"]
    monkeypatch.setattr(rt, "sms", CountingSms(SmsError("isv.MOBILE_NUMBER_ILLEGAL", retryable=False), failures=2,
                                               only_to="+86" + account["phone"]))
    queue(rt, account_id)
    deliver_notices(rt)
    [row] = rows_of(rt, account_id)
    assert row.status == "failed" and row.recipient_enc is not None  # a live account's: kept for a retry
    with rt.db.write() as db:
        db.execute(delete(OutboxNotice).where(OutboxNotice.account_id == account_id))
    queue(rt, account_id)  # the last notice, then the account is cancelled (a tombstone) before it goes out
    with rt.db.write() as db:
        db.execute(update(Account).where(Account.id == account_id).values(status="cancelled"))
    deliver_notices(rt)
    [row] = rows_of(rt, account_id)
    assert row.status == "failed" and row.recipient_enc is None
