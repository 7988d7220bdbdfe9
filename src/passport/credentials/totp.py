"""TOTP second factor (RFC 6238): enrol, confirm, disable, verify with replay protection.

Codes are 6 digits over 30-second steps (HMAC-SHA1, what every authenticator app speaks); one step
either side is accepted for clock drift (RFC 6238 §5.2). The secret is stored encrypted like
personal data. The last accepted step is stored too and a code whose step is not after it is
refused (§5.2: "the verifier MUST NOT accept the second attempt of the OTP"); the check is part of
a conditional UPDATE, so of two requests carrying one code exactly one wins.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
from sqlalchemy import or_, select, update

from passport import errors
from passport.accounts import service as accounts
from passport.accounts.models import TOTP_SECRET
from passport.audit import service as audit
from passport.clock import rfc3339
from passport.identity.phone import mask_phone
from passport.runtime import Runtime
from passport.security.tokens import normalize_recovery_key, same

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
SECRET_FIELD = TOTP_SECRET
# Guesses at a logged-in account's code (confirm, disable): three codes are valid at any time, so
# an unbounded guesser would need only ~330 000 tries.
TRIES = "10/minute"

_accounts = accounts.Account.__table__


@dataclass(frozen=True)
class CodeCheck:
    """The outcome of checking a code: the step it was accepted for, or why not."""

    step: int | None = None
    replayed: bool = False  # right code, but its step (or a later one) was already used

    @property
    def ok(self) -> bool:
        return self.step is not None


def invalid_totp() -> errors.DomainError:
    return errors.invalid("invalid_totp", "The code is wrong or has expired.", "code", status=400)


def totp_replayed() -> errors.DomainError:
    return errors.invalid("invalid_totp", "This code was already used. Wait for the next one.", "code", status=400)


def invalid_recovery_key() -> errors.DomainError:
    return errors.invalid("invalid_recovery_key", "The recovery key is wrong.", "recovery_key", status=400)


def new_secret() -> str:
    """160 random bits (RFC 4226 §4 recommends that length), base32 without padding."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def time_step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def check_code(secret: str, code: str | None, now: datetime, last_step: int | None) -> CodeCheck:
    """Check ``code`` against the steps around ``now``; ``last_step`` is the last accepted one."""
    candidate = "".join((code or "").split()) if isinstance(code, str) else ""
    if len(candidate) != DIGITS or not (candidate.isascii() and candidate.isdigit()):
        return CodeCheck()
    otp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = time_step(now)
    matched = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # Every step is compared (no early exit), and in constant time.
        if same(otp.generate_otp(step), candidate):
            matched = step
    if matched is None:
        return CodeCheck()
    if last_step is not None and matched <= last_step:
        return CodeCheck(replayed=True)
    return CodeCheck(step=matched)


def unused_step(step: int):
    """SQL condition: ``step`` is after the last accepted one (for a conditional UPDATE)."""
    return or_(_accounts.c.totp_last_step.is_(None), _accounts.c.totp_last_step < step)


def secret_of(rt: Runtime, account) -> str:
    return rt.keys.cipher.decrypt(account.totp_secret_enc, SECRET_FIELD, account.id)


def is_enabled(account) -> bool:
    return account.totp_enabled_at is not None and account.totp_secret_enc is not None


def recovery_key_matches(rt: Runtime, account, raw: str | None) -> bool:
    """One Argon2 verification, whether or not the account has a key (keep it out of write units)."""
    return rt.hasher.verify(account.recovery_key_hash if account else None, normalize_recovery_key(raw or ""))


def otpauth_uri(rt: Runtime, secret: str, account) -> str:
    """The Key URI an authenticator app scans. The label is the masked phone: the app shows it on
    a screen anyone nearby can read, and the full number is personal data (GB/T 35273 §7.2)."""
    phone = accounts.phone_of(rt, account)
    label = mask_phone(phone) if phone else account.id[:8]
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=label, issuer_name=rt.settings.totp_issuer)


def _row(db, account_id: str):
    row = db.execute(select(_accounts).where(_accounts.c.id == account_id)).first()
    if row is None:
        raise errors.not_found("account")
    return row


def _record(db, origin: audit.Origin, now: datetime, account_id: str, action: str, result: str = "ok",
            details: dict | None = None) -> None:
    audit.record(db, at=now, action=action, origin=origin, result=result, actor_type="user", actor_id=account_id,
                 subject_type="account", subject_id=account_id, details=details)


def status(rt: Runtime, account_id: str) -> dict:
    with rt.db.read() as db:
        row = _row(db, account_id)
    return {"enabled": is_enabled(row), "enabled_at": rfc3339(row.totp_enabled_at) if is_enabled(row) else None,
            "pending": row.totp_secret_enc is not None and row.totp_enabled_at is None}


