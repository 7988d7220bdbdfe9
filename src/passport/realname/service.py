"""Person verification and organisation accounts (issue 7; COMPLIANCE R1-R3, I1, D5).

A person proves a real identity with name + resident ID number through the configured provider
(``realname.providers``); the public only ever sees the nickname (后台实名，前台自愿). At most
``PASSPORT_REALNAME_ACCOUNTS_PER_ID`` live accounts hold one ID number: the check and the
reservation run in one write transaction, serialised per ID number (SQLite: BEGIN IMMEDIATE;
PostgreSQL: an advisory lock keyed by the blind index). A verified person applies for an
organisation (USCC, legal representative, contact, licence); a reviewer decides it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import delete, event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from passport import errors
from passport.accounts import service as accounts
from passport.audit import service as audit
from passport.clock import CHINA_TIME, china_time, rfc3339
from passport.credentials import service as codes
from passport.db import new_id
from passport.identity.phone import mask_phone
from passport.identity.resident_id import (
    InvalidIdNumber,
    InvalidName,
    mask_id_number,
    mask_person_name,
    normalize_person_name,
    parse_id_number,
)
from passport.identity.uscc import InvalidUscc, normalize_uscc
from passport.ipregion import resolver as ip_regions
from passport.notify import outbox
from passport.realname.models import Attempt, Document, Organization, OrganizationAdmin
from passport.realname.providers import Outcome, ProviderUnavailable, make_provider
from passport.reviews import service as reviews
from passport.runtime import Runtime
from passport.sessions import service as sessions

log = structlog.get_logger("passport.realname")

NAME_FIELD, ID_FIELD = "account.real_name", "account.id_number"
ATTEMPT_NAME_FIELD, ATTEMPT_ID_FIELD = "realname.name", "realname.id_number"
LEGAL_REP_FIELD, CONTACT_FIELD = "organization.legal_representative", "organization.contact_phone"
DOCUMENT_FIELD = "realname.document"
SUBMISSIONS_PER_DAY = "10/day"
ADMIN_CHANGES_PER_HOUR = "30/hour"
STALE_CHECK = timedelta(minutes=10)  # far beyond (retries + 1) × timeout of any provider call
ORG_NAME_MIN, ORG_NAME_MAX = 2, 100
# Accounts on their way out: they neither count as an organisation's administrator nor may write data.
LEAVING = ("cancelling", "cancelled")
ACCOUNT_CANCELLED_REASON = "account cancelled"
LEGAL_REP_MAX = 50
# Content types by leading bytes: the type is what the file is, never what its name or the browser say.
SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"%PDF-", "application/pdf"))
ID_DOCUMENT_TYPES = frozenset({"image/png", "image/jpeg"})
LICENSE_TYPES = frozenset({"image/png", "image/jpeg", "application/pdf"})
# COMPLIANCE I1: names that could pass for the state or the party go to strict manual review.
STRICT_TERMS = ("中国", "中华", "中央", "全国", "国家", "中共", "共产党", "党中央", "党委", "党组", "国务院",
                "人民政府", "人大", "人民代表大会", "政协", "人民法院", "人民检察院", "监察委员会", "纪委",
                "公安", "国家安全", "解放军", "武警", "军委", "军区", "部队")

ID_MESSAGES = {
    "length": "An ID number has 18 characters.",
    "format": "The first 17 characters of the ID number must be digits, the last a digit or X.",
    "region": "The first two digits of the ID number are not a province code.",
    "date": "The birth date in the ID number is not a real, past date.",
    "sequence": "The sequence code in the ID number is not valid.",
    "check": "The last character of the ID number (the check character) does not match. Check for a typing "
             "mistake.",
}
USCC_MESSAGES = {
    "length": "A unified social credit code has 18 characters.",
    "charset": "The code may use only digits and capital letters other than I, O, S, V and Z.",
    "region": "Characters 3 to 8 of the code (the address code) must be digits.",
    "check": "The last character of the code (the check character) does not match. Check for a typing mistake.",
}
NAME_MESSAGES = {
    "length": "The name must be 2 to 30 characters.",
    "dot": "A middle dot (·) may only separate two parts of the name.",
    "characters": "Enter the name in Chinese characters, exactly as on the ID document.",
}


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str | None = None


# --- errors ------------------------------------------------------------------------------------------

def _invalid_id(exc: InvalidIdNumber) -> errors.DomainError:
    message = ID_MESSAGES[exc.part]
    return errors.DomainError("invalid_id_number", message, 422,
                              [errors.FieldError("id_number", "invalid_id_number", message)], extra={"part": exc.part})


def _invalid_uscc(exc: InvalidUscc) -> errors.DomainError:
    message = USCC_MESSAGES[exc.part]
    extra: dict[str, Any] = {"part": exc.part}
    if exc.position is not None:
        extra["position"] = exc.position
    return errors.DomainError("invalid_uscc", message, 422, [errors.FieldError("uscc", "invalid_uscc", message)],
                              extra=extra)


def _invalid_name(exc: InvalidName, field: str = "name") -> errors.DomainError:
    message = NAME_MESSAGES[exc.part]
    return errors.DomainError("invalid_name", message, 422, [errors.FieldError(field, "invalid_name", message)],
                              extra={"part": exc.part})


def _guardian_required(age: int, min_age: int) -> errors.DomainError:
    return errors.DomainError(
        "guardian_required",
        "Users under 14 cannot verify on their own. A parent or guardian must agree and verify for you.",
        422, [errors.FieldError("id_number", "guardian_required", "under 14: a guardian is needed")],
        extra={"age": age, "min_age": min_age})


def _id_number_limit() -> errors.DomainError:
    return errors.DomainError("id_number_limit",
                              "This ID number is already verified on as many accounts as allowed.", 409,
                              [errors.FieldError("id_number", "id_number_limit", "account limit reached")])


def provider_unavailable() -> errors.DomainError:
    return errors.DomainError("provider_unavailable",
                              "The identity check service is unavailable. Please try again later.", 503,
                              headers={"Retry-After": "60"})


def _forbidden_org() -> errors.DomainError:
    return errors.DomainError("not_organization_admin", "Only the organisation's administrators can do this.",
                              403)


# --- validation --------------------------------------------------------------------------------------

def today_in_china(rt: Runtime) -> date:
    return rt.clock.now().astimezone(CHINA_TIME).date()


def clean_name(raw: str, field: str = "name") -> str:
    try:
        return normalize_person_name(raw)
    except InvalidName as exc:
        raise _invalid_name(exc, field) from None


def check_person(rt: Runtime, name: str, id_number: str):
    """Name, ID number and age, in this order; nothing is stored when one fails."""
    name = clean_name(name)
    today = today_in_china(rt)
    try:
        resident = parse_id_number(id_number, today)
    except InvalidIdNumber as exc:
        raise _invalid_id(exc) from None
    age = resident.age_on(today)
    if age < rt.settings.realname_min_age:
        raise _guardian_required(age, rt.settings.realname_min_age)
    return name, resident


def clean_uscc(raw: str) -> str:
    try:
        return normalize_uscc(raw)
    except InvalidUscc as exc:
        raise _invalid_uscc(exc) from None


def content_type(data: bytes) -> str | None:
    return next((kind for magic, kind in SIGNATURES if data.startswith(magic)), None)


def check_upload(rt: Runtime, upload: Upload | None, allowed: frozenset[str], field: str) -> str:
    if upload is None or not upload.data:
        raise errors.invalid("file_required", "Choose a file to upload.", field)
    if len(upload.data) > rt.settings.upload_max_bytes:
        raise errors.DomainError("file_too_large", "The file must be at most 5 MB.", 422,
                                 [errors.FieldError(field, "file_too_large", "The file must be at most 5 MB.")],
                                 extra={"max_bytes": rt.settings.upload_max_bytes})
    kind = content_type(upload.data)
    if kind not in allowed:
        message = ("The file must be a PNG or JPEG image or a PDF." if "application/pdf" in allowed
                   else "The file must be a PNG or JPEG image.")
        raise errors.DomainError("invalid_file_type", message, 422, [errors.FieldError(field, "invalid_file_type",
                                                                                      message)])
    return kind


def strict_terms(name: str) -> list[str]:
    return [term for term in STRICT_TERMS if term in name]


def clean_org_name(raw: str) -> str:
    name = unicodedata.normalize("NFC", (raw or "").strip())
    if not ORG_NAME_MIN <= len(name) <= ORG_NAME_MAX or any(unicodedata.category(c)[0] == "C" for c in name):
        raise errors.invalid("invalid_organization_name",
                             "The organisation name must be 2 to 100 characters, as on the licence.", "name")
    return name


def clean_legal_representative(raw: str) -> str:
    name = unicodedata.normalize("NFC", (raw or "").strip())
    if not 2 <= len(name) <= LEGAL_REP_MAX or any(unicodedata.category(c)[0] in "CNPS" and c not in "·. -'"
                                                  for c in name):
        raise errors.invalid("invalid_legal_representative",
                             "Enter the legal representative's name as on the licence (2 to 50 letters).",
                             "legal_representative")
    return name


# --- documents ---------------------------------------------------------------------------------------

def uploads_dir(rt: Runtime) -> Path:
    path = rt.settings.data_dir / "uploads"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Stored:
    path: Path
    content_type: str
    size: int
    sha256: str


def _write_file(rt: Runtime, upload: Upload, content: str, written: list[Path]) -> Stored:
    """Encrypted (the field cipher, so keys rotate) under a random name, before any transaction opens
    (sealing 5 MB takes tens of milliseconds); the name the user gave is not kept."""
    sealed = rt.keys.cipher.encrypt(base64.b64encode(upload.data).decode("ascii"), DOCUMENT_FIELD)
    path = uploads_dir(rt) / secrets.token_hex(24)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        written.append(path)
        out.write(sealed)
    return Stored(path, content, len(upload.data), hashlib.sha256(upload.data).hexdigest())


def _add_document(db: Session, account_id: str, kind: str, stored: Stored, now: datetime) -> Document:
    document = Document(id=new_id(), account_id=account_id, kind=kind, content_type=stored.content_type,
                        size=stored.size, sha256=stored.sha256, stored_name=stored.path.name, created_at=now)
    db.add(document)
    db.flush()
    return document


def read_document(rt: Runtime, document: Document) -> bytes:
    sealed = (uploads_dir(rt) / document.stored_name).read_bytes()
    return base64.b64decode(rt.keys.cipher.decrypt(sealed, DOCUMENT_FIELD))


def _remove_files(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


# --- person verification ----------------------------------------------------------------------------

def _lock_id_number(db: Session, bidx: bytes) -> None:
    """PostgreSQL: one transaction at a time per ID number (SQLite write transactions are serial)."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": int.from_bytes(bidx[:8], "big", signed=True)})


