"""Registration and the account itself (API.md "Accounts")."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts.models import Account
from passport.agreements import service as agreements
from passport.audit import service as audit
from passport.clock import rfc3339
from passport.credentials import service as codes
from passport.db import HotStatement, new_id
from passport.identity.email import mask_email
from passport.identity.phone import mask_phone
from passport.identity.resident_id import mask_id_number, mask_person_name
from passport.ipregion import resolver as ip_regions
from passport.runtime import Runtime
from passport.security.policy import check_password
from passport.security.tokens import new_recovery_key
from passport.sessions import service as sessions

STATUSES = ("active", "frozen", "restricted", "suspended", "cancelling", "cancelled", "terminated")
EMAIL_FIELD, EMAIL_PENDING_FIELD = "account.email", "account.email_pending"
NICKNAME_MAX = 32
BIO_MAX = 200


@dataclass(frozen=True)
class Registered:
    account: dict
    recovery_key: str
    session: sessions.Issued


def clean_nickname(raw: str, field: str = "nickname") -> str:
    name = unicodedata.normalize("NFC", (raw or "").strip())
    if not 1 <= len(name) <= NICKNAME_MAX:
        raise errors.invalid("invalid_nickname", "Nickname must be 1 to 32 characters.", field)
    if any(unicodedata.category(c)[0] == "C" for c in name):
        raise errors.invalid("invalid_nickname", "Nickname must not contain control characters.", field)
    return name


def clean_bio(raw: str | None) -> str | None:
    if raw is None:
        return None
    bio = unicodedata.normalize("NFC", raw.strip())
    if len(bio) > BIO_MAX:
        raise errors.invalid("invalid_bio", "Bio must be at most 200 characters.", "bio")
    if any(unicodedata.category(c)[0] == "C" and c not in "\n" for c in bio):
        raise errors.invalid("invalid_bio", "Bio must not contain control characters.", "bio")
    return bio or None


def account_exists(db: Session, target: codes.Target) -> bool:
    return find(db, target) is not None


def register(rt: Runtime, origin: audit.Origin, *, phone: str, code: str, password: str, nickname: str,
             accepted: dict[str, str] | None) -> Registered:
    """Create a person account: code proves the number, the user accepts the current agreements
    (A1), the password passes the policy (C5). 409 ``phone_taken`` only after the code is proved."""
    target = codes.sms_target(rt, phone)
    nickname = clean_nickname(nickname)
    check_password(password, phone=target.value, min_length=rt.settings.password_min_length,
                   min_classes=rt.settings.password_min_classes)
    with rt.db.read() as db:
        agreements.check_registration_acceptance(rt, db, accepted)
    # Hash before the unit of work opens: the write lock is never held across an Argon2 run.
    password_hash = rt.hasher.hash(password)
    recovery_key = new_recovery_key()
    recovery_hash = rt.hasher.hash(recovery_key)
    token = sessions.new_session_token()

    now = rt.clock.now()
    outcome, taken, issued = codes.Redeemed.NONE, False, None
    try:
        with rt.db.write() as db:
            outcome = codes.redeem_code(rt, db, target, codes.Purpose.REGISTER, code)
            if outcome is codes.Redeemed.OK:
                taken = account_exists(db, target)
                if taken:
                    audit.record(db, at=now, action="account.register", origin=origin, result="failed",
                                 details={"reason": "phone_taken"})
                else:
                    versions = agreements.check_registration_acceptance(rt, db, accepted)
                    account = Account(id=new_id(), kind="person", status="active", nickname=nickname,
                                      phone_enc=rt.keys.cipher.encrypt(target.value, "account.phone"),
                                      phone_bidx=target.bidx, password_hash=password_hash,
                                      recovery_key_hash=recovery_hash, created_at=now, updated_at=now)
                    db.add(account)
                    db.flush()
                    audit.record(db, at=now, action="account.registered", origin=origin, actor_type="user",
                                 actor_id=account.id, subject_type="account", subject_id=account.id)
                    agreements.record_consents(db, account.id, versions, origin, now)
                    issued = sessions.start_session(rt, db, account.id, token, "register", origin)
            else:
                audit.record(db, at=now, action="account.register", origin=origin, result="failed",
                             details={"reason": "invalid_code"})
    except IntegrityError:
        # Another request registered this number between our check and our insert.
        raise _phone_taken() from None
    if outcome is not codes.Redeemed.OK:
        raise errors.invalid_code()
    if taken:
        raise _phone_taken()
    return Registered(account=view(rt, account), recovery_key=recovery_key, session=issued)


def _phone_taken() -> errors.DomainError:
    return errors.DomainError("phone_taken", "This mobile number is already registered. Please log in.", 409,
                              [errors.FieldError("phone", "phone_taken", "already registered")])


def get(db: Session, account_id: str) -> Account:
    account = db.get(Account, account_id)
    if account is None:
        raise errors.not_found("account")
    return account


def view(rt: Runtime, account: Account, pending: list[dict] | None = None) -> dict:
    """The account as its owner sees it: personal data masked (GB/T 35273 §7.2)."""
    cipher = rt.keys.cipher
    phone = cipher.decrypt(account.phone_enc, "account.phone") if account.phone_enc else None
    email = cipher.decrypt(account.email_enc, "account.email") if account.email_enc else None
    return {
        "id": account.id,
        "kind": account.kind,
        "status": account.status,
        "nickname": account.nickname,
        "bio": account.bio,
        "phone": mask_phone(phone) if phone else None,
        "email": mask_email(email) if email else None,
        "real_name": {
            "status": account.real_name_status or "none",
            "name": mask_person_name(cipher.decrypt(account.real_name_enc, "account.real_name"))
            if account.real_name_enc else None,
            "id_number": mask_id_number(cipher.decrypt(account.id_number_enc, "account.id_number"))
            if account.id_number_enc else None,
        },
        "created_at": rfc3339(account.created_at),
        "pending_agreements": pending or [],
    }


def update_profile(rt: Runtime, origin: audit.Origin, account_id: str, *, nickname: str | None,
                   bio: str | None, bio_given: bool) -> dict:
    changes: dict[str, object] = {}
    if nickname is not None:
        changes["nickname"] = clean_nickname(nickname)
    if bio_given:
        changes["bio"] = clean_bio(bio)
    now = rt.clock.now()
    with rt.db.write() as db:
        account = get(db, account_id)
        for key, value in changes.items():
            setattr(account, key, value)
        if changes:
            account.updated_at = now
            audit.record(db, at=now, action="account.profile_updated", origin=origin, actor_type="user",
                         actor_id=account_id, subject_type="account", subject_id=account_id,
                         details={"fields": sorted(changes)})
        result = view(rt, account, agreements.pending_for(rt, db, account_id))
    sessions.forget_sessions(rt, account_id=account_id)
    return result


_accounts = Account.__table__
_FIND = {
    channel: select(_accounts).where(column == bindparam("bidx"), _accounts.c.status != "cancelled")
    for channel, column in (("sms", _accounts.c.phone_bidx), ("email", _accounts.c.email_bidx))
}


def find(db: Session | Connection, target: codes.Target):
    """The live account holding this phone or email (cancelled tombstones hold none), as a read-only
    row: login reads it on every attempt, so it skips the ORM's identity map."""
    return db.execute(_FIND[target.channel], {"bidx": target.bidx}).first()


