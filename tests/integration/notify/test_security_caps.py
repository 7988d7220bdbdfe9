"""Security notices are capped per account and channel (issue 15): wrong passwords from anyone lock
the account again and again, but the owner's phone gets at most one lock SMS an hour and half the
day's cap; every notice still reaches the inbox, the repeated ones as one unread item."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

from sqlalchemy import select

from passport.notify import outbox
from passport.notify.models import InboxMessage, OutboxNotice
from passport_testing import login, register_account


def sms_rows(rt, account_id: str) -> list[OutboxNotice]:
    with rt.db.read() as db:
        return list(db.scalars(select(OutboxNotice).where(OutboxNotice.account_id == account_id,
                                                          OutboxNotice.channel == "sms")
                               .order_by(OutboxNotice.id)))


def inbox_rows(rt, account_id: str) -> list[InboxMessage]:
    with rt.db.read() as db:
        return list(db.scalars(select(InboxMessage).where(InboxMessage.account_id == account_id)))


def lock_out(client, phone: str, failures: int) -> None:
    for _ in range(failures):
        login(client, phone, "Wrong-password-1", status=401)


def test_a_lock_flood_sends_no_more_sms_than_the_cap(client, rt):
    account = register_account(client, rt)
    failures = rt.settings.login_max_failures
    rounds = 40  # ten hours of locking the account again as soon as the lock ends
    for _ in range(rounds):
        lock_out(client, account["phone"], failures)
        rt.clock.advance(minutes=rt.settings.login_lock_minutes + 1)
    sent = [row for row in sms_rows(rt, account["account"]["id"]) if row.template in outbox.FLOODABLE]
    # At most one an hour: 16 minutes apart, a fourth of the locks at most.
    assert 1 <= len(sent) <= rounds // 3
    times = [row.created_at for row in sent]
    assert all(later - earlier >= timedelta(hours=1) for earlier, later in zip(times, times[1:], strict=False))
    # Another day of it: never more than half the day's cap in any 24 hours.
    for _ in range(rounds):
        lock_out(client, account["phone"], failures)
        rt.clock.advance(minutes=rt.settings.login_lock_minutes + 1)
    sent = [row.created_at for row in sms_rows(rt, account["account"]["id"]) if row.template in outbox.FLOODABLE]
    for start in sent:
        in_day = [t for t in sent if start <= t < start + timedelta(days=1)]
        assert len(in_day) <= rt.settings.security_sms_per_day // 2
    # The inbox has one unread item that counts them all.
    locks = [row for row in inbox_rows(rt, account["account"]["id"]) if row.template.startswith("notice_locked")]
    assert len(locks) == 1 and locks[0].template == "notice_locked_repeated"
    assert json.loads(locks[0].params)["count"] == str(2 * rounds)


def test_a_lock_flood_leaves_room_for_the_notices_only_a_credential_causes(client, rt):
    account = register_account(client, rt)
    for _ in range(30):
        lock_out(client, account["phone"], rt.settings.login_max_failures)
        rt.clock.advance(minutes=61)
    with rt.db.write() as db:
        outbox.notify_account(rt, db, account_id=account["account"]["id"], template="password_changed",
                              params={"time": "t"})
    assert sms_rows(rt, account["account"]["id"])[-1].template == "password_changed"


def test_security_sms_per_hour_and_per_day(client, rt):
    account = register_account(client, rt)
    per_hour, per_day = rt.settings.security_sms_per_hour, rt.settings.security_sms_per_day
    for _ in range(3 * per_hour):
        with rt.db.write() as db:
            outbox.notify_account(rt, db, account_id=account["account"]["id"], template="password_changed",
                                  params={"time": "t"})
    assert len(sms_rows(rt, account["account"]["id"])) == per_hour
    for _ in range(per_hour):  # notices that are not about security are not capped
        with rt.db.write() as db:
            outbox.notify_account(rt, db, account_id=account["account"]["id"], template="cancellation_withdrawn",
                                  params={"time": "t"})
    assert len(sms_rows(rt, account["account"]["id"])) == 2 * per_hour
    for _ in range(24):
        rt.clock.advance(minutes=30)
        for _ in range(per_hour):
            with rt.db.write() as db:
                outbox.notify_account(rt, db, account_id=account["account"]["id"], template="password_changed",
                                      params={"time": "t"})
    rows = [row for row in sms_rows(rt, account["account"]["id"]) if row.template == "password_changed"]
    for row in rows:
        assert len([r for r in rows if row.created_at <= r.created_at < row.created_at + timedelta(days=1)]) <= per_day
    assert len(rows) == per_day
    # Every one of them is in the inbox all the same (not a floodable kind: one item each).
    assert len([row for row in inbox_rows(rt, account["account"]["id"]) if row.template == "password_changed"]) \
        == 3 * per_hour + 24 * per_hour


def test_simultaneous_notices_cannot_pass_the_cap_together(client, rt):
    """Many security notices at once (parallel failed logins, new devices): the per-account turn
    (PostgreSQL: a transaction lock that is tried; a notice that finds it taken goes to the inbox only)
    or the serial writers (SQLite) let no more than the cap through, and the inbox has every one."""
    account = register_account(client, rt)
    account_id = account["account"]["id"]
    start = threading.Barrier(8)

    def notice() -> None:
        start.wait()
        with rt.db.write() as db:
            outbox.notify_account(rt, db, account_id=account_id, template="notice_new_device",
                                  params={"time": "t", "region": "r", "device": "d"})

    threads = [threading.Thread(target=notice) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 1 <= len(sms_rows(rt, account_id)) <= rt.settings.security_sms_per_hour
    assert len([row for row in inbox_rows(rt, account_id) if row.template == "notice_new_device"]) == 8