def _account_for_update(db: Session, account_id: str):
    account = db.scalars(select(accounts.Account).where(accounts.Account.id == account_id).with_for_update()).first()
    if account is None:
        raise errors.not_found("account")
    return account


def _account_closed() -> errors.DomainError:
    return errors.DomainError("account_cancelled", "This account has been cancelled.", 403)


def _release_stale_checks(db: Session, bidx: bytes, account_id: str, now: datetime,
                          origin: audit.Origin) -> list[str]:
    """A provider check that never settled (the process died while waiting) holds its ID number and
    leaves its account pending: after STALE_CHECK it is released, by the next submission that meets it."""
    stale = db.scalars(select(Attempt).where(
        Attempt.status == "pending", Attempt.provider != "manual", Attempt.created_at < now - STALE_CHECK,
        (Attempt.id_number_bidx == bidx) | (Attempt.account_id == account_id))).all()
    for attempt in stale:
        attempt.status, attempt.reason, attempt.decided_at = "failed", "interrupted", now
        holder = _account_for_update(db, attempt.account_id)
        if holder.real_name_status == "pending" and holder.id_number_bidx == attempt.id_number_bidx:
            holder.real_name_status = "none"
            holder.real_name_enc = holder.id_number_enc = holder.id_number_bidx = None
            holder.updated_at = now
        audit.record(db, at=now, action="realname.check", origin=origin, result="failed", actor_type="system",
                     subject_type="account", subject_id=attempt.account_id,
                     details={"provider": attempt.provider, "attempt": attempt.id, "error": "interrupted"})
    return [attempt.account_id for attempt in stale]


