"""Changing the account's mobile number (issue 15, "close the account-takeover path").

The number is what the recovery key, the SMS password reset and the "my account was stolen" freeze
reach the owner by, so the password alone (perhaps leaked) never moves it:

- the normal path proves the OLD number too: a ``change_phone_old`` code sent to it, the password and
  a ``change_phone`` code sent to the new number; the change is immediate;
- an owner who lost the old number proves the recovery key instead: the change is ``held`` for
  ``PASSPORT_PHONE_CHANGE_HOLD_DAYS`` while the old number, the email and the inbox are told, each
  with a "this was not me" link that cancels it and freezes the account; the owner may also cancel it
  while signed in; then the worker applies it (``apply_due``), if the new number is still free.

Every completed change ends the account's other sessions; the one that made it gets a new token.
Whether the new number belongs to another account is said only to whoever proved holding it (409
``phone_taken`` after its code), never on the way there; a held change that finds the number taken
fails with a notice that does not say why.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from passport import errors
from passport.accounts import refusals
from passport.accounts import service as accounts
from passport.audit import service as audit
from passport.clock import as_utc, china_time, rfc3339
from passport.credentials import codes
from passport.credentials import service as credentials
from passport.credentials.models import NEW_PHONE, PhoneChange
from passport.db import new_id
from passport.identity.phone import mask_phone
from passport.notify import outbox
from passport.runtime import Runtime
from passport.security.tokens import b64, keyed_digest, normalize_recovery_key, same
from passport.sessions import service as sessions
from passport.work import SYSTEM, Work, unit_of_work

log = structlog.get_logger("passport.credentials.phone")

HELD = "held"
# Who may start a held change, and whose held change the worker applies.
CHANGEABLE = frozenset({"active", "restricted"})
_WORKER = audit.Origin(channel="worker")
_NOT_ME = "/phone-change/not-me"


# --- the normal path: old number + password + new number ---------------------------------------------

def change_phone(rt: Runtime, origin: audit.Origin, principal: sessions.Principal, *, phone: str, code: str,
                 old_code: str | None, password: str) -> tuple[sessions.Issued, dict[str, Any]]:
    """Move the account to a new number at once: a ``change_phone_old`` code proves the holder of the
    current number agrees, the password proves the user, a ``change_phone`` code proves the new number
    is theirs. Every other session ends; this client gets a new session (returned with the account)."""
    account_id = principal.account_id
    target = accounts.sms_target(rt, phone)
    with rt.db.read() as db:
        account = accounts.get(db, account_id)
    if account.phone_bidx in target.lookup:
        raise _same_phone()
    now = rt.clock.now()
    old_phone = accounts.phone_of(rt, account)
    details = {"method": "old_phone_code", "from": mask_phone(old_phone) if old_phone else None,
               "to": mask_phone(target.value)}
    if not old_code:
        _refused(rt, origin, account_id, now, details | {"reason": "old_code_required"})
        raise old_code_required()
    old_target = codes.own_target(rt, account)
    if not credentials.password_matches(rt, account, password):
        _refused(rt, origin, account_id, now, details | {"reason": "wrong_password"})
        raise credentials.wrong_password()
    reason, issued = None, None
    try:
        with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
            if not _redeemed(work, old_target, codes.Purpose.CHANGE_PHONE_OLD, old_code):
                reason = "invalid_old_code"
            elif not _redeemed(work, target, codes.Purpose.CHANGE_PHONE, code):
                reason = "invalid_code"
            elif _held_by_another(work, target, account_id):
                reason = "phone_taken"
            if reason:
                work.audit("phone.change", result="failed", subject=("account", account_id),
                           details=details | {"reason": reason})
            else:
                issued = _move(work, account, target, details, keep=principal)
    except IntegrityError:  # the number was taken by a commit since it was read
        raise _phone_taken() from None
    if reason:
        raise {"invalid_old_code": invalid_old_code, "invalid_code": credentials.wrong_code,
               "phone_taken": _phone_taken}[reason]()
    with rt.db.read() as db:
        return issued, accounts.view(rt, accounts.get(db, account_id))


def _move(work: Work, account, target: accounts.Target, details: dict[str, Any], *,
          keep: sessions.Principal | None, change: PhoneChange | None = None) -> sessions.Issued | None:
    """Write the new number over the one read (of two changes at once, the second changes nothing),
    end every session but ``keep``'s, which is rotated, and close any held change. The old number
    (and the email, if bound) is told: queued first, the SMS goes to the old number."""
    rt, db, account_id = work.rt, work.db, account.id
    work.notify(account_id, "phone_changed", {"time": china_time(work.at)}, channels=("inbox", "sms", "email"))
    changed = db.execute(
        update(accounts.Account)
        .where(accounts.Account.id == account_id, accounts.Account.phone_bidx.is_not_distinct_from(account.phone_bidx))
        .values(phone_enc=rt.keys.cipher.encrypt(target.value, accounts.PHONE_FIELD, account_id),
                phone_bidx=target.bidx, updated_at=work.at)
    ).rowcount
    if not changed:  # rolls back the notice and leaves the codes for another try
        raise errors.DomainError("conflict", "The account changed meanwhile. Please try again.", 409)
    revoked = sessions.revoke_all(rt, db, account_id, keep_session_id=keep.session_id if keep else None)
    issued = None
    if keep is not None:
        issued = sessions.rotate(rt, db, keep, work.origin)
        if issued is None:  # this session ended meanwhile (logout, revoked elsewhere): change nothing
            raise errors.not_authenticated()
    if change is not None:
        change.status, change.outcome, change.closed_at, change.new_phone_enc = "applied", "applied", work.at, None
    else:
        credentials.cancel_held_phone_change(work, account_id, "superseded")
    work.audit("phone.changed", subject=("account", account_id),
               details=details | {"sessions_revoked": revoked, "session_rotated": issued is not None}
               | ({"change": change.id} if change is not None else {}))
    work.after_commit(partial(sessions.forget_sessions, rt, account_id=account_id))
    return issued


# --- the lost-number path: recovery key + password + new number, then a hold ------------------------

def request_held_change(rt: Runtime, origin: audit.Origin, principal: sessions.Principal, *, phone: str, code: str,
                        recovery_key: str, password: str) -> dict[str, Any]:
    """Start a change without the old number: the recovery key and the password prove the user, a
    ``change_phone`` code the new number. Nothing changes yet: the change is held for
    ``phone_change_hold_days`` and the old number, the email and the inbox are told, with a link that
    cancels it and freezes the account."""
    account_id = principal.account_id
    target = accounts.sms_target(rt, phone)
    with rt.db.read() as db:
        account = accounts.get(db, account_id)
    if account.status not in CHANGEABLE:
        raise _not_changeable()
    if account.phone_bidx in target.lookup:
        raise _same_phone()
    now = rt.clock.now()
    details = {"method": "recovery_key", "to": mask_phone(target.value)}
    if not credentials.password_matches(rt, account, password):
        _refused(rt, origin, account_id, now, details | {"reason": "wrong_password"})
        raise credentials.wrong_password()
    if not _recovery_key_matches(rt, account, recovery_key):
        _refused(rt, origin, account_id, now, details | {"reason": "invalid_recovery_key"})
        raise invalid_recovery_key()
    effective_at = now + timedelta(days=rt.settings.phone_change_hold_days)
    reason, change = None, None
    try:
        with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
            if _held(work, account_id) is not None:  # refused before the code is used
                reason = "pending"
            elif not _redeemed(work, target, codes.Purpose.CHANGE_PHONE, code):
                reason = "invalid_code"
            elif _held_by_another(work, target, account_id):
                reason = "phone_taken"
            if reason:
                work.audit("phone.change", result="denied" if reason == "pending" else "failed",
                           subject=("account", account_id), details=details | {"reason": reason})
            else:
                change_id = new_id()
                change = PhoneChange(id=change_id, account_id=account_id, status=HELD, requested_at=now,
                                     effective_at=effective_at,
                                     new_phone_enc=rt.keys.cipher.encrypt(target.value, NEW_PHONE, change_id))
                work.db.add(change)
                work.db.flush()
                work.audit("phone.change_held", subject=("account", account_id),
                           details=details | {"change": change.id, "effective_at": rfc3339(effective_at)})
                # The old number (by SMS), the email if bound and the inbox, each with the link.
                work.notify(account_id, "phone_change_held",
                            {"change": change.id, "to": mask_phone(target.value), "time": china_time(now),
                             "effective_at": china_time(effective_at)}, channels=("inbox", "sms", "email"))
    except IntegrityError:  # another request won the one held row
        raise _pending_already() from None
    if reason:
        raise {"pending": _pending_already, "invalid_code": credentials.wrong_code,
               "phone_taken": _phone_taken}[reason]()
    log.info("phone.change_held", change=change.id, effective_at=rfc3339(effective_at))
    return _view(rt, change, now)


def pending(rt: Runtime, account_id: str) -> dict[str, Any] | None:
    """The account's held change (``GET /me/phone-change``), or None."""
    with rt.db.read() as db:
        change = db.scalars(select(PhoneChange).where(PhoneChange.account_id == account_id,
                                                      PhoneChange.status == HELD)).first()
    return _view(rt, change, rt.clock.now()) if change else None


