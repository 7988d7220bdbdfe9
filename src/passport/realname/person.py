"""Real-name verification of persons (GB 11643 ID numbers) through the configured provider or a reviewer."""

from __future__ import annotations

from datetime import date, timedelta
from functools import partial
from pathlib import Path

import structlog
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts import refusals
from passport.accounts import service as accounts
from passport.audit import service as audit
from passport.clock import CHINA_TIME, china_time, rfc3339
from passport.db import new_id
from passport.identity.resident_id import (
    InvalidIdNumber,
    InvalidName,
    mask_id_number,
    mask_person_name,
    normalize_person_name,
    parse_id_number,
)
from passport.notify import outbox
from passport.realname.documents import (
    ID_DOCUMENT_TYPES,
    Upload,
    add_document,
    check_upload,
    remove_files,
    write_file,
)
from passport.realname.models import ATTEMPT_ID_NUMBER, ATTEMPT_NAME, Attempt
from passport.realname.providers import Outcome, ProviderUnavailable, make_provider
from passport.reviews import service as reviews
from passport.runtime import Runtime
from passport.sessions import service as sessions
from passport.work import SYSTEM, Work, unit_of_work

log = structlog.get_logger("passport.realname")



NAME_FIELD, ID_FIELD = accounts.REAL_NAME, accounts.ID_NUMBER


ATTEMPT_NAME_FIELD, ATTEMPT_ID_FIELD = ATTEMPT_NAME, ATTEMPT_ID_NUMBER


SUBMISSIONS_PER_DAY = "10/day"


STALE_CHECK = timedelta(minutes=10)  # far beyond (retries + 1) × timeout of any provider call


# Accounts on their way out: they neither count as an organisation's administrator nor may write data.
LEAVING = ("cancelling", "cancelled")


ACCOUNT_CANCELLED_REASON = "account cancelled"


ID_MESSAGES = {
    "length": "An ID number has 18 characters.",
    "format": "The first 17 characters of the ID number must be digits, the last a digit or X.",
    "region": "The first two digits of the ID number are not a province code.",
    "date": "The birth date in the ID number is not a real, past date.",
    "sequence": "The sequence code in the ID number is not valid.",
    "check": "The last character of the ID number (the check character) does not match. Check for a typing "
             "mistake.",
}


NAME_MESSAGES = {
    "length": "The name must be 2 to 30 characters.",
    "dot": "A middle dot (·) may only separate two parts of the name.",
    "characters": "Enter the name in Chinese characters, exactly as on the ID document.",
}


def _invalid_id(exc: InvalidIdNumber) -> errors.DomainError:
    message = ID_MESSAGES[exc.part]
    return errors.DomainError("invalid_id_number", message, 422,
                              [errors.FieldError("id_number", "invalid_id_number", message)], extra={"part": exc.part})


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


