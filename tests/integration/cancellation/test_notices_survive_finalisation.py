"""Issue 16: with a zero-day cooling-off the worker finalises a request before it delivers the notices
queued with it. The "cancellation requested" SMS (and any other notice on its way) is still sent after
the data is gone, to the number it was queued for; nothing of the account is needed to send it."""

from __future__ import annotations

from passport.worker import run_once
from passport_testing import outbox_messages


def sent_to(rt, phone: str, purpose: str) -> int:
    return sum(1 for m in outbox_messages(rt) if m["to"].endswith(phone[-10:]) and m["purpose"] == purpose)


def test_notices_queued_before_finalisation_are_delivered(rt, make_member, zero_day):
    members = [make_member() for _ in range(3)]
    for member in members:
        assert member.request().status_code == 202
    done = run_once(rt)  # finalises first, then delivers
    assert done["finalised"] >= 3
    run_once(rt)
    for member in members:
        assert member.me().status_code == 401  # the account is gone
        assert sent_to(rt, member.phone, "cancellation_requested") == 1
        assert sent_to(rt, member.phone, "cancellation_finalised") == 1