def cancel_by_owner(rt: Runtime, origin: audit.Origin, account_id: str) -> None:
    """The signed-in owner cancels the held change; 404 when none is held (or it was applied)."""
    _cancel(rt, origin, account_id, "owner", actor=("user", account_id))


def cancel_by_operator(rt: Runtime, origin: audit.Origin, account_id: str) -> None:
    """``passport phone-changes cancel``: customer service stops a held change the owner called about."""
    _cancel(rt, origin, account_id, "operator", actor=SYSTEM)


def _cancel(rt: Runtime, origin: audit.Origin, account_id: str, by: str, *, actor) -> None:
    with unit_of_work(rt, origin, actor=actor) as work:
        change = credentials.cancel_held_phone_change(work, account_id, by)
        if change is None:
            raise errors.not_found("phone_change")
        work.notify(account_id, "phone_change_cancelled", {"time": china_time(work.at)},
                    channels=("inbox", "sms", "email"))
    log.info("phone.change_cancelled", change=change.id, by=by)


def list_held(rt: Runtime, limit: int = 200) -> list[dict[str, Any]]:
    """Operators: the held changes, soonest first, the new number masked."""
    with rt.db.read() as db:
        rows = db.scalars(select(PhoneChange).where(PhoneChange.status == HELD)
                          .order_by(PhoneChange.effective_at).limit(limit)).all()
        now = rt.clock.now()
        return [_view(rt, change, now) | {"account_id": change.account_id} for change in rows]


