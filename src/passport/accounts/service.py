"""Registration and the account itself (API.md "Accounts")."""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, func, select, update
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts.models import EMAIL, EMAIL_PENDING, ID_NUMBER, PHONE, REAL_NAME, Account
from passport.audit import service as audit
from passport.audit.models import AuditEvent
from passport.clock import rfc3339
from passport.db import HotStatement
from passport.identity.email import InvalidEmail, email_key, mask_email, normalize_email
from passport.identity.phone import InvalidPhone, mask_phone, normalize_phone
from passport.identity.resident_id import mask_id_number, mask_person_name
from passport.ipregion import resolver as ip_regions
from passport.runtime import Runtime

STATUSES = ("active", "frozen", "restricted", "suspended", "cancelling", "cancelled", "terminated")
INITIAL_STATUS = "active"  # registration creates the row in it; every later change goes through set_status
PHONE_FIELD, EMAIL_FIELD, EMAIL_PENDING_FIELD = PHONE, EMAIL, EMAIL_PENDING
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


# What a restriction takes away (agreement §五(一), issue 18), by operation; everything else works (sign
# in, password, phone, real name, cancellation, export, messages). Apps read ``restricted`` in GET /me.
RESTRICTED_OPERATIONS = {"profile": "change account information (nickname, bio, avatar)",
                         "email": "bind or change the email address", "organization": "apply for an organisation",
                         "invitation": "invite organisation administrators"}


def refuse_if_restricted(account: Account, operation: str) -> None:
    """403 ``account_restricted`` (with the reason and end) when a restriction takes this operation away."""
    if operation not in RESTRICTED_OPERATIONS:
        raise ValueError(f"unknown restricted operation {operation!r}")
    if account.status == "restricted":
        raise errors.DomainError("account_restricted", "Your account is restricted: this is not possible until "
                                 "the restriction ends.", 403,
                                 extra={"reason": account.status_reason, "until": rfc3339(account.status_until),
                                        "operation": operation})


def account_exists(db: Session, target: Target) -> bool:
    return find(db, target) is not None


NEUTRAL_NICKNAME = "用户"


def neutral_nickname(account_id: str) -> str:
    """What an account is called while the nickname it asked for waits for review, or after staff
    reset it (§五(一))."""
    return f"{NEUTRAL_NICKNAME}{account_id[-6:].upper()}"


def get(db: Session, account_id: str) -> Account:
    account = db.get(Account, account_id)
    if account is None:
        raise errors.not_found("account")
    return account


def nicknames(db: Session, account_ids: Collection[str]) -> dict[str, str]:
    """Nicknames of these accounts (the ones that exist), for a staff page that names actors."""
    if not account_ids:
        return {}
    return dict(db.execute(select(Account.id, Account.nickname).where(Account.id.in_(list(account_ids)))).all())


def masked_nickname(nickname: str) -> str:
    """A nickname as staff lists show it: its first character, the rest starred (at most three)."""
    return nickname[:1] + "*" * min(max(len(nickname) - 1, 1), 3)


def phone_of(rt: Runtime, account) -> str | None:
    """The account's mobile number in clear (None when it has none, e.g. cancelled)."""
    return rt.keys.cipher.decrypt(account.phone_enc, PHONE, account.id) if account.phone_enc else None


def view(rt: Runtime, account: Account, pending: list[dict] | None = None) -> dict:
    """The account as its owner sees it: personal data masked (GB/T 35273 §7.2)."""
    cipher = rt.keys.cipher
    phone = phone_of(rt, account)
    email = cipher.decrypt(account.email_enc, EMAIL, account.id) if account.email_enc else None
    return {
        "id": account.id,
        "kind": account.kind,
        "status": account.status,
        # A restriction apps honour too (issue 18): what the account may not do is RESTRICTED_OPERATIONS.
        "restricted": account.status == "restricted",
        "nickname": account.nickname,
        "bio": account.bio,
        "phone": mask_phone(phone) if phone else None,
        "email": mask_email(email) if email else None,
        "real_name": {
            "status": account.real_name_status or "none",
            "name": mask_person_name(cipher.decrypt(account.real_name_enc, REAL_NAME, account.id))
            if account.real_name_enc else None,
            "id_number": mask_id_number(cipher.decrypt(account.id_number_enc, ID_NUMBER, account.id))
            if account.id_number_enc else None,
        },
        "created_at": rfc3339(account.created_at),
        "pending_agreements": pending or [],
        "pending_review": pending_review(account),
        "avatar_url": f"/u/{account.id}/avatar/{account.avatar_id}" if account.avatar_id else None,
    }


PASSWORD_EVENTS = ("password.changed", "password.reset")


