"""Verification codes (COMPLIANCE C6, API.md "Verification codes") and the credential lifecycle
(API.md "Credentials", COMPLIANCE C2, C4, C5): change and reset the password, regenerate the
recovery key, freeze and unfreeze a stolen account.

Codes: six digits, bound to one purpose and one target, valid five minutes, single use, at most five
wrong tries. Per number: one send a minute, five an hour, ten a day; per IP: an hourly cap.
Only an HMAC of the code is stored. The answer is the same whether or not an account exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts import service as accounts
from passport.audit import service as audit
from passport.clock import china_time
from passport.credentials.models import VerificationCode
from passport.identity.email import InvalidEmail, email_key, normalize_email
from passport.identity.phone import InvalidPhone, normalize_phone
from passport.notify import outbox
from passport.runtime import Runtime
from passport.security.policy import check_password
from passport.security.tokens import keyed_digest, new_numeric_code, new_recovery_key, normalize_recovery_key, same
from passport.senders.email import EmailMessage
from passport.senders.sms import SmsMessage
from passport.sessions import service as sessions


class Purpose(StrEnum):
    REGISTER = "register"
    LOGIN = "login"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose name, not a password
    BIND_EMAIL = "bind_email"
    CHANGE_PHONE = "change_phone"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    CANCEL_ACCOUNT = "cancel_account"
    EXPORT = "export"


# Purposes that only make sense for an existing account: nothing is delivered to an unknown
# target, but the caller gets the same answer.
ACCOUNT_PURPOSES = frozenset({Purpose.LOGIN, Purpose.RESET_PASSWORD, Purpose.FREEZE, Purpose.UNFREEZE,
                              Purpose.CANCEL_ACCOUNT, Purpose.EXPORT})

SMS_TEXT = {
    Purpose.REGISTER: "注册账号",
    Purpose.LOGIN: "登录",
    Purpose.RESET_PASSWORD: "重置密码",
    Purpose.BIND_EMAIL: "绑定邮箱",
    Purpose.CHANGE_PHONE: "更换手机号",
    Purpose.FREEZE: "冻结账号",
    Purpose.UNFREEZE: "解冻账号",
    Purpose.CANCEL_ACCOUNT: "注销账号",
    Purpose.EXPORT: "导出个人信息",
}


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


def parse_purpose(raw: str) -> Purpose:
    try:
        return Purpose(raw)
    except ValueError:
        raise errors.invalid("invalid_purpose", "Unknown verification purpose.", "purpose") from None


def _code_hash(rt: Runtime, target: Target, purpose: Purpose, code: str) -> bytes:
    return keyed_digest(rt.keys.secret, "code", target.channel, target.bidx.hex(), purpose.value, code)


def _lock_target(db: Session, target: Target) -> None:
    # Two sends to one number at once must not both pass the resend check (SQLite serialises
    # writers already; PostgreSQL needs a lock keyed on the number).
    if db.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(target.bidx[:8], "big", signed=True)
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def send_code(rt: Runtime, origin: audit.Origin, *, channel: str, to: str, purpose: str,
              account_exists) -> dict:
    """Create and deliver a code. ``account_exists(db, target)`` tells whether to deliver for
    account-only purposes; the answer to the caller never depends on it."""
    settings = rt.settings
    purpose_ = parse_purpose(purpose)
    if channel == "sms":
        target = sms_target(rt, to, "to")
    elif channel == "email":
        target = email_target(rt, to, "to")
    else:
        raise errors.invalid("invalid_channel", "Channel must be sms or email.", "channel")
    rt.limiter.hit(f"{settings.code_per_ip_hour}/hour", "code-ip", origin.ip or "-")

    now = rt.clock.now()
    code = new_numeric_code(settings.code_length)
    with rt.db.write() as db:
        _lock_target(db, target)
        recent = db.scalars(
            select(VerificationCode.created_at)
            .where(VerificationCode.target_bidx == target.bidx,
                   VerificationCode.created_at > now - timedelta(days=1))
            .order_by(VerificationCode.created_at.desc())
        ).all()
        wait = _wait_seconds(settings, now, recent)
        # "by" names the code's channel: audit.record keeps "channel" for the request's origin.
        if wait:
            audit.record(db, at=now, action="verification_code.throttled", origin=origin, result="denied",
                         details={"by": channel, "purpose": purpose_.value})
            throttled = errors.rate_limited(wait)
        else:
            throttled = None
            deliver = purpose_ not in ACCOUNT_PURPOSES or account_exists(db, target)
            db.execute(
                update(VerificationCode)
                .where(VerificationCode.target_bidx == target.bidx, VerificationCode.purpose == purpose_.value,
                       VerificationCode.consumed_at.is_(None))
                .values(consumed_at=now)  # a new code supersedes older ones
            )
            db.add(VerificationCode(
                channel=channel, purpose=purpose_.value, target_bidx=target.bidx,
                code_hash=_code_hash(rt, target, purpose_, code) if deliver else None, delivered=deliver,
                ip=origin.ip, created_at=now, expires_at=now + timedelta(seconds=settings.code_ttl_seconds),
            ))
            audit.record(db, at=now, action="verification_code.sent", origin=origin,
                         details={"by": channel, "purpose": purpose_.value, "delivered": deliver})
    if throttled:
        raise throttled
    if deliver:
        minutes = settings.code_ttl_seconds // 60
        text_ = (f"【奥集能】您正在{SMS_TEXT[purpose_]}，验证码 {code}，{minutes} 分钟内有效。"
                 "如非本人操作，请忽略。")
        if channel == "sms":
            rt.dispatch_sms(SmsMessage(to=target.value, purpose=purpose_.value, code=code, text=text_))
        else:
            rt.dispatch_email(EmailMessage(
                to=target.value, purpose=purpose_.value, code=code, subject=f"奥集能验证码 {code}",
                text=text_ + f"\n\nYour Orginone verification code is {code}. It expires in {minutes} minutes. "
                             "If you did not ask for it, ignore this message."))
    return {"expires_in": settings.code_ttl_seconds, "resend_after": settings.code_resend_seconds}


def _wait_seconds(settings, now, recent_sends: list) -> int:
    """Seconds until the next send is allowed for this number (0: allowed now)."""
    if not recent_sends:
        return 0
    waits = []
    resend_at = recent_sends[0] + timedelta(seconds=settings.code_resend_seconds)
    if resend_at > now:
        waits.append(resend_at - now)
    hour = [t for t in recent_sends if t > now - timedelta(hours=1)]
    if len(hour) >= settings.code_per_hour:
        waits.append(hour[settings.code_per_hour - 1] + timedelta(hours=1) - now)
    if len(recent_sends) >= settings.code_per_day:
        waits.append(recent_sends[settings.code_per_day - 1] + timedelta(days=1) - now)
    return int(max(waits).total_seconds()) + 1 if waits else 0


class Redeemed(StrEnum):
    OK = "ok"
    WRONG = "wrong"  # a try was counted: the caller must commit and then refuse
    NONE = "none"  # no usable code


def redeem_code(rt: Runtime, db: Session, target: Target, purpose: Purpose, code: str) -> Redeemed:
    """Check and consume a code inside the caller's unit of work.

    A wrong try is counted in the same unit of work, so the caller commits before it refuses.
    Consumption is a conditional UPDATE: of two requests with one code, exactly one wins.
    """
    now = rt.clock.now()
    # FOR UPDATE (PostgreSQL; SQLite's write transactions are serial already): simultaneous guesses
    # must each see the attempts the others counted, or a burst of N guesses gets N tries.
    row = db.execute(
        select(VerificationCode.id, VerificationCode.code_hash, VerificationCode.attempts)
        .where(VerificationCode.target_bidx == target.bidx, VerificationCode.purpose == purpose.value,
               VerificationCode.channel == target.channel, VerificationCode.consumed_at.is_(None),
               VerificationCode.expires_at > now)
        .order_by(VerificationCode.created_at.desc()).limit(1).with_for_update()
    ).first()
    if row is None or row.code_hash is None or row.attempts >= rt.settings.code_max_attempts:
        return Redeemed.NONE
    candidate = code.strip() if isinstance(code, str) else ""
    if not same(_code_hash(rt, target, purpose, candidate), row.code_hash):
        db.execute(update(VerificationCode).where(VerificationCode.id == row.id)
                   .values(attempts=VerificationCode.attempts + 1))
        return Redeemed.WRONG
    won = db.execute(
        update(VerificationCode)
        .where(VerificationCode.id == row.id, VerificationCode.consumed_at.is_(None),
               VerificationCode.attempts < rt.settings.code_max_attempts)
        .values(consumed_at=now)
    ).rowcount
    return Redeemed.OK if won == 1 else Redeemed.NONE


def sweep_codes(rt: Runtime, db: Session) -> int:
    """Delete codes past expiry by more than a day (the per-day caps need a day of history)."""
    cutoff = rt.clock.now() - timedelta(days=1, seconds=rt.settings.code_ttl_seconds)
    return db.execute(VerificationCode.__table__.delete().where(VerificationCode.created_at < cutoff)).rowcount


def codes_for(db: Session, target_bidxs: list[bytes]) -> list[dict]:
    """The code records of these targets, without the code hashes (the personal-data export), and
    without the IP that asked for each: it may be someone else's (anyone can ask for a code to a number)."""
    rows = db.scalars(select(VerificationCode).where(VerificationCode.target_bidx.in_(target_bidxs))
                      .order_by(VerificationCode.created_at.desc())).all() if target_bidxs else []
    return [{"channel": r.channel, "purpose": r.purpose, "delivered": r.delivered, "attempts": r.attempts,
             "created_at": r.created_at, "expires_at": r.expires_at, "consumed_at": r.consumed_at}
            for r in rows]