# The same reads as run by a password login on PostgreSQL (sessions.service).
FIND_HOT = {channel: HotStatement(statement) for channel, statement in _FIND.items()}


# --- email (API.md "Credentials") -----------------------------------------------------------------

def _email_taken() -> errors.DomainError:
    return errors.DomainError("email_taken", "This email address is already bound to another account.", 409,
                              [errors.FieldError("email", "email_taken", "already bound to another account")])


def request_email(rt: Runtime, origin: audit.Origin, account_id: str, *, email: str) -> dict:
    """Keep the address as pending and send it a bind_email code. The answer is the same whether or
    not another account holds the address: that is told only once the code proves ownership."""
    target = codes.email_target(rt, email)
    sent = codes.send_code(rt, origin, channel="email", to=target.value, purpose=codes.Purpose.BIND_EMAIL,
                           account_exists=account_exists)
    now = rt.clock.now()
    with rt.db.write() as db:
        account = get(db, account_id)
        account.email_pending_enc = rt.keys.cipher.encrypt(target.value, EMAIL_PENDING_FIELD)
        account.email_pending_bidx = target.bidx
        account.updated_at = now
        audit.record(db, at=now, action="email.bind_requested", origin=origin, actor_type="user",
                     actor_id=account_id, subject_type="account", subject_id=account_id,
                     details={"email": mask_email(target.value)})
    return sent