def security_overview(db: Session, account: Account) -> dict[str, Any]:
    """What the account centre's security overview shows: which protections are set up, and when the
    password was last set (its last change or reset, else registration)."""
    changed = db.scalar(select(func.max(AuditEvent.at)).where(
        AuditEvent.subject_type == "account", AuditEvent.subject_id == account.id,
        AuditEvent.action.in_(PASSWORD_EVENTS), AuditEvent.result == "ok"))
    return {
        "password": account.password_hash is not None,
        "password_set_at": rfc3339(changed or account.created_at),
        "email": account.email_enc is not None,
        "totp": account.totp_enabled_at is not None,
        "recovery_key": account.recovery_key_hash is not None,
        "real_name": account.real_name_status == "verified",
    }


def pending_review(account: Account) -> dict[str, str]:
    """The owner's changes a reviewer has not decided yet, by field."""
    held = {"nickname": account.nickname_pending, "bio": account.bio_pending, "avatar": account.avatar_pending_id}
    return {field: value for field, value in held.items() if value is not None}


_accounts = Account.__table__
_FIND = {
    channel: select(_accounts).where(column.in_((bindparam("bidx"), bindparam("bidx_previous"))),
                                     _accounts.c.status != "cancelled")
    for channel, column in (("sms", _accounts.c.phone_bidx), ("email", _accounts.c.email_bidx))
}


def find(db: Session | Connection, target: Target):
    """The live account holding this phone or email (cancelled tombstones hold none), as a read-only
    row: login reads it on every attempt, so it skips the ORM's identity map."""
    return db.execute(_FIND[target.channel], target.params).first()


# The same reads as run by a password login on PostgreSQL (sessions.service).
FIND_HOT = {channel: HotStatement(statement, retry=True) for channel, statement in _FIND.items()}


# --- the status machine ------------------------------------------------------------------------------

_STAFF_ACTS = "staff act on the account (COMPLIANCE R3, admin.enforcement.act)"
# Every change of an account's status, and why it exists. ``set_status`` refuses any other;
# cancelled is final, terminated too except for a reversal on appeal.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("active", "frozen"): "the owner freezes a stolen account (C4): by SMS code or signed in",
    ("frozen", "frozen"): "the owner freezes it again: the freeze stands, every session ends once more",
    ("frozen", "active"): "the owner unfreezes it with the SMS code and the recovery key (C4)",
    ("active", "restricted"): _STAFF_ACTS + ": restrict",
    ("restricted", "restricted"): _STAFF_ACTS + ": restrict again, with a new reason or end",
    ("suspended", "restricted"): _STAFF_ACTS + ": restrict a suspended account",
    ("cancelling", "restricted"): _STAFF_ACTS + ": restrict with no cancellation pending; "
                                  "or the owner withdraws a cancellation asked while restricted",
    ("cancelling", "cancelling"): _STAFF_ACTS + ": restrict during the cooling-off: the owner's cancellation "
                                  "stands (NDSR Art. 23), the restriction is what a withdrawal gives back",
    ("active", "suspended"): _STAFF_ACTS + ": suspend",
    ("restricted", "suspended"): _STAFF_ACTS + ": suspend a restricted account",
    ("suspended", "suspended"): _STAFF_ACTS + ": suspend again, with a new reason or end",
    ("cancelling", "suspended"): _STAFF_ACTS + ": suspend during the cooling-off (the finalisation is then void)",
    ("suspended", "active"): _STAFF_ACTS + ": unsuspend; or the suspension's end passed (lifted at the next login)",
    ("restricted", "active"): _STAFF_ACTS + ": unsuspend lifts a restriction",
    ("active", "terminated"): _STAFF_ACTS + ": terminate",
    ("frozen", "terminated"): _STAFF_ACTS + ": terminate a frozen account",
    ("restricted", "terminated"): _STAFF_ACTS + ": terminate a restricted account",
    ("suspended", "terminated"): _STAFF_ACTS + ": terminate a suspended account",
    ("cancelling", "terminated"): _STAFF_ACTS + ": terminate during the cooling-off",
    ("terminated", "active"): "an appeal reverses the termination (issue 18): the status before it comes back",
    ("terminated", "restricted"): "an appeal reverses the termination of a restricted account (issue 18)",
    ("terminated", "suspended"): "an appeal reverses the termination of a suspended account (issue 18)",
    ("active", "cancelling"): "the owner asks to cancel (D1): the cooling-off starts",
    ("restricted", "cancelling"): "the owner asks to cancel while restricted: a restriction does not take away "
                                  "the right to leave (NDSR Art. 23)",
    ("cancelling", "active"): "the owner withdraws the cancellation; or its finalisation is void (the last "
                              "administrator of an organisation): the status it had comes back",
    ("cancelling", "cancelled"): "the cooling-off ended: the worker finalises, the row becomes a tombstone",
    ("active", "cancelled"): "finalised after a suspension during the cooling-off was lifted (the request stood)",
    ("restricted", "cancelled"): "finalised after a restriction during the cooling-off (the request stood)",
}