def erase_codes(db: Session, target_bidxs: list[bytes]) -> int:
    """Delete every code record of these targets (cancellation finalisation: no blind index stays)."""
    if not target_bidxs:
        return 0
    table = VerificationCode.__table__
    return db.execute(table.delete().where(table.c.target_bidx.in_(target_bidxs))).rowcount


# --- the credential lifecycle ---------------------------------------------------------------------

# Unfreezing makes an account active again, so only an active account can be frozen: freezing one the
# platform restricted or suspended would let whoever unfreezes it lift that.
FREEZABLE = frozenset({"active", "frozen"})
_accounts = accounts.Account.__table__


def change_password(rt: Runtime, origin: audit.Origin, principal: sessions.Principal, *, current_password: str,
                    new_password: str) -> None:
    """The current password proves the user (C2); every other session ends, this one stays."""
    account_id = principal.account_id
    with rt.db.read() as db:
        account = accounts.get(db, account_id)
    phone = _phone_of(rt, account)
    _check_new_password(rt, new_password, phone)
    now = rt.clock.now()
    if not _password_matches(rt, account, current_password):
        _record_wrong_password(rt, origin, account_id, "password.change", now)
        raise errors.invalid("invalid_password", "The current password is wrong.", "current_password", status=400)
    if new_password == current_password:
        raise errors.invalid("same_password", "The new password must differ from the current one.", "new_password")
    # Hashed before the unit of work opens: the write lock is never held across an Argon2 run.
    password_hash = rt.hasher.hash(new_password)
    with rt.db.write() as db:
        # Only over the password just verified: of two changes at once, the second finds it gone.
        changed = _set_password(db, account_id, password_hash, now, expected=account.password_hash)
        if changed:
            revoked = sessions.revoke_all(rt, db, account_id, keep_session_id=principal.session_id)
            audit.record(db, at=now, action="password.changed", origin=origin, actor_type="user",
                         actor_id=account_id, subject_type="account", subject_id=account_id,
                         details={"sessions_revoked": revoked})
            _notify(rt, db, account_id, "password_changed", now)
    if not changed:
        raise errors.invalid("invalid_password", "The current password is wrong.", "current_password", status=400)
    sessions.forget_sessions(rt, account_id=account_id)


