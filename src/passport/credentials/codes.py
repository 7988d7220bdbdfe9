"""Verification codes (SMS and email): 6 digits, single use, bound to a purpose, keyed hashes only (C4)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts import service as accounts
from passport.audit import service as audit
from passport.credentials.models import EMAIL_CANDIDATE, VerificationCode
from passport.runtime import Runtime
from passport.security.tokens import keyed_digest, new_numeric_code, same
from passport.senders.email import EmailMessage
from passport.senders.sms import SmsMessage


class Purpose(StrEnum):
    REGISTER = "register"
    LOGIN = "login"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose name, not a password
    BIND_EMAIL = "bind_email"
    CHANGE_PHONE = "change_phone"
    CHANGE_PHONE_OLD = "change_phone_old"  # to the current number: its holder agrees to the change
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    CANCEL_ACCOUNT = "cancel_account"
    EXPORT = "export"


# Purposes that only make sense for an existing account: nothing is delivered to an unknown
# target, but the caller gets the same answer.
ACCOUNT_PURPOSES = frozenset({Purpose.LOGIN, Purpose.RESET_PASSWORD, Purpose.FREEZE, Purpose.UNFREEZE,
                              Purpose.CANCEL_ACCOUNT, Purpose.EXPORT, Purpose.CHANGE_PHONE_OLD})


SMS_TEXT = {
    Purpose.REGISTER: "注册账号",
    Purpose.LOGIN: "登录",
    Purpose.RESET_PASSWORD: "重置密码",
    Purpose.BIND_EMAIL: "绑定邮箱",
    Purpose.CHANGE_PHONE: "更换手机号",
    Purpose.CHANGE_PHONE_OLD: "更换绑定手机号（验证当前号码）",
    Purpose.FREEZE: "冻结账号",
    Purpose.UNFREEZE: "解冻账号",
    Purpose.CANCEL_ACCOUNT: "注销账号",
    Purpose.EXPORT: "导出个人信息",
}


def parse_purpose(raw: str) -> Purpose:
    try:
        return Purpose(raw)
    except ValueError:
        raise errors.invalid("invalid_purpose", "Unknown verification purpose.", "purpose") from None


def _code_hash(key: bytes, channel: str, target_bidx: bytes, purpose: Purpose, code: str) -> bytes:
    """Keyed by the secret key and bound to the stored target (its blind index when the code was sent)."""
    return keyed_digest(key, "code", channel, target_bidx.hex(), purpose.value, code)


def _lock_target(db: Session, target: accounts.Target) -> None:
    # Two sends to one number at once must not both pass the resend check (SQLite serialises
    # writers already; PostgreSQL needs a lock keyed on the number).
    if db.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(target.bidx[:8], "big", signed=True)
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def send_code(rt: Runtime, origin: audit.Origin, *, channel: str, to: str, purpose: str,
              account_exists, requested_by: str | None = None) -> dict:
    """Create and deliver a code. ``account_exists(db, target)`` tells whether to deliver for
    account-only purposes; the answer to the caller never depends on it. ``requested_by`` is the
    signed-in account that asks (its export lists the code). A ``bind_email`` code keeps its
    address, encrypted, on the code record (``pending_email``): nowhere else until it is proved."""
    settings = rt.settings
    purpose_ = parse_purpose(purpose)
    if channel == "sms":
        target = accounts.sms_target(rt, to, "to")
    elif channel == "email":
        target = accounts.email_target(rt, to, "to")
    else:
        raise errors.invalid("invalid_channel", "Channel must be sms or email.", "channel")
    rt.limiter.hit(f"{settings.code_per_ip_hour}/hour", "code-ip", origin.ip or "-")

    now = rt.clock.now()
    code = new_numeric_code(settings.code_length)
    with rt.db.write() as db:
        _lock_target(db, target)
        # A freeze code counts only against the freeze allowance, every other code only against
        # the shared one: an exhausted login allowance never stands between an owner and a freeze.
        own = VerificationCode.purpose == Purpose.FREEZE.value
        recent = db.scalars(
            select(VerificationCode.created_at)
            .where(VerificationCode.target_bidx.in_(target.lookup),
                   VerificationCode.created_at > now - timedelta(days=1),
                   own if purpose_ is Purpose.FREEZE else ~own)
            .order_by(VerificationCode.created_at.desc())
        ).all()
        wait, limit = _wait(settings, now, recent, *_allowance(settings, purpose_))
        # "by" names the code's channel: audit.record keeps "channel" for the request's origin.
        if wait:
            audit.record(db, at=now, action="verification_code.throttled", origin=origin, result="denied",
                         details={"by": channel, "purpose": purpose_.value})
            throttled = errors.rate_limited(wait)
            if limit:  # the allowance that ran out, so a page can say "at most 5 an hour"
                throttled.extra["limit"] = limit
        else:
            throttled = None
            deliver = purpose_ not in ACCOUNT_PURPOSES or account_exists(db, target)
            superseded = VerificationCode.target_bidx.in_(target.lookup)
            if requested_by is not None:  # and the account's own earlier ask, to another address too
                superseded |= VerificationCode.requested_by == requested_by
            db.execute(
                update(VerificationCode)
                .where(superseded, VerificationCode.purpose == purpose_.value, VerificationCode.consumed_at.is_(None))
                .values(consumed_at=now)  # a new code supersedes older ones
            )
            candidate = purpose_ is Purpose.BIND_EMAIL and requested_by is not None
            row = VerificationCode(
                channel=channel, purpose=purpose_.value, target_bidx=target.bidx,
                code_hash=_code_hash(rt.keys.secret, channel, target.bidx, purpose_, code) if deliver else None,
                delivered=deliver,
                ip=origin.ip, requested_by=requested_by, created_at=now,
                expires_at=now + timedelta(seconds=settings.code_ttl_seconds),
            )
            db.add(row)
            if candidate:  # sealed to its row, whose id the insert assigns
                db.flush()
                row.target_enc = rt.keys.cipher.encrypt(target.value, EMAIL_CANDIDATE, row.id)
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


def _allowance(settings, purpose: Purpose) -> tuple[int, int]:
    """(per hour, per day) for codes of this purpose to one number."""
    if purpose is Purpose.FREEZE:
        return settings.code_freeze_per_hour, settings.code_freeze_per_day
    return settings.code_per_hour, settings.code_per_day


def _wait_seconds(settings, now, recent_sends: list, per_hour: int, per_day: int) -> int:
    """Seconds until the next send is allowed for this number (0: allowed now), given the sends
    that count against this allowance, newest first."""
    return _wait(settings, now, recent_sends, per_hour, per_day)[0]


def _wait(settings, now, recent_sends: list, per_hour: int, per_day: int) -> tuple[int, dict | None]:
    """The wait in seconds, and the allowance that sets it (``{"count": 5, "per": "hour"}``; None for
    the resend pause or no wait)."""
    if not recent_sends:
        return 0, None
    waits: list[tuple[timedelta, dict | None]] = []
    resend_at = recent_sends[0] + timedelta(seconds=settings.code_resend_seconds)
    if resend_at > now:
        waits.append((resend_at - now, None))
    hour = [t for t in recent_sends if t > now - timedelta(hours=1)]
    if len(hour) >= per_hour:
        waits.append((hour[per_hour - 1] + timedelta(hours=1) - now, {"count": per_hour, "per": "hour"}))
    if len(recent_sends) >= per_day:
        waits.append((recent_sends[per_day - 1] + timedelta(days=1) - now, {"count": per_day, "per": "day"}))
    if not waits:
        return 0, None
    longest, limit = max(waits, key=lambda w: w[0])
    return int(longest.total_seconds()) + 1, limit


def pending_email(rt: Runtime, db: Session, account_id: str) -> accounts.Target | None:
    """The address the account asked to bind and has not proved yet: the one on its newest live
    ``bind_email`` code (None once that is used, superseded or expired)."""
    row = db.execute(
        select(VerificationCode.id, VerificationCode.target_enc)
        .where(VerificationCode.requested_by == account_id, VerificationCode.purpose == Purpose.BIND_EMAIL.value,
               VerificationCode.consumed_at.is_(None), VerificationCode.expires_at > rt.clock.now(),
               VerificationCode.target_enc.is_not(None))
        .order_by(VerificationCode.created_at.desc(), VerificationCode.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    # Looked up afresh: the code row keeps the digest it was sent under, which a blind-index
    # rotation may since have replaced (the code itself is redeemed under either).
    return accounts.email_target(rt, rt.keys.cipher.decrypt(row.target_enc, EMAIL_CANDIDATE, row.id))


class Redeemed(StrEnum):
    OK = "ok"
    WRONG = "wrong"  # a try was counted: the caller must commit and then refuse
    NONE = "none"  # no usable code


def redeem_code(rt: Runtime, db: Session, target: accounts.Target, purpose: Purpose, code: str) -> Redeemed:
    """Check and consume a code inside the caller's unit of work.

    A wrong try is counted in the same unit of work, so the caller commits before it refuses.
    Consumption is a conditional UPDATE: of two requests with one code, exactly one wins.
    """
    now = rt.clock.now()
    # FOR UPDATE (PostgreSQL; SQLite's write transactions are serial already): simultaneous guesses
    # must each see the attempts the others counted, or a burst of N guesses gets N tries.
    row = db.execute(
        select(VerificationCode.id, VerificationCode.code_hash, VerificationCode.attempts, VerificationCode.target_bidx)
        .where(VerificationCode.target_bidx.in_(target.lookup), VerificationCode.purpose == purpose.value,
               VerificationCode.channel == target.channel, VerificationCode.consumed_at.is_(None),
               VerificationCode.expires_at > now)
        .order_by(VerificationCode.created_at.desc()).limit(1).with_for_update()
    ).first()
    if row is None or row.code_hash is None or row.attempts >= rt.settings.code_max_attempts:
        return Redeemed.NONE
    candidate = code.strip() if isinstance(code, str) else ""
    # Every configured secret key is tried (the same work whichever matches): a code sent just
    # before the secret key rotated still works.
    if not any([same(_code_hash(key, target.channel, row.target_bidx, purpose, candidate), row.code_hash)
                for key in rt.keys.secrets]):
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


def codes_for(db: Session, account_id: str, own_targets: list[bytes]) -> list[dict]:
    """The account's code records for the personal-data export: those it asked for while signed in
    (bind_email, its own phone's codes) and those delivered to its own bound phone or email. Never a
    code to an address it merely asked to bind (another person's history there is theirs), never
    whether a code was delivered (that tells whether an account holds a target), never the IP that
    asked (anyone can ask for a code to a number), never the code hashes."""
    mine = VerificationCode.requested_by == account_id
    if own_targets:
        mine |= VerificationCode.target_bidx.in_(own_targets) & VerificationCode.delivered.is_(True)
    rows = db.scalars(select(VerificationCode).where(mine).order_by(VerificationCode.created_at.desc())).all()
    return [{"channel": r.channel, "purpose": r.purpose, "attempts": r.attempts,
             "created_at": r.created_at, "expires_at": r.expires_at, "consumed_at": r.consumed_at}
            for r in rows]


def erase_codes(db: Session, target_bidxs: list[bytes], account_id: str | None = None) -> int:
    """Delete every code record of these targets and those the account asked for (cancellation
    finalisation: no blind index stays)."""
    table = VerificationCode.__table__
    condition = table.c.target_bidx.in_(target_bidxs) if target_bidxs else None
    if account_id is not None:
        condition = (table.c.requested_by == account_id) if condition is None else (
            condition | (table.c.requested_by == account_id))
    if condition is None:
        return 0
    return db.execute(table.delete().where(condition)).rowcount


OWN_PHONE_PURPOSES = (Purpose.CANCEL_ACCOUNT, Purpose.EXPORT, Purpose.CHANGE_PHONE_OLD)


def _no_phone() -> errors.DomainError:
    return errors.DomainError("phone_required", "This account has no mobile number to send a code to.", 409)


def own_target(rt: Runtime, account) -> accounts.Target:
    if not account.phone_enc or not account.phone_bidx:
        raise _no_phone()
    return accounts.sms_target(rt, rt.keys.cipher.decrypt(account.phone_enc, accounts.PHONE_FIELD, account.id))


def send_own_code(rt: Runtime, origin: audit.Origin, account_id: str, purpose: str) -> dict:
    """Send a ``cancel_account``, ``export`` or ``change_phone_old`` code to the account's own phone
    (the signed-in user sees the number only masked)."""
    wanted = parse_purpose(purpose)
    if wanted not in OWN_PHONE_PURPOSES:
        raise errors.invalid("invalid_purpose", "Unknown verification purpose.", "purpose")
    with rt.db.read() as db:
        target = own_target(rt, accounts.get(db, account_id))
    return send_code(rt, origin, channel="sms", to=target.value, purpose=wanted.value,
                     account_exists=accounts.account_exists, requested_by=account_id)