def holders_of(db: Session, bidx: bytes, except_account: str) -> int:
    """Live accounts holding or claiming this ID number (pending counts: it reserves a place)."""
    return db.scalar(select(func.count()).select_from(accounts.Account).where(
        accounts.Account.id_number_bidx == bidx, accounts.Account.id != except_account,
        accounts.Account.status != "cancelled",
        accounts.Account.real_name_status.in_(("pending", "verified")))) or 0


def submit_person(rt: Runtime, origin: audit.Origin, account_id: str, *, name: str, id_number: str,
                  document: Upload | None = None) -> dict:
    """Check, reserve the ID number, ask the provider. Returns ``{"status","reason","provider"}``:
    verified or rejected at once (http, dev), pending for a reviewer (manual)."""
    name, resident = check_person(rt, name, id_number)
    try:
        provider = make_provider(rt.settings)
    except ProviderUnavailable as exc:
        log.error("realname.provider_misconfigured", error=str(exc))
        raise provider_unavailable() from None
    doc_type = None
    if provider.name == "manual" and document is None:
        raise errors.invalid("document_required", "Verification here is by a photo of your ID document: "
                             "upload it with your name and ID number.", "document")
    if provider.name == "manual":
        doc_type = check_upload(rt, document, ID_DOCUMENT_TYPES, "document")
    rt.limiter.hit(SUBMISSIONS_PER_DAY, "realname-submit", account_id)
    bidx = rt.keys.blind_index("id_number", resident.number)
    masked = {"name": mask_person_name(name), "id_number": mask_id_number(resident.number)}
    cipher, now = rt.keys.cipher, rt.clock.now()
    refused: errors.DomainError | None = None
    written: list[Path] = []
    try:
        stored = _write_file(rt, document, doc_type, written) if doc_type else None
        with rt.db.write() as db:
            _lock_id_number(db, bidx)
            released = _release_stale_checks(db, bidx, account_id, now, origin)
            account = _account_for_update(db, account_id)
            previous = account.real_name_status
            if account.status == "cancelled":  # a stale cached session must not write onto a tombstone
                refused = _account_closed()
            elif previous == "verified":
                refused = errors.DomainError("already_verified", "Your real name is already verified.", 409)
            elif previous == "pending":
                refused = errors.DomainError("verification_pending",
                                             "Your verification is waiting for a reviewer.", 409)
            elif holders_of(db, bidx, account_id) >= rt.settings.realname_accounts_per_id:
                refused = _id_number_limit()
            if refused is not None:
                audit.record(db, at=now, action="realname.submit", origin=origin, result="failed", actor_type="user",
                             actor_id=account_id, subject_type="account", subject_id=account_id,
                             details={"reason": refused.code, "id_number": masked["id_number"]})
            else:
                doc = _add_document(db, account_id, "id_document", stored, now) if stored else None
                attempt = Attempt(id=new_id(), account_id=account_id, provider=provider.name, status="pending",
                                  name_enc=cipher.encrypt(name, ATTEMPT_NAME_FIELD),
                                  id_number_enc=cipher.encrypt(resident.number, ATTEMPT_ID_FIELD),
                                  id_number_bidx=bidx, document_id=doc.id if doc else None, created_at=now)
                db.add(attempt)
                account.real_name_status = "pending"
                account.real_name_enc = cipher.encrypt(name, NAME_FIELD)
                account.id_number_enc = cipher.encrypt(resident.number, ID_FIELD)
                account.id_number_bidx = bidx
                account.updated_at = now
                db.flush()
                if doc is not None:
                    attempt.review_id = reviews.enqueue(
                        db, "real_name", "realname_attempt", attempt.id,
                        masked | {"account_id": account_id, "age": resident.age_on(today_in_china(rt)),
                                  "document_id": doc.id, "residence_permit": resident.is_residence_permit},
                        now, origin)
                audit.record(db, at=now, action="realname.submitted", origin=origin, actor_type="user",
                             actor_id=account_id, subject_type="account", subject_id=account_id,
                             details={"provider": provider.name, "attempt": attempt.id} | masked)
    except BaseException:
        _remove_files(written)
        raise
    for released_id in released:
        sessions_forget(rt, released_id)
    if refused is not None:
        _remove_files(written)
        raise refused
    sessions_forget(rt, account_id)
    if provider.name == "manual":
        return {"status": "pending", "reason": None, "provider": provider.name}
    try:
        outcome = provider.check(name, resident.number)
    except ProviderUnavailable as exc:
        _provider_failed(rt, origin, attempt.id, previous, str(exc))
        raise provider_unavailable() from None
    except Exception as exc:
        log.error("realname.provider_crashed", provider=provider.name, error=type(exc).__name__)
        _provider_failed(rt, origin, attempt.id, previous, type(exc).__name__)
        raise provider_unavailable() from None
    with rt.db.write() as db:
        settled = db.get(Attempt, attempt.id)
        if settled.status == "pending":  # not released meanwhile as a stale check
            _settle(rt, db, settled, outcome, origin, actor=("system", None))
    sessions_forget(rt, account_id)
    return {"status": outcome.status, "reason": outcome.reason, "provider": provider.name}