def reset_password(rt: Runtime, origin: audit.Origin, *, phone: str, new_password: str, code: str | None = None,
                   recovery_key: str | None = None) -> None:
    """Reset by SMS code or by recovery key; the reset checks only that the proof matches the account
    (C2). A wrong code, a wrong key and a number without an account get one answer, at one cost:
    one Argon2 run for the new password, and on the key path one verification (a decoy when the
    number has no account). Every session ends and a password lock is lifted."""
    target = sms_target(rt, phone)
    by_key = recovery_key is not None
    _limit_ip(rt, origin)
    # Before the proof is used up, so that the user can pick a better password and try again.
    _check_new_password(rt, new_password, target.value)
    proved = _proved_recovery_key(rt, target, recovery_key) if by_key else None
    password_hash = rt.hasher.hash(new_password)
    method = "recovery_key" if by_key else "sms_code"
    now = rt.clock.now()
    with rt.db.write() as db:
        account = accounts.find(db, target)
        if by_key:
            ok = bool(proved and account and account.recovery_key_hash == proved)
            outcome = Redeemed.OK if ok else Redeemed.NONE
        else:
            outcome = redeem_code(rt, db, target, Purpose.RESET_PASSWORD, code or "") if account else Redeemed.NONE
        # A frozen account is recovered by unfreezing it, which takes the code and the key together.
        frozen = outcome is Redeemed.OK and account.status == "frozen"
        if outcome is Redeemed.OK and not frozen:
            _set_password(db, account.id, password_hash, now)
            revoked = sessions.revoke_all(rt, db, account.id)
            audit.record(db, at=now, action="password.reset", origin=origin, actor_type="user", actor_id=account.id,
                         subject_type="account", subject_id=account.id,
                         details={"method": method, "sessions_revoked": revoked})
            _notify(rt, db, account.id, "password_reset", now)
        else:
            reason = "frozen" if frozen else f"invalid_{'recovery_key' if by_key else 'code'}"
            _record_failure(db, origin, "password.reset", account, now, method, reason)
    if frozen:
        raise _frozen()
    if outcome is not Redeemed.OK:
        raise _wrong_proof("recovery_key" if by_key else "code")
    sessions.forget_sessions(rt, account_id=account.id)


