"""The personal-data export (PIPL Art. 45, COMPLIANCE D4) and the correction of the mobile number
(Art. 46): SMS re-authentication, every kind of record of a rich account, clear errors."""

from __future__ import annotations

import json

import pyotp
from sqlalchemy import select

from passport.accounts.models import Account
from passport.audit.models import AuditEvent
from passport.cancellation import service as cancellation
from passport.credentials.models import PhoneChange
from passport_testing import deliver_notices, last_code, last_email_code, new_phone, outbox_messages

EXPORT = "/api/v1/me/export"
SECTIONS = ("account", "phone", "email", "real_name", "security", "consents", "optional_purposes", "sessions",
            "known_devices", "passkeys", "qr_logins", "activity",
            "verification_codes", "messages", "organizations", "cancellation")


def enrich(client, rt, member) -> str:
    """Give the account one of each kind of record: email, second factor, a withdrawn cancellation
    (with its notices), another device, failed logins. Returns the email address."""
    email = f"rich-{member.id[:8]}@example.com"
    assert client.post("/api/v1/me/email", json={"email": email}, headers=member.headers).status_code == 202
    verify = client.post("/api/v1/me/email/verify", json={"code": last_email_code(rt, email, "bind_email")},
                         headers=member.headers)
    assert verify.status_code == 204, verify.text
    started = client.post("/api/v1/me/totp", headers=member.headers)
    assert started.status_code in (200, 201), started.text
    confirmed = client.post("/api/v1/me/totp/confirm", headers=member.headers,
                            json={"code": pyotp.TOTP(started.json()["secret"]).now()})
    assert confirmed.status_code in (200, 204), confirmed.text
    assert member.request().status_code == 202
    assert client.delete("/api/v1/me/cancellation", headers=member.headers).status_code == 204
    assert client.post("/api/v1/sessions", json={"login": member.phone, "password": "Wrong!password-7x"}
                       ).status_code == 401
    assert client.put("/api/v1/me/purposes/marketing", json={"granted": True}, headers=member.headers
                      ).status_code in (200, 204)
    return email


def test_export_holds_every_kind_of_record_of_a_rich_account(client, rt, member, dev_realname, id_numbers,
                                                              verified_organization):
    email = enrich(client, rt, member)
    id_number = id_numbers()
    verified = client.post("/api/v1/me/real-name", json={"name": "王小明", "id_number": id_number},
                           headers=member.headers)
    assert verified.status_code == 200 and verified.json()["status"] == "verified", verified.text
    org_id = verified_organization(member.id)
    answer = client.post(EXPORT, json={"code": member.own_code("export")}, headers=member.headers)

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"].startswith('attachment; filename="passport-export-')
    archive = answer.json()
    assert set(SECTIONS) <= set(archive)
    for lang in ("zh-CN", "en"):
        for section in SECTIONS:
            assert f"{section}" in archive["README"][lang], (lang, section)
    assert archive["account"]["id"] == member.id and archive["account"]["nickname"] == "测试用户"
    assert archive["phone"] == "+86" + member.phone
    assert archive["email"]["address"] == email
    assert archive["real_name"]["status"] == "verified"
    assert (archive["real_name"]["name"], archive["real_name"]["id_number"]) == ("王小明", id_number)
    assert archive["real_name"]["verification_attempts"][0]["status"] == "verified"
    assert [o["id"] for o in archive["organizations"]] == [org_id]
    assert archive["security"]["password_set"] and archive["security"]["recovery_key_set"]
    assert archive["security"]["two_step_verification_since"]
    assert {c["kind"] for c in archive["consents"]} == {"user-agreement", "privacy-policy"}
    assert archive["optional_purposes"] == [{"purpose": "marketing", "granted": True,
                                             "changed_at": archive["optional_purposes"][0]["changed_at"]}]
    assert archive["sessions"] and archive["sessions"][0]["ip"]
    assert all("stepped_up_at" in held for held in archive["sessions"])  # when each last proved the password
    actions = {item["action"] for item in archive["activity"]}
    assert {"account.registered", "email.bound", "cancellation.requested", "cancellation.withdrawn",
            "login.failed"} <= actions
    assert {c["purpose"] for c in archive["verification_codes"]} >= {"register", "cancel_account", "export",
                                                                     "bind_email"}
    assert all("code" not in c and "code_hash" not in c for c in archive["verification_codes"])
    templates = {m.get("template") for m in archive["messages"]["messages"]}
    assert {"cancellation_requested", "cancellation_withdrawn"} <= templates
    assert [r["status"] for r in archive["cancellation"]] == ["withdrawn"]
    text = json.dumps(archive)
    assert member.password not in text and member.token not in text and member.recovery_key not in text