def sessions_forget(rt: Runtime, account_id: str) -> None:
    """/me reads the account through the per-process session cache: drop this account's entries."""
    sessions.forget_sessions(rt, account_id=account_id)


def _provider_failed(rt: Runtime, origin: audit.Origin, attempt_id: str, previous: str, error: str) -> None:
    """No trustworthy answer: the reservation is released and the account is as it was."""
    now = rt.clock.now()
    with rt.db.write() as db:
        attempt = db.get(Attempt, attempt_id)
        attempt.status, attempt.reason, attempt.decided_at = "failed", "provider_unavailable", now
        account = _account_for_update(db, attempt.account_id)
        if account.real_name_status == "pending":
            account.real_name_status = previous
            account.real_name_enc = account.id_number_enc = account.id_number_bidx = None
            account.updated_at = now
        audit.record(db, at=now, action="realname.check", origin=origin, result="failed", actor_type="system",
                     subject_type="account", subject_id=attempt.account_id,
                     details={"provider": attempt.provider, "attempt": attempt.id, "error": error[:100]})
    sessions_forget(rt, attempt.account_id)


def _settle(rt: Runtime, db: Session, attempt: Attempt, outcome: Outcome, origin: audit.Origin,
            actor: tuple[str, str | None]) -> None:
    """The provider's or the reviewer's answer, in the caller's transaction."""
    now = rt.clock.now()
    account = _account_for_update(db, attempt.account_id)
    attempt.status, attempt.decided_at = outcome.status, now
    attempt.provider_ref, attempt.reason = outcome.reference, outcome.reason
    account.real_name_status = outcome.status
    if outcome.status != "verified":
        # A refused identity is not kept on the account and no longer holds a place for its ID number.
        account.real_name_enc = account.id_number_enc = account.id_number_bidx = None
    account.updated_at = now
    audit.record(db, at=now, action=f"realname.{outcome.status}", origin=origin, actor_type=actor[0],
                 actor_id=actor[1], subject_type="account", subject_id=account.id,
                 details={"provider": attempt.provider, "attempt": attempt.id, "reason": outcome.reason})
    template = "realname_person_verified" if outcome.status == "verified" else "realname_person_rejected"
    params = {"time": china_time(now)}
    if outcome.status != "verified":
        params["reason"] = _reason_text(outcome.reason)
    outbox.notify_account(rt, db, account_id=account.id, template=template, params=params)


def _reason_text(reason: str | None) -> str | dict[str, str]:
    if reason == "name_id_mismatch":
        return {"zh-CN": "姓名与身份证号不一致", "en": "the name does not match the ID number"}
    return reason or "—"


@reviews.on_decision("real_name")
def _person_decided(rt: Runtime, db: Session, decided: reviews.Decided) -> None:
    attempt = db.get(Attempt, decided.subject_id)
    if attempt is None or attempt.status != "pending":
        return
    outcome = Outcome("verified" if decided.decision == "approve" else "rejected", reference=decided.review_id,
                      reason=decided.reason)
    _settle(rt, db, attempt, outcome, audit.Origin(channel="review"), actor=("staff", decided.staff_id))


def revoke_verification(rt: Runtime, origin: audit.Origin, account_id: str, *, reason: str,
                        actor: tuple[str, str | None]) -> dict:
    """Withdraw an account's verification (a stolen or disputed ID number, COMPLIANCE R3): the account
    is unverified again, its ID number holds no place, the user is told why."""
    reason = (reason or "").strip()
    if not 5 <= len(reason) <= 500:
        raise errors.invalid("reason_required", "A reason of at least 5 characters is required.", "reason")
    now = rt.clock.now()
    with rt.db.write() as db:
        account = _account_for_update(db, account_id)
        if account.real_name_status not in ("verified", "pending"):
            raise errors.DomainError("not_verified", "This account has no verification to withdraw.", 409)
        for attempt in db.scalars(select(Attempt).where(Attempt.account_id == account_id,
                                                        Attempt.status.in_(("verified", "pending")))).all():
            attempt.status, attempt.reason, attempt.decided_at = "revoked", reason, now
        account.real_name_status = "none"
        account.real_name_enc = account.id_number_enc = account.id_number_bidx = None
        account.updated_at = now
        audit.record(db, at=now, action="realname.revoked", origin=origin, actor_type=actor[0], actor_id=actor[1],
                     subject_type="account", subject_id=account_id, details={"reason": reason})
        outbox.notify_account(rt, db, account_id=account_id, template="realname_person_revoked",
                              params={"reason": reason})
        result = real_name_view(rt, account)
    sessions_forget(rt, account_id)
    return result


def status_of(rt: Runtime, account_id: str) -> dict:
    """The owner's view: masked name and ID number, the latest attempt's outcome."""
    with rt.db.read() as db:
        account = accounts.get(db, account_id)
        latest = db.scalars(select(Attempt).where(Attempt.account_id == account_id)
                            .order_by(Attempt.created_at.desc(), Attempt.id).limit(1)).first()
        return real_name_view(rt, account) | {
            "provider": latest.provider if latest else None,
            "reason": latest.reason if latest and latest.status in ("rejected", "failed") else None,
            "submitted_at": rfc3339(latest.created_at) if latest else None}


def real_name_view(rt: Runtime, account) -> dict:
    cipher = rt.keys.cipher
    name = cipher.decrypt(account.real_name_enc, NAME_FIELD) if account.real_name_enc else None
    number = cipher.decrypt(account.id_number_enc, ID_FIELD) if account.id_number_enc else None
    return {"status": account.real_name_status, "name": mask_person_name(name) if name else None,
            "id_number": mask_id_number(number) if number else None}