def regenerate_recovery_key(rt: Runtime, origin: audit.Origin, principal: sessions.Principal, *,
                            password: str) -> str:
    """A new recovery key, shown once; the old one stops working at once."""
    account_id = principal.account_id
    with rt.db.read() as db:
        account = accounts.get(db, account_id)
    now = rt.clock.now()
    if not _password_matches(rt, account, password):
        _record_wrong_password(rt, origin, account_id, "recovery_key.regenerate", now)
        raise errors.invalid("invalid_password", "The password is wrong.", "password", status=400)
    recovery_key = new_recovery_key()
    key_hash = rt.hasher.hash(recovery_key)
    with rt.db.write() as db:
        changed = db.execute(
            update(_accounts).where(_accounts.c.id == account_id, _accounts.c.password_hash == account.password_hash)
            .values(recovery_key_hash=key_hash, updated_at=now)
        ).rowcount
        if changed:
            audit.record(db, at=now, action="recovery_key.regenerated", origin=origin, actor_type="user",
                         actor_id=account_id, subject_type="account", subject_id=account_id)
            _notify(rt, db, account_id, "recovery_key_changed", now)
    if not changed:  # the password changed since it was checked
        raise errors.invalid("invalid_password", "The password is wrong.", "password", status=400)
    return recovery_key


def freeze_by_code(rt: Runtime, origin: audit.Origin, *, phone: str, code: str) -> None:
    """"My account was stolen" (C4): the SMS code is all it takes, no login. Every session ends and
    login is refused until the owner unfreezes the account with the code and the recovery key."""
    target = sms_target(rt, phone)
    _limit_ip(rt, origin)
    now = rt.clock.now()
    with rt.db.write() as db:
        account = accounts.find(db, target)
        outcome = redeem_code(rt, db, target, Purpose.FREEZE, code or "") if account else Redeemed.NONE
        if outcome is Redeemed.OK:
            frozen = _freeze(rt, db, origin, account.id, account.status, now, "sms_code")
        else:
            _record_failure(db, origin, "account.freeze", account, now, "sms_code", "invalid_code")
    if outcome is not Redeemed.OK:
        raise _wrong_proof("code")
    _after_freeze(rt, account.id, target.value, frozen, now)


def freeze_own(rt: Runtime, origin: audit.Origin, principal: sessions.Principal) -> None:
    """The signed-in owner freezes the account; this session ends with all the others."""
    now = rt.clock.now()
    with rt.db.write() as db:
        account = accounts.get(db, principal.account_id)
        frozen = _freeze(rt, db, origin, account.id, account.status, now, "session")
        phone = _phone_of(rt, account)
    _after_freeze(rt, principal.account_id, phone, frozen, now)