# --- "this was not me" ------------------------------------------------------------------------------

def not_me_token(rt: Runtime, change_id: str) -> str:
    """``<change id>.<MAC>``: signed, so nothing about it is stored; it works once, while the change
    is held (it cancels it)."""
    return f"{change_id}.{b64(keyed_digest(rt.keys.secret, 'phone_change.not_me', change_id)[:16])}"


def _not_me_link(rt: Runtime, params: dict[str, Any]) -> dict[str, str]:
    change_id = str(params.get("change", ""))
    return {"not_me_url": f"{rt.settings.base_url.rstrip('/')}{_NOT_ME}?token={not_me_token(rt, change_id)}"}


# The link is computed whenever the notice is rendered, from the change id it stores: the outbox and
# the inbox never hold it.
outbox.compute_params("phone_change_held", _not_me_link)


def _change_of(rt: Runtime, token: str | None) -> str | None:
    change_id, _, _mac = (token or "").partition(".")
    if len(change_id) != 32 or not change_id.isalnum() or not same(not_me_token(rt, change_id), token or ""):
        return None
    return change_id


def link_is_live(rt: Runtime, token: str | None) -> bool:
    """Whether the link still cancels a held change (the page says so before the button)."""
    change_id = _change_of(rt, token)
    if change_id is None:
        return False
    with rt.db.read() as db:
        return db.scalar(select(PhoneChange.id).where(PhoneChange.id == change_id,
                                                      PhoneChange.status == HELD)) is not None