def _lock_id_number(db: Session, bidx: bytes) -> None:
    """PostgreSQL: one transaction at a time per ID number (SQLite write transactions are serial)."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": int.from_bytes(bidx[:8], "big", signed=True)})


def account_for_update(db: Session, account_id: str):
    account = db.scalars(select(accounts.Account).where(accounts.Account.id == account_id).with_for_update()).first()
    if account is None:
        raise errors.not_found("account")
    return account


def account_closed() -> errors.DomainError:
    return errors.DomainError("account_cancelled", "This account has been cancelled.", 403)


def _release_stale_checks(work: Work, lookup: tuple[bytes, bytes], account_id: str) -> list[str]:
    """A provider check that never settled (the process died while waiting) holds its ID number and
    leaves its account pending: after STALE_CHECK it is released, by the next submission that meets it."""
    db, now = work.db, work.at
    stale = db.scalars(select(Attempt).where(
        Attempt.status == "pending", Attempt.provider != "manual", Attempt.created_at < now - STALE_CHECK,
        Attempt.id_number_bidx.in_(lookup) | (Attempt.account_id == account_id))).all()
    for attempt in stale:
        attempt.status, attempt.reason, attempt.decided_at = "failed", "interrupted", now
        holder = account_for_update(db, attempt.account_id)
        if holder.real_name_status == "pending" and holder.id_number_bidx == attempt.id_number_bidx:
            holder.real_name_status = "none"
            holder.real_name_enc = holder.id_number_enc = holder.id_number_bidx = None
            holder.updated_at = now
        work.audit("realname.check", result="failed", actor=SYSTEM, subject=("account", attempt.account_id),
                   details={"provider": attempt.provider, "attempt": attempt.id, "error": "interrupted"})
    return [attempt.account_id for attempt in stale]


def holders_of(db: Session, lookup: tuple[bytes, bytes], except_account: str) -> int:
    """Live accounts verified with this ID number (a pending claim holds no place: the identity
    check, not the order of submissions, decides; see ``submit_person``); ``lookup``: its blind index
    under the current and the previous key."""
    return db.scalar(select(func.count()).select_from(accounts.Account).where(
        accounts.Account.id_number_bidx.in_(lookup), accounts.Account.id != except_account,
        accounts.Account.status != "cancelled", accounts.Account.real_name_status == "verified")) or 0


def submit_person(rt: Runtime, origin: audit.Origin, account_id: str, *, name: str, id_number: str,
                  document: Upload | None = None) -> dict:
    """Check, record the attempt, ask the provider. Returns ``{"status","reason","provider"}``:
    verified or rejected at once (http, dev), pending for a reviewer (manual).

    Why the per-ID-number account limit (409 ``id_number_limit``) is applied only after the identity
    check, and only to an identity that passed it (issue 15): applied first, it answered a probe —
    any name with someone else's ID number — whether that number is verified on some account,
    before anything proved the prober is that person. Now the check runs first, for used and unused
    numbers alike, so a probe with a wrong name meets the same path (one provider call, the same
    timing class) and the same answer, 200 ``rejected`` / ``name_id_mismatch``, whether or not the
    number is in use; a manual submission is ``pending`` either way. Only when the register says
    the name and the number belong together is the limit applied (under the number's lock, against
    accounts *verified* with it, so of two simultaneous matches exactly one wins, and a pending
    claim cannot block the real holder): then the answer is 409 ``id_number_limit``. Whoever gets it
    has shown the name that goes with the number — the person themselves, who must learn that their
    number is used elsewhere to contest it (COMPLIANCE R3), or someone who already holds both,
    which the register check cannot tell apart and this answer adds little to. A reviewer's approval
    meets the same limit (``_settle``)."""
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
    lookup = rt.keys.blind_index.lookup("id_number", resident.number)
    bidx = lookup[0]
    masked = {"name": mask_person_name(name), "id_number": mask_id_number(resident.number)}
    cipher, now = rt.keys.cipher, rt.clock.now()
    refused: errors.DomainError | None = None
    written: list[Path] = []
    try:
        stored = write_file(rt, document, doc_type, written) if doc_type else None
        with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
            db = work.db
            _lock_id_number(db, bidx)
            released = _release_stale_checks(work, lookup, account_id)
            account = account_for_update(db, account_id)
            previous = account.real_name_status
            if account.status == "cancelled":  # a stale cached session must not write onto a tombstone
                refused = account_closed()
            elif previous == "verified":
                refused = errors.DomainError("already_verified", "Your real name is already verified.", 409)
            elif previous == "pending":
                refused = errors.DomainError("verification_pending",
                                             "Your verification is waiting for a reviewer.", 409)
            if refused is not None:
                work.audit("realname.submit", result="failed", subject=("account", account_id),
                           details={"reason": refused.code, "id_number": masked["id_number"]})
            else:
                doc = add_document(db, account_id, "id_document", stored, now) if stored else None
                attempt_id = new_id()
                attempt = Attempt(id=attempt_id, account_id=account_id, provider=provider.name, status="pending",
                                  name_enc=cipher.encrypt(name, ATTEMPT_NAME_FIELD, attempt_id),
                                  id_number_enc=cipher.encrypt(resident.number, ATTEMPT_ID_FIELD, attempt_id),
                                  id_number_bidx=bidx, document_id=doc.id if doc else None, created_at=now)
                db.add(attempt)
                account.real_name_status = "pending"
                account.real_name_enc = cipher.encrypt(name, NAME_FIELD, account.id)
                account.id_number_enc = cipher.encrypt(resident.number, ID_FIELD, account.id)
                account.id_number_bidx = bidx
                account.updated_at = now
                db.flush()
                if doc is not None:
                    attempt.review_id = reviews.enqueue(
                        db, "real_name", "realname_attempt", attempt.id,
                        masked | {"account_id": account_id, "age": resident.age_on(today_in_china(rt)),
                                  "document_id": doc.id, "residence_permit": resident.is_residence_permit},
                        work.at, work.origin)
                work.audit("realname.submitted", subject=("account", account_id),
                           details={"provider": provider.name, "attempt": attempt.id} | masked)
    except BaseException:
        remove_files(written)
        raise
    # The cache drops stay out of the try (not after_commit): nothing after the commit may reach the
    # except above and delete the upload a committed attempt points at.
    for released_id in released:
        sessions_forget(rt, released_id)
    if refused is not None:
        remove_files(written)
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
            outcome = _settle(rt, db, settled, outcome, origin, actor=("system", None))
    sessions_forget(rt, account_id)
    if outcome.reason == LIMIT_REASON:
        raise _id_number_limit()
    return {"status": outcome.status, "reason": outcome.reason, "provider": provider.name}


def sessions_forget(rt: Runtime, account_id: str) -> None:
    """/me reads the account through the per-process session cache: drop this account's entries."""
    sessions.forget_sessions(rt, account_id=account_id)