def unfreeze(rt: Runtime, origin: audit.Origin, *, phone: str, code: str, recovery_key: str,
             new_password: str) -> None:
    """The SMS code and the recovery key together give a frozen account back to its owner, with a new
    password (the thief may know the old one). Anything wrong, or an account that is not frozen, gets
    one answer; the code is only compared once the key is right."""
    target = sms_target(rt, phone)
    _limit_ip(rt, origin)
    _check_new_password(rt, new_password, target.value)
    proved = _proved_recovery_key(rt, target, recovery_key)
    password_hash = rt.hasher.hash(new_password)
    now = rt.clock.now()
    with rt.db.write() as db:
        account = accounts.find(db, target)
        key_ok = bool(proved and account and account.recovery_key_hash == proved)
        outcome = redeem_code(rt, db, target, Purpose.UNFREEZE, code or "") if key_ok else Redeemed.NONE
        done = outcome is Redeemed.OK and account.status == "frozen"
        if done:
            db.execute(update(_accounts).where(_accounts.c.id == account.id)
                       .values(status="active", status_reason=None, status_until=None, password_hash=password_hash,
                               failed_logins=0, locked_until=None, updated_at=now))
            revoked = sessions.revoke_all(rt, db, account.id)
            audit.record(db, at=now, action="account.unfrozen", origin=origin, actor_type="user", actor_id=account.id,
                         subject_type="account", subject_id=account.id, details={"sessions_revoked": revoked})
            _notify(rt, db, account.id, "account_unfrozen", now)
        else:
            reason = ("invalid_recovery_key" if not key_ok else "invalid_code" if outcome is not Redeemed.OK
                      else "not_frozen")
            _record_failure(db, origin, "account.unfreeze", account, now, "sms_code+recovery_key", reason)
    if not done:
        raise _wrong_proof(None)
    sessions.forget_sessions(rt, account_id=account.id)


def _freeze(rt: Runtime, db: Session, origin: audit.Origin, account_id: str, status: str, now: datetime,
            method: str) -> bool:
    """Freeze inside the caller's unit of work. An account in another platform-set status is not
    frozen, but its sessions end all the same: its owner says someone else holds them."""
    if status in FREEZABLE:
        db.execute(update(_accounts).where(_accounts.c.id == account_id)
                   .values(status="frozen", status_reason=None, status_until=None, updated_at=now))
    revoked = sessions.revoke_all(rt, db, account_id)
    audit.record(db, at=now, action="account.frozen" if status in FREEZABLE else "account.freeze", origin=origin,
                 result="ok" if status in FREEZABLE else "denied", actor_type="user", actor_id=account_id,
                 subject_type="account", subject_id=account_id,
                 details={"method": method, "status": status, "sessions_revoked": revoked})
    if status in FREEZABLE:
        _notify(rt, db, account_id, "account_frozen", now)
    return status in FREEZABLE


def _after_freeze(rt: Runtime, account_id: str, phone: str | None, frozen: bool, now: datetime) -> None:
    sessions.forget_sessions(rt, account_id=account_id)
    if not frozen:
        raise errors.DomainError(
            "account_not_freezable",
            "This account cannot be frozen in its current status; all its devices have been logged out. "
            "Please contact customer service.", 409)


def _check_new_password(rt: Runtime, password: str, phone: str | None) -> None:
    check_password(password, phone=phone, min_length=rt.settings.password_min_length,
                   min_classes=rt.settings.password_min_classes, field="new_password")


def _password_matches(rt: Runtime, account, password: str) -> bool:
    """One Argon2 verification, at most ``password_check_per_hour`` an hour per account: a stolen
    session must not become a password oracle. It does not count toward the login lock."""
    rt.limiter.hit(f"{rt.settings.password_check_per_hour}/hour", "password-check", account.id)
    return rt.hasher.verify(account.password_hash, password or "")


def _proved_recovery_key(rt: Runtime, target: Target, raw_key: str | None) -> str | None:
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


def _phone_of(rt: Runtime, account) -> str | None:
    return rt.keys.cipher.decrypt(account.phone_enc, "account.phone") if account.phone_enc else None


def _record_wrong_password(rt: Runtime, origin: audit.Origin, account_id: str, action: str, now: datetime) -> None:
    with rt.db.write() as db:
        audit.record(db, at=now, action=action, origin=origin, result="failed", actor_type="user",
                     actor_id=account_id, subject_type="account", subject_id=account_id,
                     details={"reason": "wrong_password"})


def _record_failure(db: Session, origin: audit.Origin, action: str, account, now: datetime, method: str,
                    reason: str) -> None:
    audit.record(db, at=now, action=action, origin=origin, result="denied" if reason == "frozen" else "failed",
                 subject_type="account" if account else None, subject_id=account.id if account else None,
                 details={"method": method, "reason": reason})


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


def _notify(rt: Runtime, db: Session, account_id: str, template: str, now: datetime) -> None:
    """A security notice to the owner (L2): inbox and SMS, queued in the change's unit of work."""
    when = china_time(now)
    outbox.notify_account(rt, db, account_id=account_id, template=template, params={"time": when})