def not_me(rt: Runtime, origin: audit.Origin, token: str) -> bool:
    """Follow the "this was not me" link, no login needed: the held change is cancelled and the
    account frozen as "my account was stolen" does (every session ends; the owner unfreezes with an
    SMS code and the recovery key). Returns whether the account could be frozen (a status the
    platform set stays). 400 ``invalid_link`` when the link is forged or its change no longer held."""
    rt.limiter.hit(f"{rt.settings.recovery_per_ip_hour}/hour", "recovery-ip", origin.ip or "-")
    change_id = _change_of(rt, token)
    frozen = None
    with unit_of_work(rt, origin) as work:
        change = work.db.scalars(select(PhoneChange).where(PhoneChange.id == change_id)
                                 .with_for_update()).first() if change_id else None
        if change is None or change.status != HELD:
            work.audit("phone.change_not_me", result="failed",
                       subject=("account", change.account_id) if change else None,
                       details={"reason": "invalid_link", "change": change.id if change else None})
        else:
            account_id = change.account_id
            credentials.cancel_held_phone_change(work, account_id, "not_me")
            work.notify(account_id, "phone_change_cancelled", {"time": china_time(work.at)},
                        channels=("inbox", "sms", "email"))
            status = work.db.scalar(select(accounts.Account.status).where(accounts.Account.id == account_id))
            frozen = credentials.freeze_within(work, account_id, status, "phone_change_link")
    if frozen is None:
        raise invalid_link()
    log.info("phone.change_cancelled", change=change_id, by="not_me", frozen=frozen)
    return frozen


# --- the worker: apply the held changes whose hold ended ----------------------------------------------

def apply_due(rt: Runtime, limit: int = 50) -> int:
    """Worker job: apply up to ``limit`` held changes whose hold ended, one transaction each; returns
    how many were closed (applied or failed). On PostgreSQL each worker claims its rows with
    FOR UPDATE SKIP LOCKED, so any number can run."""
    done = 0
    while done < limit:
        now = rt.clock.now()
        try:
            with unit_of_work(rt, _WORKER, actor=SYSTEM, at=now) as work:
                change = work.db.scalars(
                    select(PhoneChange).where(PhoneChange.status == HELD, PhoneChange.effective_at <= now)
                    .order_by(PhoneChange.effective_at).limit(1).with_for_update(skip_locked=True)).first()
                if change is None:
                    return done
                change_id = change.id
                _apply(work, change)
        except IntegrityError:  # the number was registered since it was checked: fail it on its own
            with unit_of_work(rt, _WORKER, actor=SYSTEM, at=now) as work:
                change = work.db.scalars(select(PhoneChange).where(PhoneChange.id == change_id,
                                                                   PhoneChange.status == HELD)
                                         .with_for_update()).first()
                if change is not None:
                    _fail(work, change, "phone_taken")
        done += 1
    return done


def _apply(work: Work, change: PhoneChange) -> None:
    rt, db = work.rt, work.db
    account = db.scalars(select(accounts.Account).where(accounts.Account.id == change.account_id)
                         .with_for_update()).one()
    if account.status not in CHANGEABLE:
        _fail(work, change, "account_status")
        return
    target = accounts.sms_target(rt, _new_phone_of(rt, change))
    if account.phone_bidx in target.lookup or _held_by_another(work, target, account.id):
        _fail(work, change, "phone_taken")
        return
    old_phone = accounts.phone_of(rt, account)
    _move(work, account, target, {"method": "recovery_key", "from": mask_phone(old_phone) if old_phone else None,
                                  "to": mask_phone(target.value)}, keep=None, change=change)
    log.info("phone.changed", change=change.id, method="recovery_key")


def _fail(work: Work, change: PhoneChange, reason: str) -> None:
    """The change cannot be made: closed, the number it kept dropped, the owner told without the reason
    (it might say that another account holds the number)."""
    change.status, change.outcome, change.closed_at, change.new_phone_enc = "failed", reason, work.at, None
    work.audit("phone.change_failed", subject=("account", change.account_id),
               details={"change": change.id, "reason": reason})
    work.notify(change.account_id, "phone_change_failed", {"time": china_time(change.requested_at)},
                channels=("inbox", "sms", "email"))
    log.info("phone.change_failed", change=change.id, reason=reason)