# --- organisations -----------------------------------------------------------------------------------

def apply_organization(rt: Runtime, origin: audit.Origin, account_id: str, *, name: str, uscc: str,
                       legal_representative: str, contact_phone: str, license: Upload | None) -> dict:  # noqa: A002
    """A verified person applies; the organisation waits in the review queue (COMPLIANCE R2, I1)."""
    with rt.db.read() as db:
        if accounts.get(db, account_id).real_name_status != "verified":
            raise errors.DomainError("real_name_required",
                                     "Verify your real name before you apply for an organisation.", 403)
    name = clean_org_name(name)
    code = clean_uscc(uscc)
    representative = clean_legal_representative(legal_representative)
    contact = codes.sms_target(rt, contact_phone, "contact_phone").value
    kind = check_upload(rt, license, LICENSE_TYPES, "license")
    rt.limiter.hit(SUBMISSIONS_PER_DAY, "organization-apply", account_id)
    flagged = strict_terms(name)
    cipher, now = rt.keys.cipher, rt.clock.now()
    written: list[Path] = []
    taken = False
    try:
        stored = _write_file(rt, license, kind, written)
        with rt.db.write() as db:
            applicant = _account_for_update(db, account_id)
            if applicant.status == "cancelled":
                raise _account_closed()
            if applicant.real_name_status != "verified":
                raise errors.DomainError("real_name_required",
                                         "Verify your real name before you apply for an organisation.", 403)
            if db.scalar(select(func.count()).select_from(Organization).where(Organization.uscc_live == code)):
                taken = True
                audit.record(db, at=now, action="organization.apply", origin=origin, result="failed",
                             actor_type="user", actor_id=account_id, details={"reason": "uscc_taken", "uscc": code})
            else:
                document = _add_document(db, account_id, "license", stored, now)
                org = Organization(id=new_id(), name=name, uscc=code, uscc_live=code,
                                   legal_representative_enc=cipher.encrypt(representative, LEGAL_REP_FIELD),
                                   contact_phone_enc=cipher.encrypt(contact, CONTACT_FIELD), status="pending_review",
                                   strict_review=bool(flagged), license_id=document.id, created_by=account_id,
                                   ip=origin.ip, created_at=now)
                db.add(org)
                db.flush()
                db.add(OrganizationAdmin(organization_id=org.id, account_id=account_id, added_by=account_id,
                                         created_at=now, accepted_at=now))
                org.review_id = reviews.enqueue(db, "organization", "organization", org.id, {
                    "organization_id": org.id, "name": name, "uscc": code, "strict_review": bool(flagged),
                    "strict_terms": flagged, "legal_representative": mask_person_name(representative),
                    "contact_phone": mask_phone(contact), "document_id": document.id, "account_id": account_id,
                }, now, origin)
                audit.record(db, at=now, action="organization.applied", origin=origin, actor_type="user",
                             actor_id=account_id, subject_type="organization", subject_id=org.id,
                             details={"uscc": code, "strict_review": bool(flagged)})
                result = {"id": org.id, "status": org.status, "strict_review": bool(flagged)}
    except IntegrityError:
        _remove_files(written)
        taken = True
    except BaseException:
        _remove_files(written)
        raise
    if taken:
        _remove_files(written)
        raise errors.DomainError("uscc_taken", "An organisation with this unified social credit code is already "
                                 "registered or under review.", 409,
                                 [errors.FieldError("uscc", "uscc_taken", "already registered")])
    return result


@reviews.on_decision("organization")
def _organization_decided(rt: Runtime, db: Session, decided: reviews.Decided) -> None:
    org = db.scalars(select(Organization).where(Organization.id == decided.subject_id).with_for_update()).first()
    if org is None or org.status != "pending_review":
        return
    if decided.decision == "approve" and org.strict_review and not decided.reason:
        # COMPLIANCE I1: a name that could pass for the state or the party is approved only with a reason.
        raise errors.invalid("reason_required",
                             "This organisation name needs strict review: give a reason for approving it.",
                             "reason")
    org.status = "verified" if decided.decision == "approve" else "rejected"
    org.reason, org.decided_at = decided.reason, decided.at
    if org.status == "rejected":
        org.uscc_live = None
    audit.record(db, at=decided.at, action=f"organization.{org.status}", origin=audit.Origin(channel="review"),
                 actor_type="staff", actor_id=decided.staff_id, subject_type="organization", subject_id=org.id,
                 details={"reason": decided.reason})
    params = {"organization": org.name}
    if org.status == "rejected":
        params["reason"] = decided.reason or "—"
    template = "realname_organization_verified" if org.status == "verified" else "realname_organization_rejected"
    for admin_id in db.scalars(select(OrganizationAdmin.account_id).where(
            OrganizationAdmin.organization_id == org.id, OrganizationAdmin.accepted_at.is_not(None))).all():
        outbox.notify_account(rt, db, account_id=admin_id, template=template, params=params)


def _org(db: Session, org_id: str, *, lock: bool = False) -> Organization:
    query = select(Organization).where(Organization.id == org_id)
    org = db.scalars(query.with_for_update() if lock else query).first()
    if org is None:
        raise errors.not_found("organization")
    return org


def _is_admin(db: Session, org_id: str, account_id: str) -> bool:
    """An administrator who accepted (an invitation alone gives no rights)."""
    link = db.get(OrganizationAdmin, (org_id, account_id))
    return link is not None and link.accepted_at is not None