def _pending_target(rt: Runtime, account: Account) -> codes.Target | None:
    if account.email_pending_enc is None or account.email_pending_bidx is None:
        return None
    address = rt.keys.cipher.decrypt(account.email_pending_enc, EMAIL_PENDING_FIELD)
    return codes.Target("email", address, account.email_pending_bidx)


def verify_email(rt: Runtime, origin: audit.Origin, account_id: str, *, code: str) -> None:
    """Redeem the bind_email code of the pending address and bind it. 409 ``email_taken`` when a
    live account holds it (checked here, and by the unique index against a simultaneous bind)."""
    now = rt.clock.now()
    outcome, taken = codes.Redeemed.NONE, False
    try:
        with rt.db.write() as db:
            account = get(db, account_id)
            target = _pending_target(rt, account)
            if target is not None:
                outcome = codes.redeem_code(rt, db, target, codes.Purpose.BIND_EMAIL, code)
            if outcome is codes.Redeemed.OK:
                holder = find(db, target)
                taken = holder is not None and holder.id != account_id
                if not taken:
                    account.email_enc = rt.keys.cipher.encrypt(target.value, EMAIL_FIELD)
                    account.email_bidx = target.bidx
                account.email_pending_enc = account.email_pending_bidx = None
                account.updated_at = now
                db.flush()
            masked = mask_email(target.value) if target else None
            if outcome is codes.Redeemed.OK and not taken:
                audit.record(db, at=now, action="email.bound", origin=origin, actor_type="user",
                             actor_id=account_id, subject_type="account", subject_id=account_id,
                             details={"email": masked})
            else:
                reason = "email_taken" if taken else "invalid_code"
                audit.record(db, at=now, action="email.bind", origin=origin, result="failed", actor_type="user",
                             actor_id=account_id, subject_type="account", subject_id=account_id,
                             details={"email": masked, "reason": reason})
    except IntegrityError:
        raise _email_taken() from None
    if outcome is not codes.Redeemed.OK:
        raise errors.invalid_code()
    if taken:
        raise _email_taken()
    sessions.forget_sessions(rt, account_id=account_id)


def unbind_email(rt: Runtime, origin: audit.Origin, account_id: str) -> None:
    """Remove the bound address (and any pending one); login by email stops working."""
    now = rt.clock.now()
    with rt.db.write() as db:
        account = get(db, account_id)
        state = email_state(rt, account)
        if state["email"] or state["pending"]:
            account.email_enc = account.email_bidx = None
            account.email_pending_enc = account.email_pending_bidx = None
            account.updated_at = now
            audit.record(db, at=now, action="email.unbound", origin=origin, actor_type="user",
                         actor_id=account_id, subject_type="account", subject_id=account_id,
                         details={k: v for k, v in state.items() if v})
    sessions.forget_sessions(rt, account_id=account_id)


def email_state(rt: Runtime, account: Account) -> dict:
    """The bound and the pending address, masked."""
    cipher = rt.keys.cipher
    bound = cipher.decrypt(account.email_enc, EMAIL_FIELD) if account.email_enc else None
    pending = cipher.decrypt(account.email_pending_enc, EMAIL_PENDING_FIELD) if account.email_pending_enc else None
    return {"email": mask_email(bound) if bound else None, "pending": mask_email(pending) if pending else None}


def email_of(rt: Runtime, account_id: str) -> dict:
    with rt.db.read() as db:
        return email_state(rt, get(db, account_id))


# --- activity (API.md "Credentials": GET /me/activity) --------------------------------------------

ACTIVITY_PAGE_MAX = 100
MAX_SEQ = 2**63 - 1


def activity(rt: Runtime, account_id: str, *, before: int | None = None, limit: int = 20) -> dict:
    """One page of the account's own trail, newest first (COMPLIANCE C3), each entry with the IP
    region of its address. ``next_before`` fetches the next page; None on the last one."""
    limit = max(1, min(limit, ACTIVITY_PAGE_MAX))
    if before is not None and before > MAX_SEQ:
        before = None  # past every event: the newest page (and no BIGINT overflow)
    with rt.db.read() as db:
        rows = audit.activity_of(db, account_id, before=before, limit=limit + 1)
    page = rows[:limit]
    regions = ip_regions(rt.settings.ip_region_file)
    return {"items": [row | {"ip_region": regions.resolve(row["ip"])} for row in page],
            "next_before": page[-1]["seq"] if len(rows) > limit else None}