def pending_enrollment(rt: Runtime, account_id: str) -> dict | None:
    """The secret waiting for its first code (for the settings page to show again), or None."""
    with rt.db.read() as db:
        row = _row(db, account_id)
    if row.totp_secret_enc is None or row.totp_enabled_at is not None:
        return None
    secret = secret_of(rt, row)
    return {"secret": secret, "otpauth_uri": otpauth_uri(rt, secret, row)}


def enroll(rt: Runtime, origin: audit.Origin, account_id: str) -> dict:
    """Store a new secret, not yet in force: the first code from the app turns it on (``confirm``)."""
    rt.limiter.hit(TRIES, "totp-enroll", account_id)
    secret = new_secret()
    now = rt.clock.now()
    with rt.db.write() as db:
        row = _row(db, account_id)
        # Conditional: a second factor in force is replaced only after it is turned off.
        done = db.execute(update(_accounts).where(_accounts.c.id == account_id, _accounts.c.totp_enabled_at.is_(None))
                          .values(totp_secret_enc=rt.keys.cipher.encrypt(secret, SECRET_FIELD, account_id),
                                  totp_last_step=None, updated_at=now)).rowcount
        if done:
            _record(db, origin, now, account_id, "totp.enrolled")
    if not done:
        raise errors.DomainError("totp_already_enabled",
                                 "Two-step verification is already on. Turn it off before setting it up again.", 409)
    return {"secret": secret, "otpauth_uri": otpauth_uri(rt, secret, row)}


def confirm(rt: Runtime, origin: audit.Origin, account_id: str, code: str) -> None:
    """Turn the enrolled secret on with a first code from the app."""
    rt.limiter.hit(TRIES, "totp", account_id)
    now = rt.clock.now()
    with rt.db.read() as db:
        row = _row(db, account_id)
    if row.totp_secret_enc is None or row.totp_enabled_at is not None:
        raise errors.DomainError("totp_not_enrolled", "Start setting up two-step verification first.", 409)
    check = check_code(secret_of(rt, row), code, now, row.totp_last_step)
    won = False
    with rt.db.write() as db:
        if check.ok:
            won = db.execute(
                update(_accounts)
                .where(_accounts.c.id == account_id, _accounts.c.totp_enabled_at.is_(None),
                       _accounts.c.totp_secret_enc == row.totp_secret_enc, unused_step(check.step))
                .values(totp_enabled_at=now, totp_last_step=check.step, updated_at=now)
            ).rowcount == 1
        if won:
            _record(db, origin, now, account_id, "totp.enabled")
        else:
            _record(db, origin, now, account_id, "totp.rejected", "failed",
                    {"during": "confirm", "reason": _reason(check)})
    if not won:
        raise _refusal(check)


def disable(rt: Runtime, origin: audit.Origin, account_id: str, *, code: str | None = None,
            recovery_key: str | None = None) -> None:
    """Turn the second factor off, proved by a current code or, when the app is lost, the recovery key."""
    rt.limiter.hit(TRIES, "totp", account_id)
    now = rt.clock.now()
    with rt.db.read() as db:
        row = _row(db, account_id)
    if not is_enabled(row):
        raise _not_enabled()
    by_key = code is None
    check = CodeCheck() if by_key else check_code(secret_of(rt, row), code, now, row.totp_last_step)
    proved = recovery_key_matches(rt, row, recovery_key) if by_key else check.ok
    won = False
    with rt.db.write() as db:
        if proved:
            # The same secret still in force, and (for a code) its step still unused.
            condition = [_accounts.c.id == account_id, _accounts.c.totp_enabled_at.is_not(None),
                         _accounts.c.totp_secret_enc == row.totp_secret_enc]
            if check.ok:
                condition.append(unused_step(check.step))
            won = db.execute(update(_accounts).where(*condition).values(
                totp_secret_enc=None, totp_enabled_at=None, totp_last_step=None, updated_at=now)).rowcount == 1
        if won:
            _record(db, origin, now, account_id, "totp.disabled", details={"by": "recovery_key" if by_key else "totp"})
        else:
            _record(db, origin, now, account_id, "totp.rejected", "failed",
                    {"during": "disable", "reason": ("wrong_recovery_key" if not proved else "changed") if by_key
                     else _reason(check)})
    if won:
        return
    if by_key:
        raise _not_enabled() if proved else invalid_recovery_key()
    raise _refusal(check)


def _not_enabled() -> errors.DomainError:
    return errors.DomainError("totp_not_enabled", "Two-step verification is off.", 409)


def _reason(check: CodeCheck) -> str:
    return "replayed" if check.ok or check.replayed else "wrong_code"


def _refusal(check: CodeCheck) -> errors.DomainError:
    """A right code that lost its conditional UPDATE was used by a concurrent request first."""
    return totp_replayed() if check.ok or check.replayed else invalid_totp()