def _active_admins(db: Session, org_id: str, *, excluding: str | None = None) -> int:
    """Administrators who accepted and whose account is not being or been cancelled."""
    query = (select(func.count()).select_from(OrganizationAdmin)
             .join(accounts.Account, accounts.Account.id == OrganizationAdmin.account_id)
             .where(OrganizationAdmin.organization_id == org_id, OrganizationAdmin.accepted_at.is_not(None),
                    accounts.Account.status.not_in(LEAVING)))
    if excluding is not None:
        query = query.where(OrganizationAdmin.account_id != excluding)
    return db.scalar(query) or 0


def public_organization(rt: Runtime, org_id: str) -> dict:
    """CAC Order No. 10 Art. 13: operating entity, USCC, contact and IP region; rejected ones are not shown."""
    with rt.db.read() as db:
        org = _org(db, org_id)
        if org.status in ("rejected", "withdrawn") or org.contact_phone_enc is None:
            raise errors.not_found("organization")
        contact = rt.keys.cipher.decrypt(org.contact_phone_enc, CONTACT_FIELD)
        return {"id": org.id, "name": org.name, "uscc": org.uscc, "contact_phone": mask_phone(contact),
                "ip_region": ip_regions(rt.settings.ip_region_file).resolve(org.ip), "status": org.status,
                "verified_at": rfc3339(org.decided_at) if org.status == "verified" else None,
                "created_at": rfc3339(org.created_at)}


def organizations_of(rt: Runtime, account_id: str) -> list[dict]:
    with rt.db.read() as db:
        rows = db.scalars(select(Organization).join(OrganizationAdmin, OrganizationAdmin.organization_id ==
                                                    Organization.id)
                          .where(OrganizationAdmin.account_id == account_id,
                                 OrganizationAdmin.accepted_at.is_not(None))
                          .order_by(Organization.created_at.desc())).all()
        return [{"id": o.id, "name": o.name, "uscc": o.uscc, "status": o.status, "reason": o.reason,
                 "strict_review": o.strict_review, "created_at": rfc3339(o.created_at)} for o in rows]


def administrators(rt: Runtime, account_id: str, org_id: str) -> list[dict]:
    """For the organisation's administrators only: nicknames and masked phone numbers."""
    with rt.db.read() as db:
        _org(db, org_id)
        if not _is_admin(db, org_id, account_id):
            raise _forbidden_org()
        rows = db.execute(select(OrganizationAdmin, accounts.Account)
                          .join(accounts.Account, accounts.Account.id == OrganizationAdmin.account_id)
                          .where(OrganizationAdmin.organization_id == org_id,
                                 OrganizationAdmin.accepted_at.is_not(None))
                          .order_by(OrganizationAdmin.created_at, OrganizationAdmin.account_id)).all()
        cipher = rt.keys.cipher
        return [{"account_id": a.id, "nickname": a.nickname,
                 "phone": mask_phone(cipher.decrypt(a.phone_enc, "account.phone")) if a.phone_enc else None,
                 "added_at": rfc3339(link.created_at), "you": a.id == account_id} for link, a in rows]


def add_administrator(rt: Runtime, origin: audit.Origin, account_id: str, org_id: str, *, phone: str) -> dict:
    """Invite an account, by its mobile number, to become an administrator: it becomes one only when
    it accepts. The answer is the same whether or not the number has an account (no enumeration)."""
    target = codes.sms_target(rt, phone)
    rt.limiter.hit(ADMIN_CHANGES_PER_HOUR, "organization-admins", account_id)
    now = rt.clock.now()
    masked = mask_phone(target.value)
    with rt.db.write() as db:
        org = _org(db, org_id, lock=True)
        if not _is_admin(db, org_id, account_id):
            raise _forbidden_org()
        if org.status in ("rejected", "withdrawn"):
            raise errors.DomainError("organization_rejected", "This organisation was rejected.", 409)
        holder = accounts.find(db, target)
        invited = None
        if holder is not None and holder.kind == "person" and holder.status not in LEAVING:
            link = db.get(OrganizationAdmin, (org_id, holder.id))
            if link is not None and link.accepted_at is not None:  # listed to the administrators already
                raise errors.DomainError("already_administrator", "This account is already an administrator.",
                                         409, [errors.FieldError("phone", "already_administrator", "already added")])
            if link is None:
                db.add(OrganizationAdmin(organization_id=org_id, account_id=holder.id, added_by=account_id,
                                         created_at=now))
                db.flush()
                outbox.notify_account(rt, db, account_id=holder.id, template="realname_admin_invited",
                                      params={"organization": org.name}, channels=("inbox",))
                invited = holder.id
        audit.record(db, at=now, action="organization.admin_invited", origin=origin, actor_type="user",
                     actor_id=account_id, subject_type="organization", subject_id=org_id,
                     details={"account": invited, "phone": masked})
    return {"status": "invited", "phone": masked}


def invitations_of(rt: Runtime, account_id: str) -> list[dict]:
    """Invitations to administer an organisation, waiting for this account's answer."""
    with rt.db.read() as db:
        rows = db.execute(select(Organization, OrganizationAdmin)
                          .join(OrganizationAdmin, OrganizationAdmin.organization_id == Organization.id)
                          .where(OrganizationAdmin.account_id == account_id, OrganizationAdmin.accepted_at.is_(None),
                                 Organization.status.in_(("pending_review", "verified")))
                          .order_by(OrganizationAdmin.created_at)).all()
        return [{"id": o.id, "name": o.name, "uscc": o.uscc, "status": o.status,
                 "invited_at": rfc3339(link.created_at)} for o, link in rows]