def erase_account(work: Work, account_id: str) -> int:
    """Cancellation finalisation: a held change is cancelled and no row keeps a new number."""
    credentials.cancel_held_phone_change(work, account_id, "cancelled")
    return work.db.execute(update(PhoneChange).where(PhoneChange.account_id == account_id,
                                                     PhoneChange.new_phone_enc.is_not(None))
                           .values(new_phone_enc=None)).rowcount


# --- pieces ------------------------------------------------------------------------------------------

def _view(rt: Runtime, change: PhoneChange, now: datetime) -> dict[str, Any]:
    effective = as_utc(change.effective_at)
    new_phone = _new_phone_of(rt, change)
    return {"id": change.id, "status": change.status, "phone": mask_phone(new_phone) if new_phone else None,
            "requested_at": rfc3339(change.requested_at), "effective_at": rfc3339(effective),
            "seconds_left": max(0, int((effective - now).total_seconds()))}


def _new_phone_of(rt: Runtime, change: PhoneChange) -> str | None:
    return rt.keys.cipher.decrypt(change.new_phone_enc, NEW_PHONE, change.id) if change.new_phone_enc else None


def _held(work: Work, account_id: str) -> PhoneChange | None:
    return work.db.scalars(select(PhoneChange).where(PhoneChange.account_id == account_id,
                                                     PhoneChange.status == HELD).with_for_update()).first()


def _redeemed(work: Work, target: accounts.Target, purpose: codes.Purpose, code: str | None) -> bool:
    return codes.redeem_code(work.rt, work.db, target, purpose, code or "") is codes.Redeemed.OK


def _held_by_another(work: Work, target: accounts.Target, account_id: str) -> bool:
    """Another live account holds the number, or it is refused re-registration (issue 18): the same
    answer (``phone_taken``, after the new number's code), so the refusal tells no one more."""
    holder = accounts.find(work.db, target)
    if holder is not None and holder.id != account_id:
        return True
    if refusals.is_refused(work.db, "phone", target.lookup, work.at):
        work.audit("registration.refusal_met", subject=("account", account_id), details={"check": "phone_change"})
        return True
    return False


def _recovery_key_matches(rt: Runtime, account, raw_key: str | None) -> bool:
    """One Argon2 verification; tries are capped per account as for the reset by key."""
    rt.limiter.hit(f"{rt.settings.recovery_key_per_phone_hour}/hour", "recovery-key",
                   account.phone_bidx.hex() if account.phone_bidx else account.id)
    return bool(account.recovery_key_hash) and rt.hasher.verify(account.recovery_key_hash,
                                                                normalize_recovery_key(raw_key or ""))


def _refused(rt: Runtime, origin: audit.Origin, account_id: str, now: datetime, details: dict[str, Any]) -> None:
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        work.audit("phone.change", result="failed", subject=("account", account_id), details=details)


def old_code_required() -> errors.DomainError:
    return errors.invalid("old_code_required", "Enter the code sent to your current mobile number. If you no longer "
                          "have it, change the number with your recovery key instead.", "old_code", status=400)


def invalid_old_code() -> errors.DomainError:
    return errors.invalid("invalid_old_code", "The code for your current mobile number is wrong or has expired.",
                          "old_code", status=400)


def invalid_recovery_key() -> errors.DomainError:
    return errors.invalid("invalid_recovery_key", "The recovery key is wrong.", "recovery_key", status=400)


def invalid_link() -> errors.DomainError:
    return errors.DomainError("invalid_link", "This link is no longer valid. If your account was stolen, freeze it "
                              "with your mobile number.", 400)


def _same_phone() -> errors.DomainError:
    return errors.invalid("same_phone", "This is already your mobile number.", "phone")


def _phone_taken() -> errors.DomainError:
    return errors.DomainError("phone_taken", "This mobile number is already registered. Please log in.", 409,
                              [errors.FieldError("phone", "phone_taken", "already registered")])


def _pending_already() -> errors.DomainError:
    return errors.DomainError("phone_change_pending",
                              "A change of your mobile number is already waiting. Cancel it first.", 409)


def _not_changeable() -> errors.DomainError:
    return errors.DomainError("phone_change_not_allowed",
                              "The mobile number cannot be changed in this account's current status.", 409)
