"""Verification codes: API.md "Verification codes", COMPLIANCE C6."""

from __future__ import annotations

from sqlalchemy import select

from passport.credentials.models import VerificationCode
from passport_testing import (
    last_code,
    last_email_code,
    login_with_code,
    new_phone,
    outbox_messages,
    register,
    register_account,
)

CODES = "/api/v1/verification-codes"


def send(client, phone: str, purpose: str = "register"):
    return client.post(CODES, json={"to": phone, "purpose": purpose})


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def code_rows(rt, phone: str) -> list[VerificationCode]:
    bidx = rt.keys.blind_index("phone", "+86" + phone)
    with rt.db.read() as db:
        return list(db.scalars(select(VerificationCode).where(VerificationCode.target_bidx == bidx)
                               .order_by(VerificationCode.id)))


def assert_rate_limited(answer) -> int:
    assert answer.status_code == 429, answer.text
    assert answer.json()["code"] == "rate_limited"
    assert answer.headers["content-type"].startswith("application/problem+json")
    retry_after = int(answer.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


def test_send_answers_202_with_expiry_and_resend_delay(client, rt):
    answer = send(client, new_phone())
    assert answer.status_code == 202
    assert answer.json() == {"expires_in": 300, "resend_after": 60}


def test_delivered_code_is_six_digits_and_goes_to_the_normalised_number(client, rt):
    phone = new_phone()
    assert send(client, phone).status_code == 202
    message = outbox_messages(rt)[-1]
    assert message["to"] == "+86" + phone and message["purpose"] == "register"
    assert len(message["code"]) == 6 and message["code"].isdigit()
    assert message["code"] in message["text"]


def test_only_a_keyed_hash_of_the_code_is_stored(client, rt):
    phone = new_phone()
    assert send(client, phone).status_code == 202
    code = last_code(rt, phone, "register")
    [row] = code_rows(rt, phone)
    assert row.code_hash is not None and len(row.code_hash) == 32
    assert row.code_hash != code.encode()
    for column in VerificationCode.__table__.columns:
        value = getattr(row, column.key)
        if isinstance(value, bytes):
            assert code.encode() not in value, column.key
            assert phone.encode() not in value, column.key
        elif isinstance(value, str):
            assert code not in value and phone not in value, column.key


def test_resend_within_a_minute_is_refused_with_retry_after(client, rt):
    phone = new_phone()
    assert send(client, phone).status_code == 202
    rt.clock.advance(seconds=30)
    retry_after = assert_rate_limited(send(client, phone))
    assert 25 <= retry_after <= 31
    assert len(outbox_messages_to(rt, phone)) == 1
    rt.clock.advance(seconds=31)
    assert send(client, phone).status_code == 202
    assert len(outbox_messages_to(rt, phone)) == 2


def test_resend_delay_counts_across_purposes(client, rt):
    phone = new_phone()
    assert send(client, phone, "register").status_code == 202
    assert_rate_limited(send(client, phone, "reset_password"))


def outbox_messages_to(rt, phone: str) -> list[dict]:
    return [m for m in outbox_messages(rt) if m["to"] == "+86" + phone]


def test_at_most_five_codes_an_hour_per_number(client, rt):
    phone = new_phone()
    for _ in range(5):
        assert send(client, phone).status_code == 202
        rt.clock.advance(seconds=61)
    # Five sent in the last 305 s: the sixth waits until the first is an hour old.
    retry_after = assert_rate_limited(send(client, phone))
    assert 3600 - 305 - 5 <= retry_after <= 3600 - 305 + 2
    assert len(outbox_messages_to(rt, phone)) == 5
    rt.clock.advance(seconds=retry_after)
    assert send(client, phone).status_code == 202


def test_at_most_ten_codes_a_day_per_number(client, rt):
    phone = new_phone()
    for i in range(10):
        assert send(client, phone).status_code == 202, i
        rt.clock.advance(seconds=61)
        if i % 5 == 4:
            rt.clock.advance(hours=1)
    # The last hour is empty, but ten were sent within the day.
    retry_after = assert_rate_limited(send(client, phone))
    elapsed = 9 * 61 + 3600 + 61 + 3600
    assert 86400 - elapsed - 5 <= retry_after <= 86400 - elapsed + 2
    assert len(outbox_messages_to(rt, phone)) == 10
    rt.clock.advance(seconds=retry_after)
    assert send(client, phone).status_code == 202


def test_code_is_accepted_just_before_five_minutes(client, rt):
    phone = new_phone()
    send(client, phone)
    rt.clock.advance(seconds=290)
    assert register(client, phone, last_code(rt, phone, "register")).status_code == 201


def test_code_expires_after_five_minutes(client, rt):
    phone = new_phone()
    send(client, phone)
    rt.clock.advance(seconds=301)
    answer = register(client, phone, last_code(rt, phone, "register"))
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_code"
    assert answer.json()["errors"][0]["field"] == "code"


def test_five_wrong_tries_burn_the_code(client, rt):
    phone = new_phone()
    send(client, phone)
    code = last_code(rt, phone, "register")
    for _ in range(5):
        wrong = register(client, phone, other_code(code))
        assert wrong.status_code == 422 and wrong.json()["code"] == "invalid_code"
    right = register(client, phone, code)
    assert right.status_code == 422 and right.json()["code"] == "invalid_code"
    assert code_rows(rt, phone)[-1].attempts == 5
    # A fresh code starts a fresh count.
    rt.clock.advance(seconds=61)
    send(client, phone)
    assert register(client, phone, last_code(rt, phone, "register")).status_code == 201


def test_four_wrong_tries_leave_the_code_usable(client, rt):
    phone = new_phone()
    send(client, phone)
    code = last_code(rt, phone, "register")
    for _ in range(4):
        assert register(client, phone, other_code(code)).status_code == 422
    assert register(client, phone, code).status_code == 201


def test_a_new_code_supersedes_the_previous_one(client, rt):
    phone = new_phone()
    send(client, phone)
    first = last_code(rt, phone, "register")
    rt.clock.advance(seconds=61)
    send(client, phone)
    second = last_code(rt, phone, "register")
    if first != second:
        old = register(client, phone, first)
        assert old.status_code == 422 and old.json()["code"] == "invalid_code"
    rows = code_rows(rt, phone)
    assert len(rows) == 2 and rows[0].consumed_at is not None
    assert register(client, phone, second).status_code == 201


def test_register_code_does_not_log_in(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    rt.clock.advance(seconds=61)
    send(client, phone, "register")
    refused = login_with_code(client, phone, last_code(rt, phone, "register"))
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_credentials"


def test_login_code_does_not_register_and_leaves_the_register_code_alone(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    rt.clock.advance(seconds=61)
    send(client, phone, "login")
    login_code = last_code(rt, phone, "login")
    # Code proof comes before "phone taken", so a login code is simply not a register code.
    refused = register(client, phone, login_code)
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_code"
    # ...and it is still good for what it was sent for.
    assert login_with_code(client, phone, login_code).status_code == 201


def test_failed_login_with_a_register_code_does_not_spend_it(client, rt):
    phone = new_phone()
    send(client, phone, "register")
    code = last_code(rt, phone, "register")
    assert login_with_code(client, phone, code).status_code == 401
    assert register(client, phone, code).status_code == 201


def test_code_is_single_use(client, rt):
    done = register_account(client, rt)
    phone = done["phone"]
    again = register(client, phone, last_code(rt, phone, "register"))
    assert again.status_code == 422 and again.json()["code"] == "invalid_code"

    rt.clock.advance(seconds=61)
    send(client, phone, "login")
    code = last_code(rt, phone, "login")
    assert login_with_code(client, phone, code).status_code == 201
    reused = login_with_code(client, phone, code)
    assert reused.status_code == 401 and reused.json()["code"] == "invalid_credentials"


def test_per_ip_hourly_cap(client, rt, monkeypatch):
    monkeypatch.setattr(rt.settings, "code_per_ip_hour", 3)
    phones = [new_phone() for _ in range(4)]
    for phone in phones[:3]:
        assert send(client, phone).status_code == 202
    assert_rate_limited(send(client, phones[3]))
    assert outbox_messages_to(rt, phones[3]) == []


def test_invalid_phone_is_refused_naming_the_field(client, rt):
    for bad in ("12345678901", "1381234567", "abc", "+1 415 555 0100", "23812345678"):
        answer = client.post(CODES, json={"to": bad, "purpose": "register"})
        assert answer.status_code == 422, bad
        body = answer.json()
        assert body["code"] == "invalid_phone"
        assert body["errors"][0]["field"] == "to"
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_unknown_purpose_is_refused(client, rt):
    phone = new_phone()
    answer = send(client, phone, "make_coffee")
    assert answer.status_code == 422
    assert answer.json()["code"] in ("invalid_purpose", "validation_failed")
    assert answer.json()["errors"][0]["field"] == "purpose"
    assert outbox_messages_to(rt, phone) == []


def test_every_documented_purpose_is_accepted(client, rt):
    purposes = ["register", "login", "reset_password", "bind_email", "change_phone", "freeze",
                "unfreeze", "cancel_account", "export"]
    for purpose in purposes:
        assert send(client, new_phone(), purpose).status_code == 202, purpose


def test_login_code_answer_does_not_reveal_whether_the_number_is_registered(client, rt):
    registered = register_account(client, rt)["phone"]
    unregistered = new_phone()
    rt.clock.advance(seconds=61)
    known = send(client, registered, "login")
    unknown = send(client, unregistered, "login")
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content

    def without_date(headers) -> dict:
        return {k: v for k, v in headers.items() if k.lower() not in ("date", "x-request-id")}  # random per request

    assert without_date(known.headers) == without_date(unknown.headers)
    assert [m["purpose"] for m in outbox_messages_to(rt, registered)] == ["register", "login"]
    assert outbox_messages_to(rt, unregistered) == []
    # Nothing that could be redeemed was kept for the unknown number.
    [row] = code_rows(rt, unregistered)
    assert row.code_hash is None and row.delivered is False


def test_email_codes_go_to_the_email_outbox(client, rt):
    address = f"user{new_phone()}@example.com"
    answer = client.post(CODES, json={"channel": "email", "to": address, "purpose": "bind_email"})
    assert answer.status_code == 202
    code = last_email_code(rt, address, "bind_email")
    assert len(code) == 6 and code.isdigit()


def test_an_invalid_email_is_refused_with_its_field(client):
    answer = client.post(CODES, json={"channel": "email", "to": "not-an-email", "purpose": "bind_email"})
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_email"
    assert answer.json()["errors"][0]["field"] == "to"