def answer_invitation(rt: Runtime, origin: audit.Origin, account_id: str, org_id: str, *, accept: bool) -> None:
    """The invitee accepts (becomes an administrator) or declines (the invitation is gone)."""
    now = rt.clock.now()
    with rt.db.write() as db:
        account = _account_for_update(db, account_id)  # account, then organisation: finalisation's order
        org = _org(db, org_id, lock=True)
        link = db.get(OrganizationAdmin, (org_id, account_id))
        if link is None or link.accepted_at is not None:
            raise errors.not_found("invitation")
        if accept and (org.status not in ("pending_review", "verified") or account.status in LEAVING):
            raise errors.DomainError("invitation_closed", "This invitation can no longer be accepted.", 409)
        if accept:
            link.accepted_at = now
        else:
            db.delete(link)
        audit.record(db, at=now, action="organization.admin_accepted" if accept else "organization.admin_declined",
                     origin=origin, actor_type="user", actor_id=account_id, subject_type="organization",
                     subject_id=org_id, details={"account": account_id})


def remove_administrator(rt: Runtime, origin: audit.Origin, account_id: str, org_id: str, target_id: str) -> None:
    """Remove an administrator or withdraw an invitation. The organisation row lock orders removals,
    so two administrators removing each other at once cannot leave it with none; an administrator
    whose account is being cancelled does not count as one left."""
    now = rt.clock.now()
    with rt.db.write() as db:
        _org(db, org_id, lock=True)
        if not _is_admin(db, org_id, account_id):
            raise _forbidden_org()
        link = db.get(OrganizationAdmin, (org_id, target_id))
        if link is None:
            raise errors.not_found("administrator")
        if link.accepted_at is not None and _active_admins(db, org_id, excluding=target_id) < 1:
            raise errors.DomainError("last_administrator", "An organisation needs at least one administrator.", 409)
        db.delete(link)
        audit.record(db, at=now, action="organization.admin_removed", origin=origin, actor_type="user",
                     actor_id=account_id, subject_type="organization", subject_id=org_id,
                     details={"account": target_id, "invitation": link.accepted_at is None})


def _erase_organization(rt: Runtime, db: Session, org: Organization, now: datetime, reason: str,
                        origin: audit.Origin, actor: tuple[str, str | None]) -> list[Path]:
    """An application withdrawn (or left with no administrator): its review closes, its USCC is free,
    its legal representative, contact and licence are erased. Returns the licence file to delete
    after commit."""
    if org.status == "pending_review":
        org.status, org.reason, org.decided_at = "withdrawn", reason, now
    reviews.withdraw_items(db, "organization", [org.id], reason, now, origin)
    org.uscc_live = None
    org.legal_representative_enc = org.contact_phone_enc = None
    paths: list[Path] = []
    if org.license_id is not None:
        licence = db.get(Document, org.license_id)
        org.license_id = None
        db.flush()
        if licence is not None:
            paths.append(uploads_dir(rt) / licence.stored_name)
            db.delete(licence)
    audit.record(db, at=now, action="organization.withdrawn", origin=origin, actor_type=actor[0], actor_id=actor[1],
                 subject_type="organization", subject_id=org.id, details={"reason": reason})
    db.flush()
    return paths


def withdraw_application(rt: Runtime, origin: audit.Origin, account_id: str, org_id: str) -> dict:
    """An administrator withdraws an application still under review (e.g. to cancel the account)."""
    now = rt.clock.now()
    with rt.db.write() as db:
        org = _org(db, org_id, lock=True)
        if not _is_admin(db, org_id, account_id):
            raise _forbidden_org()
        if org.status != "pending_review":
            raise errors.DomainError("not_under_review", "Only an application under review can be withdrawn.", 409)
        paths = _erase_organization(rt, db, org, now, "withdrawn by the applicant", origin, ("user", account_id))
        result = {"id": org.id, "status": org.status, "strict_review": org.strict_review}
    _remove_files(paths)
    return result


# --- reviewers ---------------------------------------------------------------------------------------

def review_document(rt: Runtime, origin: audit.Origin, staff_id: str, review_id: str) -> tuple[bytes, str]:
    """The file a review item points at, for a reviewer; every viewing is audited (PIPL Art. 51)."""
    item = reviews.get_review(rt, review_id)
    document_id = item["payload"].get("document_id")
    if item["queue"] not in ("real_name", "organization") or not document_id:
        raise errors.not_found("document")
    if not may_see_document(item, staff_id):
        raise errors.DomainError("claim_required", "Claim this item before you open its document.", 403)
    now = rt.clock.now()
    with rt.db.write() as db:
        document = db.get(Document, document_id)
        if document is None:
            raise errors.not_found("document")
        audit.record(db, at=now, action="document.viewed", origin=origin, actor_type="staff", actor_id=staff_id,
                     subject_type="review", subject_id=review_id, details={"document": document.id,
                                                                           "kind": document.kind})
        kind = document.content_type
    return read_document(rt, document), kind


def may_see_document(item: dict, staff_id: str) -> bool:
    """The reviewer holding the claim of a pending item, or the one who decided it."""
    return ((item["status"] == "pending" and item["claimed_by"] == staff_id)
            or (item["status"] != "pending" and item["decided_by"] == staff_id))


def document_type(rt: Runtime, document_id: str) -> str | None:
    with rt.db.read() as db:
        document = db.get(Document, document_id)
        return document.content_type if document else None


