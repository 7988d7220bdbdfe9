"""Verification codes (COMPLIANCE C6, API.md "Verification codes") and the credential lifecycle
(API.md "Credentials", COMPLIANCE C2, C4, C5): change and reset the password, regenerate the
recovery key, freeze and unfreeze a stolen account.

Codes: six digits, bound to one purpose and one target, valid five minutes, single use, at most five
wrong tries. Per number: one send a minute, five an hour, ten a day; per IP: an hourly cap.
Only an HMAC of the code is stored. The answer is the same whether or not an account exists.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts import service as accounts
from passport.audit import service as audit
from passport.clock import china_time
from passport.credentials import codes
from passport.credentials.models import PhoneChange
from passport.runtime import Runtime
from passport.security.policy import check_password
from passport.security.tokens import new_recovery_key, normalize_recovery_key
from passport.sessions import service as sessions
from passport.work import Work, unit_of_work

# Unfreezing makes an account active again, so only an active account can be frozen: freezing one the
# platform restricted or suspended would let whoever unfreezes it lift that.
FREEZABLE = frozenset({"active", "frozen"})
_accounts = accounts.Account.__table__


def change_password(rt: Runtime, origin: audit.Origin, principal: sessions.Principal, *, current_password: str,
                    new_password: str) -> sessions.Issued:
    """The current password proves the user (C2); every session ends, this one included, and this
    client gets a new session (returned): a token taken before the change stops working."""
    account_id = principal.account_id
    with rt.db.read() as db:
        account = accounts.get(db, account_id)
    phone = accounts.phone_of(rt, account)
    _check_new_password(rt, new_password, phone)
    now = rt.clock.now()
    if not password_matches(rt, account, current_password):
        _record_wrong_password(rt, origin, account_id, "password.change", now)
        raise errors.invalid("invalid_password", "The current password is wrong.", "current_password", status=400)
    if new_password == current_password:
        raise errors.invalid("same_password", "The new password must differ from the current one.", "new_password")
    # Hashed before the unit of work opens: the write lock is never held across an Argon2 run.
    password_hash = rt.hasher.hash(new_password)
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        # Only over the password just verified: of two changes at once, the second finds it gone.
        changed = _set_password(work.db, account_id, password_hash, now, expected=account.password_hash)
        if changed:
            revoked = sessions.revoke_all(rt, work.db, account_id, keep_session_id=principal.session_id)
            issued = sessions.rotate(rt, work.db, principal, origin)
            if issued is None:  # this session ended meanwhile (logout, revoked elsewhere): change nothing
                raise errors.not_authenticated()
            # The session goes on under a new token, but what apps were given under the old one ends too.
            sessions.sessions_ended(rt, work.db, account_id, None, now)
            work.audit("password.changed", subject=("account", account_id),
                       details={"sessions_revoked": revoked, "session_rotated": True})
            _notify(work, account_id, "password_changed")
            _forget_sessions_after_commit(work, account_id)
    if not changed:
        raise errors.invalid("invalid_password", "The current password is wrong.", "current_password", status=400)
    return issued


def reset_password(rt: Runtime, origin: audit.Origin, *, phone: str, new_password: str, code: str | None = None,
                   recovery_key: str | None = None) -> None:
    """Reset by SMS code or by recovery key; the reset checks only that the proof matches the account
    (C2). A wrong code, a wrong key and a number without an account get one answer, at one cost:
    one Argon2 run for the new password, and on the key path one verification (a decoy when the
    number has no account). Every session ends and a password lock is lifted."""
    target = accounts.sms_target(rt, phone)
    by_key = recovery_key is not None
    _limit_ip(rt, origin)
    # Before the proof is used up, so that the user can pick a better password and try again.
    _check_new_password(rt, new_password, target.value)
    proved = _proved_recovery_key(rt, target, recovery_key) if by_key else None
    password_hash = rt.hasher.hash(new_password)
    method = "recovery_key" if by_key else "sms_code"
    now = rt.clock.now()
    with unit_of_work(rt, origin, at=now) as work:
        account = accounts.find(work.db, target)
        if by_key:
            ok = bool(proved and account and account.recovery_key_hash == proved)
            outcome = codes.Redeemed.OK if ok else codes.Redeemed.NONE
        else:
            outcome = (codes.redeem_code(rt, work.db, target, codes.Purpose.RESET_PASSWORD, code or "") if account
                       else codes.Redeemed.NONE)
        # A frozen account is recovered by unfreezing it, which takes the code and the key together.
        frozen = outcome is codes.Redeemed.OK and account.status == "frozen"
        if outcome is codes.Redeemed.OK and not frozen:
            _set_password(work.db, account.id, password_hash, now)
            revoked = sessions.revoke_all(rt, work.db, account.id)
            work.audit("password.reset", actor=("user", account.id), subject=("account", account.id),
                       details={"method": method, "sessions_revoked": revoked})
            _notify(work, account.id, "password_reset")
            _forget_sessions_after_commit(work, account.id)
        else:
            reason = "frozen" if frozen else f"invalid_{'recovery_key' if by_key else 'code'}"
            _proof_failed(work, "password.reset", account, method, reason)
    if frozen:
        raise _frozen()
    if outcome is not codes.Redeemed.OK:
        raise _wrong_proof("recovery_key" if by_key else "code")


def regenerate_recovery_key(rt: Runtime, origin: audit.Origin, principal: sessions.Principal, *,
                            password: str) -> str:
    """A new recovery key, shown once; the old one stops working at once."""
    account_id = principal.account_id
    with rt.db.read() as db:
        account = accounts.get(db, account_id)
    now = rt.clock.now()
    if not password_matches(rt, account, password):
        _record_wrong_password(rt, origin, account_id, "recovery_key.regenerate", now)
        raise errors.invalid("invalid_password", "The password is wrong.", "password", status=400)
    recovery_key = new_recovery_key()
    key_hash = rt.hasher.hash(recovery_key)
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        changed = work.db.execute(
            update(_accounts).where(_accounts.c.id == account_id, _accounts.c.password_hash == account.password_hash)
            .values(recovery_key_hash=key_hash, updated_at=now)
        ).rowcount
        if changed:
            work.audit("recovery_key.regenerated", subject=("account", account_id))
            _notify(work, account_id, "recovery_key_changed")
    if not changed:  # the password changed since it was checked
        raise errors.invalid("invalid_password", "The password is wrong.", "password", status=400)
    return recovery_key


def freeze_by_code(rt: Runtime, origin: audit.Origin, *, phone: str, code: str) -> None:
    """"My account was stolen" (C4): the SMS code is all it takes, no login. Every session ends and
    login is refused until the owner unfreezes the account with the code and the recovery key."""
    target = accounts.sms_target(rt, phone)
    _limit_ip(rt, origin)
    now = rt.clock.now()
    with unit_of_work(rt, origin, at=now) as work:
        account = accounts.find(work.db, target)
        outcome = (codes.redeem_code(rt, work.db, target, codes.Purpose.FREEZE, code or "") if account
                   else codes.Redeemed.NONE)
        if outcome is codes.Redeemed.OK:
            frozen = _freeze(work, account.id, account.status, "sms_code")
        else:
            _proof_failed(work, "account.freeze", account, "sms_code", "invalid_code")
    if outcome is not codes.Redeemed.OK:
        raise _wrong_proof("code")
    _refuse_unless_frozen(frozen)


def freeze_own(rt: Runtime, origin: audit.Origin, principal: sessions.Principal) -> None:
    """The signed-in owner freezes the account; this session ends with all the others."""
    with unit_of_work(rt, origin) as work:
        account = accounts.get(work.db, principal.account_id)
        frozen = _freeze(work, account.id, account.status, "session")
    _refuse_unless_frozen(frozen)


def unfreeze(rt: Runtime, origin: audit.Origin, *, phone: str, code: str, recovery_key: str,
             new_password: str) -> None:
    """The SMS code and the recovery key together give a frozen account back to its owner, with a new
    password (the thief may know the old one). Anything wrong, or an account that is not frozen, gets
    one answer; the code is only compared once the key is right."""
    target = accounts.sms_target(rt, phone)
    _limit_ip(rt, origin)
    _check_new_password(rt, new_password, target.value)
    proved = _proved_recovery_key(rt, target, recovery_key)
    password_hash = rt.hasher.hash(new_password)
    now = rt.clock.now()
    with unit_of_work(rt, origin, at=now) as work:
        account = accounts.find(work.db, target)
        key_ok = bool(proved and account and account.recovery_key_hash == proved)
        outcome = (codes.redeem_code(rt, work.db, target, codes.Purpose.UNFREEZE, code or "") if key_ok
                   else codes.Redeemed.NONE)
        # Only from the freeze just read: a status the platform set meanwhile stays (not_frozen).
        done = outcome is codes.Redeemed.OK and account.status == "frozen" and accounts.set_status(
            work.db, account.id, "active", expected="frozen", now=now, reason=None, until=None,
            also={"password_hash": password_hash, "failed_logins": 0, "locked_until": None})
        if done:
            revoked = sessions.revoke_all(rt, work.db, account.id)
            work.audit("account.unfrozen", actor=("user", account.id), subject=("account", account.id),
                       details={"sessions_revoked": revoked})
            _notify(work, account.id, "account_unfrozen")
            _forget_sessions_after_commit(work, account.id)
        else:
            reason = ("invalid_recovery_key" if not key_ok else "invalid_code" if outcome is not codes.Redeemed.OK
                      else "not_frozen")
            _proof_failed(work, "account.unfreeze", account, "sms_code+recovery_key", reason)
    if not done:
        raise _wrong_proof(None)


def _freeze(work: Work, account_id: str, status: str, method: str) -> bool:
    """Freeze inside the caller's unit of work. An account in another platform-set status is not
    frozen, but its sessions end all the same: its owner says someone else holds them. The status
    moves only if it is still freezable when written: a suspension that committed since ``status``
    was read stands, and the freeze is refused as if it had been read."""
    frozen = status in FREEZABLE and accounts.set_status(work.db, account_id, "frozen", expected=FREEZABLE,
                                                         now=work.at, reason=None, until=None)
    if status in FREEZABLE and not frozen:
        status = work.db.scalar(select(_accounts.c.status).where(_accounts.c.id == account_id))
    # The owner says someone else holds the account: a phone change it started must not go ahead.
    cancel_held_phone_change(work, account_id, "frozen")
    revoked = sessions.revoke_all(work.rt, work.db, account_id)
    work.audit("account.frozen" if frozen else "account.freeze", result="ok" if frozen else "denied",
               actor=("user", account_id), subject=("account", account_id),
               details={"method": method, "status": status, "sessions_revoked": revoked})
    if frozen:
        _notify(work, account_id, "account_frozen")
    _forget_sessions_after_commit(work, account_id)
    return frozen


def freeze_within(work: Work, account_id: str, status: str, method: str) -> bool:
    """The freeze of "my account was stolen", inside the caller's unit of work (the phone change's
    "this was not me" link): every session ends; whether the account could be frozen is returned."""
    return _freeze(work, account_id, status, method)


def cancel_held_phone_change(work: Work, account_id: str, outcome: str) -> PhoneChange | None:
    """Close the account's held phone change (``credentials.phone``), if any, in the caller's unit of
    work: the new number it kept goes. ``outcome`` says why (owner, not_me, frozen, superseded)."""
    change = work.db.scalars(select(PhoneChange).where(PhoneChange.account_id == account_id,
                                                       PhoneChange.status == "held").with_for_update()).first()
    if change is None:
        return None
    change.status, change.outcome, change.closed_at, change.new_phone_enc = "cancelled", outcome, work.at, None
    work.audit("phone.change_cancelled", subject=("account", account_id), details={"change": change.id, "by": outcome})
    return change


def _refuse_unless_frozen(frozen: bool) -> None:
    if not frozen:
        raise errors.DomainError(
            "account_not_freezable",
            "This account cannot be frozen in its current status; all its devices have been logged out. "
            "Please contact customer service.", 409)


def _check_new_password(rt: Runtime, password: str, phone: str | None) -> None:
    check_password(password, phone=phone, min_length=rt.settings.password_min_length,
                   min_classes=rt.settings.password_min_classes, field="new_password")


def password_matches(rt: Runtime, account, password: str) -> bool:
    """One Argon2 verification, at most ``password_check_per_hour`` an hour per account: a stolen
    session must not become a password oracle. It does not count toward the login lock."""
    rt.limiter.hit(f"{rt.settings.password_check_per_hour}/hour", "password-check", account.id)
    return rt.hasher.verify(account.password_hash, password or "")


def _proved_recovery_key(rt: Runtime, target: accounts.Target, raw_key: str | None) -> str | None:
    """The stored hash that the key matches, or None, after one Argon2 verification whether or not
    the number has an account. Tries are capped per number and per IP."""
    rt.limiter.hit(f"{rt.settings.recovery_key_per_phone_hour}/hour", "recovery-key", target.bidx.hex())
    with rt.db.connect() as conn:
        account = accounts.find(conn, target)
    stored = account.recovery_key_hash if account else None
    return stored if rt.hasher.verify(stored, normalize_recovery_key(raw_key or "")) else None


def _limit_ip(rt: Runtime, origin: audit.Origin) -> None:
    rt.limiter.hit(f"{rt.settings.recovery_per_ip_hour}/hour", "recovery-ip", origin.ip or "-")


def _set_password(db: Session, account_id: str, password_hash: str, now: datetime, *,
                  expected: str | None = None) -> int:
    """Set the password and lift a password lock: whoever proved the account may log in again."""
    condition = _accounts.c.id == account_id
    if expected is not None:
        condition &= _accounts.c.password_hash == expected
    return db.execute(update(_accounts).where(condition)
                      .values(password_hash=password_hash, failed_logins=0, locked_until=None,
                              updated_at=now)).rowcount


def _record_wrong_password(rt: Runtime, origin: audit.Origin, account_id: str, action: str, now: datetime) -> None:
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        work.audit(action, result="failed", subject=("account", account_id), details={"reason": "wrong_password"})


def _proof_failed(work: Work, action: str, account, method: str, reason: str) -> None:
    work.audit(action, result="denied" if reason == "frozen" else "failed",
               subject=("account", account.id) if account else None, details={"method": method, "reason": reason})


def _wrong_proof(field: str | None) -> errors.DomainError:
    """One answer for a wrong code or key and for a number without an account (enumeration safety)."""
    if field == "code":
        return errors.invalid("invalid_code", "The verification code is wrong or has expired.", field, status=400)
    if field == "recovery_key":
        return errors.invalid("invalid_code", "The mobile number or recovery key is wrong.", field, status=400)
    return errors.DomainError("invalid_code",
                              "The verification code or recovery key is wrong, or the code has expired.", 400)


def _frozen() -> errors.DomainError:
    return errors.DomainError("account_frozen", "This account is frozen. Recover it with your phone and recovery key.",
                              403)


def _notify(work: Work, account_id: str, template: str) -> None:
    """A security notice to the owner (L2): inbox and SMS, queued in the change's unit of work."""
    work.notify(account_id, template, {"time": china_time(work.at)})


def _forget_sessions_after_commit(work: Work, account_id: str) -> None:
    """Cached session rows go once the change is in (a request between revoke_all's drop and the
    commit may have cached one)."""
    work.after_commit(partial(sessions.forget_sessions, work.rt, account_id=account_id))


def wrong_password() -> errors.DomainError:
    return errors.invalid("invalid_password", "The password is wrong.", "password", status=400)


def wrong_code() -> errors.DomainError:
    return errors.invalid("invalid_code", "The verification code is wrong or has expired.", "code", status=400)
