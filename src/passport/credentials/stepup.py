"""Step-up (issue 15): a sensitive change needs a recent proof of the password (or of an authenticator
code) in the session, not just a session. A stolen token alone must not turn on two-step
verification, bind an email address, start an export…: each would lock the owner out or take their
data.

A session is stepped up when it proved the password or an authenticator code within the last
``PASSPORT_STEP_UP_MINUTES``: at a password login (two-step ones too), at registration (the password
was chosen in that request), after an authenticator code at login, after a password change, and
after ``step_up`` here. A login by SMS code alone proves the phone, not the person who knows the
password: it does not count, nor does the recovery key after an SMS code. Every step-up rotates the
session token, so a token taken before it never holds the privilege.

Wrong passwords and codes count toward the same lock as failed logins (``sessions.count_failed_proof``)
and share the hourly current-password budget of the account (``PASSPORT_PASSWORD_CHECK_PER_HOUR``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update

from passport import errors
from passport.accounts import service as accounts
from passport.audit import service as audit
from passport.clock import as_utc
from passport.credentials import totp
from passport.credentials.service import password_matches, wrong_password
from passport.runtime import Runtime
from passport.sessions import service as sessions
from passport.work import unit_of_work

ACTION_FAILED = "session.step_up"
ACTION_PASSED = "session.stepped_up"
_accounts = accounts.Account.__table__


def step_up_required(methods: list[str] | None = None) -> errors.DomainError:
    """403 ``step_up_required``: confirm the password (``POST /me/step-up``) and try again."""
    return errors.DomainError("step_up_required", "Please confirm your password to continue.", 403,
                              extra={"step_up": "/api/v1/me/step-up", "methods": methods or ["password"]})


def window(rt: Runtime) -> timedelta:
    return timedelta(minutes=rt.settings.step_up_minutes)


def stepped_up_until(rt: Runtime, principal: sessions.Principal) -> datetime | None:
    """Until when the session counts as stepped up; None when it never proved the password."""
    at = principal.stepped_up_at
    return as_utc(at) + window(rt) if at is not None else None


def is_stepped_up(rt: Runtime, principal: sessions.Principal) -> bool:
    until = stepped_up_until(rt, principal)
    return until is not None and rt.clock.now() < until


def methods(account) -> list[str]:
    """What the account may step up with (``account``: a row with ``totp_enabled_at``, such as the one a
    session is read with; the secret is set whenever it is)."""
    return ["password", "totp"] if account.totp_enabled_at is not None else ["password"]


def step_up(rt: Runtime, origin: audit.Origin, principal: sessions.Principal, *, password: str | None = None,
            code: str | None = None) -> sessions.Issued:
    """Prove the password, or a code from the authenticator app when two-step verification is on; the
    session is stepped up and its token replaced (returned): the old one stops working. A wrong one
    (or any while the account is locked) answers 400 ``invalid_password`` | ``invalid_totp``."""
    if (password is None) == (code is None):
        raise errors.invalid("step_up_proof", "Enter your password or a code from your authenticator app.",
                             status=422)
    account_id = principal.account_id
    with rt.db.read() as db:
        account = accounts.get(db, account_id)
    now = rt.clock.now()
    by = "password" if password is not None else "totp"
    check = totp.CodeCheck()
    if by == "password":
        proved = password_matches(rt, account, password)  # the hourly current-password budget
    else:
        if not totp.is_enabled(account):
            raise errors.DomainError("totp_not_enabled", "Two-step verification is off.", 409)
        rt.limiter.hit(f"{rt.settings.password_check_per_hour}/hour", "password-check", account_id)
        rt.limiter.hit(totp.TRIES, "totp", account_id)
        check = totp.check_code(totp.secret_of(rt, account), code, now, account.totp_last_step)
        proved = check.ok
    issued = None
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        if check.replayed:
            # The right code, used before: not a guess (a double submit, a code read over a shoulder).
            work.audit(ACTION_FAILED, result="failed", subject=("account", account_id),
                       details={"by": by, "reason": "totp_replayed"})
        elif not proved or sessions.is_locked(account, now):
            sessions.count_failed_proof(rt, work.db, origin, account, now, action=ACTION_FAILED,
                                        reason=f"wrong_{by}")
        elif (by == "password" or _use_step(work.db, account, check.step)) and sessions.passed_proof(
                work.db, account_id, now):
            issued = sessions.rotate(rt, work.db, principal, origin)
            if issued is None:  # this session ended meanwhile: roll the proof back, answer 401
                raise errors.not_authenticated()
            work.audit(ACTION_PASSED, subject=("account", account_id), details={"by": by, "session_rotated": True})
        else:
            # Locked (or the code used) by another request since the account was read.
            work.audit(ACTION_FAILED, result="denied", subject=("account", account_id),
                       details={"by": by, "reason": "changed"})
    if issued is not None:
        return issued
    if by == "password":
        raise wrong_password()
    raise totp.totp_replayed() if check.ok or check.replayed else totp.invalid_totp()


def _use_step(db, account, step: int) -> bool:
    """Spend the code's time step (RFC 6238 §5.2: a code is accepted once), over the secret just read."""
    return db.execute(update(_accounts).where(_accounts.c.id == account.id,
                                              _accounts.c.totp_secret_enc == account.totp_secret_enc,
                                              _accounts.c.totp_enabled_at.is_not(None), totp.unused_step(step))
                      .values(totp_last_step=step)).rowcount == 1
