"""Registration and the account itself (API.md "Accounts")."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts.models import Account
from passport.audit import service as audit
from passport.clock import rfc3339
from passport.db import HotStatement
from passport.identity.email import InvalidEmail, email_key, mask_email, normalize_email
from passport.identity.phone import InvalidPhone, mask_phone, normalize_phone
from passport.identity.resident_id import mask_id_number, mask_person_name
from passport.ipregion import resolver as ip_regions
from passport.runtime import Runtime

STATUSES = ("active", "frozen", "restricted", "suspended", "cancelling", "cancelled", "terminated")
EMAIL_FIELD, EMAIL_PENDING_FIELD = "account.email", "account.email_pending"
NICKNAME_MAX = 32
BIO_MAX = 200


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


def account_exists(db: Session, target: Target) -> bool:
    return find(db, target) is not None


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


_accounts = Account.__table__
_FIND = {
    channel: select(_accounts).where(column == bindparam("bidx"), _accounts.c.status != "cancelled")
    for channel, column in (("sms", _accounts.c.phone_bidx), ("email", _accounts.c.email_bidx))
}


def find(db: Session | Connection, target: Target):
    """The live account holding this phone or email (cancelled tombstones hold none), as a read-only
    row: login reads it on every attempt, so it skips the ORM's identity map."""
    return db.execute(_FIND[target.channel], {"bidx": target.bidx}).first()


# The same reads as run by a password login on PostgreSQL (sessions.service).
FIND_HOT = {channel: HotStatement(statement) for channel, statement in _FIND.items()}


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


@dataclass(frozen=True)
class Target:
    channel: str  # sms | email
    value: str  # normalised: +8613812345678 or the email address
    bidx: bytes


def sms_target(rt: Runtime, raw_phone: str, field: str = "phone") -> Target:
    try:
        phone = normalize_phone(raw_phone)
    except InvalidPhone:
        raise errors.invalid("invalid_phone", "Enter an 11-digit mainland mobile number.", field) from None
    return Target("sms", phone, rt.keys.blind_index("phone", phone))


def email_target(rt: Runtime, raw_email: str, field: str = "email") -> Target:
    try:
        email = normalize_email(raw_email)
    except InvalidEmail:
        raise errors.invalid("invalid_email", "Enter a valid email address.", field) from None
    return Target("email", email, rt.keys.blind_index("email", email_key(email)))