class InvalidTransition(errors.DomainError):
    """A status change the table does not allow: the caller should have refused it by its own rule."""

    def __init__(self, sources: Collection[str], to: str) -> None:
        super().__init__("invalid_transition", "This action is not possible in the account's current status.", 409)
        self.sources, self.to = tuple(sources), to


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()  # set_status leaves status_reason / status_until as they are
_STATUS_COLUMNS = frozenset({"status", "status_reason", "status_until", "updated_at"})


def set_status(db: Session, account_id: str, to: str, *, expected: str | Collection[str], now: datetime,
               reason: str | None = KEEP, until: datetime | None = KEEP, where: ColumnElement[bool] | None = None,
               also: Mapping[str, Any] | None = None) -> bool:
    """Move the account to ``to``, in the caller's transaction, if it is in one of the ``expected``
    statuses (and ``where`` holds) when the write happens: one UPDATE with the condition in it, so of
    two writers racing, the one whose expected status no longer holds changes nothing. Returns
    whether the row changed. Raises ``InvalidTransition`` for a change ``TRANSITIONS`` does not allow.
    ``also``: other columns to set in the same UPDATE (never the status columns). Account objects
    loaded in ``db`` see the new values."""
    sources = (expected,) if isinstance(expected, str) else tuple(expected)
    if not sources or any((source, to) not in TRANSITIONS for source in sources):
        raise InvalidTransition(sources, to)
    extra = dict(also or {})
    if _STATUS_COLUMNS & extra.keys():
        raise ValueError(f"set_status: status columns go through its own arguments, not also={sorted(extra)}")
    values = {"status": to, "updated_at": now} | extra
    if reason is not KEEP:
        values["status_reason"] = reason
    if until is not KEEP:
        values["status_until"] = until
    condition = (Account.id == account_id) & Account.status.in_(sources)
    if where is not None:
        condition &= where
    statement = update(Account).where(condition).values(values).execution_options(synchronize_session="fetch")
    return db.execute(statement).rowcount == 1


# --- activity (API.md "Credentials": GET /me/activity) --------------------------------------------

ACTIVITY_PAGE_MAX = 100
MAX_SEQ = 2**63 - 1


def activity(rt: Runtime, account_id: str, *, before: int | None = None, limit: int = 20) -> dict:
    """One page of the account's own trail as its holder sees it (``audit.user_view``: others, staff
    included, only by kind), newest first (COMPLIANCE C3), each of its own entries with the IP region
    of its address. ``next_before`` fetches the next page; None on the last one."""
    limit = max(1, min(limit, ACTIVITY_PAGE_MAX))
    if before is not None and before > MAX_SEQ:
        before = None  # past every event: the newest page (and no BIGINT overflow)
    with rt.db.read() as db:
        rows = audit.user_activity(db, account_id, before=before, limit=limit + 1)
    page = rows[:limit]
    regions = ip_regions(rt.settings.ip_region_file)
    return {"items": [row | {"ip_region": regions.resolve(row["ip"]) if row.get("ip") else None} for row in page],
            "next_before": page[-1]["seq"] if len(rows) > limit else None}


@dataclass(frozen=True)
class Target:
    channel: str  # sms | email
    value: str  # normalised: +8613812345678 or the email address
    bidx: bytes  # the blind index under the current key: what writes store
    # Under the previous key while blind-index keys rotate (else ``bidx`` again): reads match either.
    bidx_previous: bytes | None = None

    @property
    def lookup(self) -> tuple[bytes, bytes]:
        return self.bidx, self.bidx_previous or self.bidx

    @property
    def params(self) -> dict[str, bytes]:
        """Bind values of a ``column IN (:bidx, :bidx_previous)`` look-up."""
        return {"bidx": self.bidx, "bidx_previous": self.bidx_previous or self.bidx}


def sms_target(rt: Runtime, raw_phone: str, field: str = "phone") -> Target:
    try:
        phone = normalize_phone(raw_phone)
    except InvalidPhone:
        raise errors.invalid("invalid_phone", "Enter an 11-digit mainland mobile number.", field) from None
    return Target("sms", phone, *rt.keys.blind_index.lookup("phone", phone))


def email_target(rt: Runtime, raw_email: str, field: str = "email") -> Target:
    try:
        email = normalize_email(raw_email)
    except InvalidEmail:
        raise errors.invalid("invalid_email", "Enter a valid email address.", field) from None
    return Target("email", email, *rt.keys.blind_index.lookup("email", email_key(email)))