def test_export_needs_the_sms_code(client, rt, member):
    code = member.own_code("export")
    wrong = client.post(EXPORT, json={"code": f"{(int(code) + 1) % 10**6:06d}"}, headers=member.headers)
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_code"
    bare = client.get(EXPORT, headers=member.headers)
    assert bare.status_code == 403 and bare.json()["code"] == "reauthentication_required"
    by_header = client.get(EXPORT, headers=member.headers | {"X-Verification-Code": code})
    assert by_header.status_code == 200 and by_header.json()["phone"] == "+86" + member.phone
    reused = client.get(EXPORT, headers=member.headers | {"X-Verification-Code": code})
    assert reused.status_code == 400  # single use
    assert client.post(EXPORT, json={"code": "123456"}).status_code == 401
    with rt.db.read() as db:
        results = db.scalars(select(AuditEvent.result).where(AuditEvent.subject_id == member.id,
                                                             AuditEvent.action.like("account.export%"))
                             .order_by(AuditEvent.seq)).all()
    assert results == ["failed", "ok", "failed"]


def change(client, member, phone: str, code: str, password: str | None = None, old_code: str | None = None):
    """PUT /me/phone with a fresh code to the current number (unless one is given)."""
    return client.put("/api/v1/me/phone", headers=member.headers,
                      json={"phone": phone, "code": code, "password": password or member.password,
                            "old_code": old_code or member.own_code("change_phone_old")})


def send_change_code(client, rt, phone: str) -> str:
    sent = client.post("/api/v1/verification-codes", json={"to": phone, "purpose": "change_phone"})
    assert sent.status_code == 202, sent.text
    return last_code(rt, phone, "change_phone")


def test_change_phone_with_a_code_sent_to_the_new_number(client, rt, member):
    fresh = new_phone()
    answer = change(client, member, fresh, send_change_code(client, rt, fresh))
    assert answer.status_code == 200, answer.text
    assert answer.json()["account"]["phone"] == f"{fresh[:3]}****{fresh[7:]}"
    assert client.post("/api/v1/sessions", json={"login": fresh, "password": member.password}).status_code == 201
    assert client.post("/api/v1/sessions", json={"login": member.phone, "password": member.password}
                       ).status_code == 401
    deliver_notices(rt)
    told = [m for m in outbox_messages(rt) if m["to"] == "+86" + member.phone
            and m["purpose"] == "phone_changed"]
    assert len(told) == 1 and not told[0].get("code")
    assert not [m for m in outbox_messages(rt) if m["to"] == "+86" + fresh and m["purpose"] != "change_phone"]
    # The old number is free again.
    with rt.db.read() as db:
        assert db.scalar(select(Account.id).where(Account.phone_bidx == rt.keys.blind_index(
            "phone", "+86" + member.phone))) is None


def test_change_phone_bad_input_changes_nothing(client, rt, member, make_member):
    other = make_member()
    fresh = new_phone()
    code = send_change_code(client, rt, fresh)
    wrong_password = change(client, member, fresh, code, password="Wrong!password-7x")
    assert wrong_password.status_code == 400 and wrong_password.json()["code"] == "invalid_password"
    wrong_code = change(client, member, fresh, f"{(int(code) + 1) % 10**6:06d}")
    assert wrong_code.status_code == 400 and wrong_code.json()["code"] == "invalid_code"
    same = change(client, member, member.phone, code)
    assert same.status_code == 422 and same.json()["code"] == "same_phone"
    bad = change(client, member, "12345", code)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_phone"
    # Another account's number: a wrong code says nothing about it; the proved code gets 409.
    taken_wrong = change(client, member, other.phone, "000000")
    assert taken_wrong.status_code == 400 and taken_wrong.json()["code"] == "invalid_code"
    taken = change(client, member, other.phone, send_change_code(client, rt, other.phone))
    assert taken.status_code == 409 and taken.json()["code"] == "phone_taken"
    assert member.me().json()["phone"] == f"{member.phone[:3]}****{member.phone[7:]}"


def test_finalisation_leaves_no_new_number_of_a_held_change(client, rt, member, zero_day):
    fresh = new_phone()
    held = client.post("/api/v1/me/phone-change", headers=member.headers, json={
        "phone": fresh, "code": send_change_code(client, rt, fresh), "recovery_key": member.recovery_key,
        "password": member.password})
    assert held.status_code == 202, held.text
    assert member.request().status_code == 202
    assert cancellation.finalise_due(rt) >= 1
    with rt.db.read() as db:
        change = db.get(PhoneChange, held.json()["id"])
        assert (change.status, change.outcome, change.new_phone_enc) == ("cancelled", "cancelled", None)