def review_subject(rt: Runtime, origin: audit.Origin, staff_id: str, review_id: str) -> dict:
    """What the reviewer compares with the document: the full name and ID number (or the legal
    representative), shown only to the reviewer holding the claim, and audited."""
    item = reviews.get_review(rt, review_id)
    if item["status"] != "pending" or item["claimed_by"] != staff_id:
        return {}
    cipher, now = rt.keys.cipher, rt.clock.now()
    with rt.db.write() as db:
        if item["queue"] == "real_name":
            attempt = db.get(Attempt, item["subject_id"])
            if attempt is None:
                return {}
            shown = {"name": cipher.decrypt(attempt.name_enc, ATTEMPT_NAME_FIELD),
                     "id_number": cipher.decrypt(attempt.id_number_enc, ATTEMPT_ID_FIELD)}
        elif item["queue"] == "organization":
            org = db.get(Organization, item["subject_id"])
            if org is None or org.legal_representative_enc is None or org.contact_phone_enc is None:
                return {}
            shown = {"legal_representative": cipher.decrypt(org.legal_representative_enc, LEGAL_REP_FIELD),
                     "contact_phone": cipher.decrypt(org.contact_phone_enc, CONTACT_FIELD)}
        else:
            return {}
        audit.record(db, at=now, action="review.personal_data_shown", origin=origin, actor_type="staff",
                     actor_id=staff_id, subject_type="review", subject_id=review_id,
                     details={"fields": sorted(shown)})
    return shown


# --- cancellation (issue 8) --------------------------------------------------------------------------

def export_account(rt: Runtime, db: Session, account_id: str) -> dict[str, Any]:
    """Issue 8's export: real-name status and data (decrypted for the owner), organisations administered."""
    cipher = rt.keys.cipher
    account = accounts.get(db, account_id)
    attempts = db.scalars(select(Attempt).where(Attempt.account_id == account_id).order_by(Attempt.created_at)).all()
    orgs = db.execute(select(Organization, OrganizationAdmin.accepted_at)
                      .join(OrganizationAdmin, OrganizationAdmin.organization_id == Organization.id)
                      .where(OrganizationAdmin.account_id == account_id).order_by(Organization.created_at)).all()
    return {
        "real_name": {
            "status": account.real_name_status,
            "name": cipher.decrypt(account.real_name_enc, NAME_FIELD) if account.real_name_enc else None,
            "id_number": cipher.decrypt(account.id_number_enc, ID_FIELD) if account.id_number_enc else None,
        },
        "verification_attempts": [{
            "provider": a.provider, "status": a.status, "reason": a.reason,
            "name": cipher.decrypt(a.name_enc, ATTEMPT_NAME_FIELD),
            "id_number": cipher.decrypt(a.id_number_enc, ATTEMPT_ID_FIELD),
            "document_uploaded": a.document_id is not None,
            "submitted_at": rfc3339(a.created_at), "decided_at": rfc3339(a.decided_at)} for a in attempts],
        "organizations": [{
            "id": o.id, "name": o.name, "uscc": o.uscc, "status": o.status,
            "role": "administrator" if accepted else "invited",
            "created_by_you": o.created_by == account_id, "created_at": rfc3339(o.created_at)} for o, accepted in orgs],
    }


def erase_account(rt: Runtime, db: Session, account_id: str) -> None:
    """Issue 8's finalisation: delete verification attempts, uploaded documents and administrator rows
    (and invitations) of the account; close its pending review items and scrub their payload. An
    organisation left with no administrator that is not verified (an application under review or
    rejected) is withdrawn: USCC released, legal representative, contact and licence erased. A verified
    one stays with the platform's records (cancellation_blockers keeps it from losing its last one)."""
    now, origin = rt.clock.now(), audit.Origin(channel="worker")
    attempt_ids = list(db.scalars(select(Attempt.id).where(Attempt.account_id == account_id)).all())
    reviews.withdraw_items(db, "realname_attempt", attempt_ids, ACCOUNT_CANCELLED_REASON, now, origin)
    org_ids = db.scalars(select(OrganizationAdmin.organization_id)
                         .where(OrganizationAdmin.account_id == account_id)).all()
    paths: list[Path] = []
    for org_id in org_ids:
        org = _org(db, org_id, lock=True)
        if org.status != "verified" and _active_admins(db, org_id, excluding=account_id) == 0:
            paths += _erase_organization(rt, db, org, now, ACCOUNT_CANCELLED_REASON, origin, ("system", None))
    licences = select(Organization.license_id).where(Organization.license_id.is_not(None))
    documents = db.scalars(select(Document).where(Document.account_id == account_id,
                                                  Document.id.not_in(licences))).all()
    db.execute(delete(Attempt).where(Attempt.account_id == account_id))
    db.execute(delete(OrganizationAdmin).where(OrganizationAdmin.account_id == account_id))
    paths += [uploads_dir(rt) / document.stored_name for document in documents]
    for document in documents:
        db.delete(document)
    # The files go once the rows are gone for good: a rolled-back finalisation keeps both.
    event.listen(db, "after_commit", lambda _session: _remove_files(paths), once=True)
    account = accounts.get(db, account_id)
    account.real_name_status = "none"
    account.real_name_enc = account.id_number_enc = account.id_number_bidx = None
    db.flush()


def cancellation_blockers(rt: Runtime, db: Session, account_id: str) -> list[dict[str, Any]]:
    """Issue 8: organisations, verified or under review, of which this account is the last
    administrator ``[{"organization_id", "name"}]`` (administrators who have only been invited, or whose
    own account is being cancelled, do not count); cancellation asks to hand over or dissolve them
    first, or to withdraw the application (``withdraw_application``)."""
    other = aliased(OrganizationAdmin)
    others = (select(func.count()).select_from(other)
              .join(accounts.Account, accounts.Account.id == other.account_id)
              .where(other.organization_id == Organization.id, other.account_id != account_id,
                     other.accepted_at.is_not(None), accounts.Account.status.not_in(LEAVING))
              .correlate(Organization).scalar_subquery())
    rows = db.execute(select(Organization.id, Organization.name)
                      .join(OrganizationAdmin, OrganizationAdmin.organization_id == Organization.id)
                      .where(OrganizationAdmin.account_id == account_id, OrganizationAdmin.accepted_at.is_not(None),
                             Organization.status.in_(("verified", "pending_review")), others == 0)
                      .order_by(Organization.created_at)).all()
    return [{"organization_id": r.id, "name": r.name} for r in rows]