def _provider_failed(rt: Runtime, origin: audit.Origin, attempt_id: str, previous: str, error: str) -> None:
    """No trustworthy answer: the reservation is released and the account is as it was."""
    now = rt.clock.now()
    with unit_of_work(rt, origin, actor=SYSTEM, at=now) as work:
        attempt = work.db.get(Attempt, attempt_id)
        attempt.status, attempt.reason, attempt.decided_at = "failed", "provider_unavailable", now
        account = account_for_update(work.db, attempt.account_id)
        if account.real_name_status == "pending":
            account.real_name_status = previous
            account.real_name_enc = account.id_number_enc = account.id_number_bidx = None
            account.updated_at = now
        work.audit("realname.check", result="failed", subject=("account", attempt.account_id),
                   details={"provider": attempt.provider, "attempt": attempt.id, "error": error[:100]})
        work.after_commit(partial(sessions_forget, rt, attempt.account_id))


LIMIT_REASON = "id_number_limit"


def _settle(rt: Runtime, db: Session, attempt: Attempt, outcome: Outcome, origin: audit.Origin,
            actor: tuple[str, str | None]) -> Outcome:
    """The provider's or the reviewer's answer, in the caller's transaction; returns it as settled.
    A match for an ID number already verified on as many accounts as allowed is settled as rejected
    (reason ``id_number_limit``), under the number's lock (see ``submit_person``)."""
    now = rt.clock.now()
    if outcome.status == "verified":
        # Under the current and the previous blind-index key (the attempt keeps the one it was made under).
        lookup = rt.keys.blind_index.lookup(
            "id_number", rt.keys.cipher.decrypt(attempt.id_number_enc, ATTEMPT_ID_NUMBER, attempt.id))
        _lock_id_number(db, lookup[0])
        if holders_of(db, lookup, attempt.account_id) >= rt.settings.realname_accounts_per_id:
            outcome = Outcome("rejected", reference=outcome.reference, reason=LIMIT_REASON)
        elif refusals.is_refused(db, "id_number", lookup, now):
            # Refused re-registration (issue 18): the answer the limit gives, so the refusal tells no more.
            audit.record(db, at=now, action="registration.refusal_met", origin=origin, actor_type=actor[0],
                         actor_id=actor[1], subject_type="account", subject_id=attempt.account_id,
                         details={"check": "real_name", "attempt": attempt.id})
            outcome = Outcome("rejected", reference=outcome.reference, reason=LIMIT_REASON)
    account = account_for_update(db, attempt.account_id)
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
    return outcome


def _reason_text(reason: str | None) -> str | dict[str, str]:
    if reason == "name_id_mismatch":
        return {"zh-CN": "姓名与身份证号不一致", "en": "the name does not match the ID number"}
    if reason == LIMIT_REASON:
        return {"zh-CN": "该身份证号已实名认证的账号数已达上限", "en": "this ID number is already verified on as many "
                "accounts as allowed"}
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
    with unit_of_work(rt, origin, actor=actor, at=now) as work:
        db = work.db
        account = account_for_update(db, account_id)
        if account.real_name_status not in ("verified", "pending"):
            raise errors.DomainError("not_verified", "This account has no verification to withdraw.", 409)
        for attempt in db.scalars(select(Attempt).where(Attempt.account_id == account_id,
                                                        Attempt.status.in_(("verified", "pending")))).all():
            attempt.status, attempt.reason, attempt.decided_at = "revoked", reason, now
        account.real_name_status = "none"
        account.real_name_enc = account.id_number_enc = account.id_number_bidx = None
        account.updated_at = now
        work.audit("realname.revoked", subject=("account", account_id), details={"reason": reason})
        work.notify(account_id, "realname_person_revoked", {"reason": reason})
        result = real_name_view(rt, account)
        work.after_commit(partial(sessions_forget, rt, account_id))
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
    name = cipher.decrypt(account.real_name_enc, NAME_FIELD, account.id) if account.real_name_enc else None
    number = cipher.decrypt(account.id_number_enc, ID_FIELD, account.id) if account.id_number_enc else None
    return {"status": account.real_name_status, "name": mask_person_name(name) if name else None,
            "id_number": mask_id_number(number) if number else None}
