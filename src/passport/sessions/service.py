"""Login, sessions and logout (API.md "Sessions", COMPLIANCE C5)."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio
from sqlalchemy import bindparam, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts import service as accounts
from passport.audit import service as audit
from passport.clock import as_utc, china_time, rfc3339
from passport.credentials import codes, totp
from passport.db import HotStatement, new_id
from passport.ipregion import resolver as ip_regions
from passport.notify import outbox
from passport.runtime import Runtime
from passport.security.tokens import b64, keyed_digest, new_token, same, token_digest
from passport.senders.sms import SmsMessage
from passport.sessions import devices
from passport.sessions.models import LoginSession

# Touching last_seen_at on every request would turn every read into a write.
_TOUCH_EVERY = timedelta(minutes=5)
REFUSED_STATUSES = {"frozen": "account_frozen", "suspended": "account_suspended",
                    "terminated": "account_terminated"}
# No session starts for an account in one of these, even one that changed status after it was read
# (a finalisation or a suspension racing the login): the session-starting writes check it again.
NO_SESSION_STATUSES = (*REFUSED_STATUSES, "cancelled")


@dataclass(frozen=True)
class Issued:
    id: str
    token: str
    expires_at: datetime

    def public(self) -> dict:
        return {"id": self.id, "token": self.token, "expires_at": rfc3339(self.expires_at)}


@dataclass(frozen=True)
class Principal:
    account_id: str
    session_id: str
    status: str
    account: Any = None  # the account columns read with the session (see _AUTHENTICATE)
    stepped_up_at: datetime | None = None  # the last password or authenticator proof of this session
    method: str | None = None  # how the session started (password, sms_code, register)


def new_session_token() -> str:
    return new_token()


# What a higher domain does when sessions end (single sign-on: revoke the apps' tokens of those sessions
# and queue their back-channel logouts), in the same transaction: ``hook(rt, db, account_id,
# session_ids, now)``, ``session_ids`` None for every session of the account (a password change, a cancellation).
# Registered at import time by the domain that answers (``@on_sessions_ended``); nothing happens until then.
SessionsEnded = Callable[[Runtime, Session, str, "tuple[str, ...] | None", datetime], None]
_ended_hooks: list[SessionsEnded] = []


def on_sessions_ended(hook: SessionsEnded) -> SessionsEnded:
    _ended_hooks.append(hook)
    return hook


# A session that goes on under a new token (``rotate``: a step-up, a password change): what hangs on the
# old session id moves to the new one (``hook(db, old_session_id, new_session_id)``).
_moved_hooks: list[Callable[[Session, str, str], None]] = []


def on_session_moved(hook: Callable[[Session, str, str], None]) -> Callable[[Session, str, str], None]:
    _moved_hooks.append(hook)
    return hook


def sessions_ended(rt: Runtime, db: Session, account_id: str, session_ids: tuple[str, ...] | None,
                   now: datetime) -> None:
    """Tell the registered hooks that these sessions (None: all of the account's) ended, in ``db``'s
    transaction. Called where sessions end: logout, revocation, a credential change, a freeze, a
    suspension or termination, cancellation."""
    if session_ids == ():
        return
    for hook in _ended_hooks:
        hook(rt, db, account_id, session_ids, now)


# Hot-path statements on the tables (not the mapped classes), built once: the ORM's insert/update
# machinery (identity map synchronisation) costs more than the SQL itself.
_START = insert(LoginSession.__table__)
# Clears the failure count where the lock is checked, so a guess that raced a lockout loses.
_accounts = accounts.Account.__table__
_CLEAR_FAILURES = (update(_accounts)
                   .where(_accounts.c.id == bindparam("aid"),
                          _accounts.c.status.not_in([literal(status) for status in NO_SESSION_STATUSES]),
                          or_(_accounts.c.locked_until.is_(None), _accounts.c.locked_until <= bindparam("now")))
                   .values(failed_logins=0, locked_until=None))


_STARTED = ("id", "token_hash", "account_id", "method", "ip", "user_agent", "created_at", "last_seen_at",
            "expires_at", "stepped_up_at")
# PostgreSQL: the clear and the session insert in one statement, one round trip fewer per login.
# (Session values are bound as s_<column>: a parameter named after an accounts column would join the
# UPDATE's SET clause.)
_cleared = _CLEAR_FAILURES.returning(_accounts.c.id).cte("cleared")
_START_IF_CLEARED = insert(LoginSession.__table__).from_select(_STARTED, select(*(
    _cleared.c.id if name == "account_id" else bindparam(f"s_{name}", type_=LoginSession.__table__.c[name].type)
    for name in _STARTED))).returning(LoginSession.__table__.c.id)


# PostgreSQL, the successful password login: clear the failures, start the session and append
# login.succeeded in one autocommit statement (audit.appending_after) — one round trip where a
# transaction takes five. It does nothing when the account locked or changed status since it was
# read; the caller then takes the transactional path, which finds out why.
_START_RECORDED = HotStatement(audit.appending_after(_START_IF_CLEARED.cte("started")))


def _find_for_login(rt: Runtime, target: accounts.Target):
    if rt.db.is_sqlite:
        with rt.db.connect() as conn:
            return accounts.find(conn, target)
    return rt.db.hot(accounts.FIND_HOT[target.channel], target.params)


def _new_session(rt: Runtime, account_id: str, token: str, method: str, origin: audit.Origin,
                 stepped_up: bool) -> tuple[dict, Issued]:
    """``stepped_up``: the session starts on a proof of the password or an authenticator code, which
    counts as a step-up (``credentials.stepup``); a code sent to the phone alone does not."""
    now = rt.clock.now()
    expires_at = now + timedelta(days=rt.settings.session_absolute_days)
    row = {"id": new_id(), "token_hash": token_digest(token), "account_id": account_id, "method": method,
           "ip": origin.ip, "user_agent": (origin.user_agent or "")[:512] or None, "created_at": now,
           "last_seen_at": now, "expires_at": expires_at, "stepped_up_at": now if stepped_up else None}
    return row, Issued(row["id"], token, min(expires_at, now + timedelta(days=rt.settings.session_idle_days)))


def start_session(rt: Runtime, db: Session, account_id: str, token: str, method: str,
                  origin: audit.Origin, *, stepped_up: bool = False) -> Issued:
    row, issued = _new_session(rt, account_id, token, method, origin, stepped_up)
    db.execute(_START, row)
    return issued


def start_session_if_unlocked(rt: Runtime, db: Session, account_id: str, token: str, method: str,
                              origin: audit.Origin, now: datetime) -> Issued | None:
    """Clear the failure count and start a session, or do neither and return None when the account
    locked since it was read (a guess that raced a lockout loses) or took a status that has no
    sessions (see ``status_changed``). Only password logins take this path: the session is stepped up."""
    row, issued = _new_session(rt, account_id, token, method, origin, True)
    if db.get_bind().dialect.name == "postgresql":
        bound = {f"s_{name}": value for name, value in row.items()} | {"aid": account_id, "now": now}
        return issued if db.execute(_START_IF_CLEARED, bound).first() is not None else None
    if db.execute(_CLEAR_FAILURES, {"aid": account_id, "now": now}).rowcount != 1:
        return None
    db.execute(_START, row)
    return issued


def start_session_recorded(rt: Runtime, account_id: str, token: str, method: str, origin: audit.Origin,
                           now: datetime) -> Issued | None:
    """PostgreSQL only: ``start_session_if_unlocked`` and its login.succeeded record as one autocommit
    statement. None: nothing was written (the account locked or changed status meanwhile)."""
    issued, bound = _recorded_start(rt, account_id, token, method, origin, now)
    return issued if rt.db.hot(_START_RECORDED, bound) is not None else None


async def _start_session_recorded_async(rt: Runtime, account_id: str, token: str, method: str,
                                        origin: audit.Origin, now: datetime) -> Issued | None:
    issued, bound = _recorded_start(rt, account_id, token, method, origin, now)
    return issued if await rt.db.hot_async(_START_RECORDED, bound) is not None else None


def _recorded_start(rt: Runtime, account_id: str, token: str, method: str, origin: audit.Origin,
                    now: datetime) -> tuple[Issued, dict]:
    row, issued = _new_session(rt, account_id, token, method, origin, True)  # a password login
    return issued, ({f"s_{name}": value for name, value in row.items()} | {"aid": account_id, "now": now}
                    | audit.append_params(rt.keys.audit, at=now, action="login.succeeded", origin=origin,
                                          actor_type="user", actor_id=account_id, subject_type="account",
                                          subject_id=account_id, details={"method": method}))


def status_changed(db: Session, account_id: str):
    """The account as it is now, when a session-starting write found it in a status that has no
    sessions (it changed after it was read); None otherwise."""
    now_row = db.execute(_BY_ID, {"aid": account_id}).first()
    return now_row if now_row is None or now_row.status in NO_SESSION_STATUSES else None


def _refuse_changed(db: Session, origin: audit.Origin, account, now: datetime, method: str):
    """Record the refusal of a login whose account changed status meanwhile; returns the row to
    answer with (``_refuse_status``: 403 for frozen, suspended, terminated; a cancelled one gets
    the answer of a wrong password)."""
    _record_refusal(db, origin, account, now, method)
    return account


def _identify(rt: Runtime, login: str) -> accounts.Target:
    login = (login or "").strip()
    if "@" in login:
        return accounts.email_target(rt, login, "login")
    return accounts.sms_target(rt, login, "login")


def _refuse_status(account) -> None:
    code = REFUSED_STATUSES.get(account.status)
    if code:
        raise errors.DomainError(
            code, {"account_frozen": "This account is frozen. Recover it with your phone and recovery key.",
                   "account_suspended": "This account is suspended.",
                   "account_terminated": "This account has been terminated."}[code],
            403, extra={"reason": account.status_reason, "until": rfc3339(account.status_until)})


def refuse_status(account) -> None:
    """403 ``account_frozen`` | ``account_suspended`` | ``account_terminated`` with the reason and end
    time, as a password login answers (passkey sign-in uses it too)."""
    _refuse_status(account)
def ended_by_status(rt: Runtime, token: str | None) -> errors.DomainError | None:
    """Why the session behind ``token`` stopped working when its account was frozen, suspended or
    terminated (the refusal a login would answer, with the reason and end time staff gave): told to
    the browser that held it, so its owner is not dropped at the login page without a word. None for
    any other token (expired, unknown, an active account)."""
    if (digest := _digest(token)) is None:
        return None
    with rt.db.read() as db:
        account = db.execute(select(accounts.Account).join(LoginSession, LoginSession.account_id == accounts.Account.id)
                             .where(LoginSession.token_hash == digest)).scalar_one_or_none()
        if account is None or account.status not in REFUSED_STATUSES:
            return None
        try:
            _refuse_status(account)
        except errors.DomainError as exc:
            return exc
    return None


def _lapsed(account, now: datetime) -> bool:
    return (account.status == "suspended" and account.status_until is not None
            and as_utc(account.status_until) <= now)


def _lift_lapsed(rt: Runtime, db: Session, origin: audit.Origin, account, now: datetime):
    """A suspension whose end time has passed no longer blocks: the account turns active again at
    its next login (a lazy fix-up, so no timer is needed). Returns the row as it now is."""
    if not _lapsed(account, now):
        return account
    lifted = accounts.set_status(db, account.id, "active", expected="suspended", now=now, reason=None, until=None,
                                 where=accounts.Account.status_until <= now)
    if lifted:
        audit.record(db, at=now, action="account.suspension_ended", origin=origin, actor_type="system",
                     subject_type="account", subject_id=account.id,
                     details={"until": rfc3339(account.status_until)})
        forget_sessions(rt, account_id=account.id)
    return db.execute(_BY_ID, {"aid": account.id}).first()


def login_password(rt: Runtime, origin: audit.Origin, *, login: str, password: str,
                   device: str | None = None) -> tuple[Issued, dict]:
    """Unknown account, wrong password and locked account give one answer, at the cost of one hash.
    With TOTP on, the right password gets 401 ``mfa_required`` and an mfa_token, not a session.
    ``device`` is the client's device cookie (``devices.note_login``: a new one is told to the owner)."""
    target = _identify(rt, login)
    # Redis down: counted in this process (README "When Redis or the database is down"); a password
    # guess still costs a hash and five wrong ones lock the account, in the database.
    rt.limiter.hit(f"{rt.settings.login_per_ip_minute}/minute", "login-ip", origin.ip or "-", when_down="local")
    account = _find_for_login(rt, target)
    ok = rt.hasher.verify(account.password_hash if account else None, password or "")
    now = rt.clock.now()
    token = new_session_token()
    if _may_start_recorded(rt, account, ok, now) and (
            issued := start_session_recorded(rt, account.id, token, "password", origin, now)) is not None:
        devices.note_login(rt, origin, account.id, device, "password")
        return issued, accounts.view(rt, account)
    return _conclude_password(rt, origin, target, account, ok, now, token, device)


async def login_password_async(rt: Runtime, origin: audit.Origin, *, login: str, password: str,
                               device: str | None = None) -> tuple[Issued, dict]:
    """``login_password`` on PostgreSQL for an event loop: the account read, the hash and the
    one-statement start of a session are awaited, no request thread is held (see
    ``Database.hot_async``); anything but a plain success finishes on a thread as before."""
    target = _identify(rt, login)
    await rt.limiter.hit_async(f"{rt.settings.login_per_ip_minute}/minute", "login-ip", origin.ip or "-",
                               when_down="local")
    account = await rt.db.hot_async(accounts.FIND_HOT[target.channel], target.params)
    ok = await rt.hasher.verify_async(account.password_hash if account else None, password or "")
    now = rt.clock.now()
    token = new_session_token()
    if _may_start_recorded(rt, account, ok, now) and (
            issued := await _start_session_recorded_async(rt, account.id, token, "password", origin, now)):
        await devices.note_login_async(rt, origin, account.id, device, "password")
        return issued, accounts.view(rt, account)
    return await anyio.to_thread.run_sync(
        functools.partial(_conclude_password, rt, origin, target, account, ok, now, token, device))


def _may_start_recorded(rt: Runtime, account, ok: bool, now: datetime) -> bool:
    """PostgreSQL, a right password for an account that may log in without more: the one-statement
    start (``start_session_recorded``) applies."""
    return (ok and account is not None and not rt.db.is_sqlite and not _locked(account, now)
            and account.status not in REFUSED_STATUSES and not totp.is_enabled(account))


def _locked(account, now: datetime) -> bool:
    """Locked by too many failures, as read (the session-starting writes check it again)."""
    return bool(account and account.locked_until and account.locked_until > now)


def _conclude_password(rt: Runtime, origin: audit.Origin, target: accounts.Target, account, ok: bool,
                       now: datetime, token: str, device: str | None = None) -> tuple[Issued, dict]:
    locked = _locked(account, now)
    if account is None or locked or not ok:
        with rt.db.write() as db:
            notice = _count_failed_login(rt, db, origin, account, locked, now, target.channel)
        _send_notice(rt, notice)
        raise errors.invalid_credentials()
    issued = challenge = None
    with rt.db.write() as db:
        account = _lift_lapsed(rt, db, origin, account, now)
        if account.status in REFUSED_STATUSES:
            _record_refusal(db, origin, account, now, "password")
        elif totp.is_enabled(account):
            # The failure count is left alone: it counts wrong authenticator codes too (login_mfa).
            challenge = _challenge(rt, db, origin, account, now, "password")
        elif (issued := start_session_if_unlocked(rt, db, account.id, token, "password", origin, now)) is None:
            if (changed := status_changed(db, account.id)) is not None:
                account = _refuse_changed(db, origin, changed, now, "password")
            else:
                _count_failed_login(rt, db, origin, account, True, now, target.channel)
        else:
            audit.record(db, at=now, action="login.succeeded", origin=origin, actor_type="user",
                         actor_id=account.id, subject_type="account", subject_id=account.id,
                         details={"method": "password"})
    _refuse_status(account)
    if challenge is not None:
        raise challenge
    if issued is None:
        raise errors.invalid_credentials()
    devices.note_login(rt, origin, account.id, device, "password")
    return issued, accounts.view(rt, account)


def _record_refusal(db: Session, origin: audit.Origin, account, now: datetime, method: str) -> None:
    audit.record(db, at=now, action="login.refused", origin=origin, result="denied", subject_type="account",
                 subject_id=account.id, details={"status": account.status, "method": method})


def _count_failed_login(rt: Runtime, db: Session, origin: audit.Origin, account, locked: bool, now: datetime,
                    channel: str, *, reason: str = "wrong_password", action: str = "login.failed") -> SmsMessage | None:
    """Count a failed login (``action`` names the event: a failed step-up counts too); at the limit,
    lock the account. Returns the notice for the owner when it locks: the caller sends it after the
    unit of work commits (a rolled-back lock is no news)."""
    settings = rt.settings
    if account is None:
        audit.record(db, at=now, action="login.failed", origin=origin, result="failed",
                     details={"reason": "unknown_account", "by": channel})
        return None
    if locked:
        audit.record(db, at=now, action=action, origin=origin, result="denied", subject_type="account",
                     subject_id=account.id, details={"reason": "locked"})
        return None
    failures = db.scalar(
        update(accounts.Account).where(accounts.Account.id == account.id)
        .values(failed_logins=accounts.Account.failed_logins + 1)
        .returning(accounts.Account.failed_logins)
    )
    audit.record(db, at=now, action=action, origin=origin, result="failed", subject_type="account",
                 subject_id=account.id, details={"reason": reason, "failures": failures})
    if failures < settings.login_max_failures:
        return None
    until = now + timedelta(minutes=settings.login_lock_minutes)
    db.execute(update(accounts.Account).where(accounts.Account.id == account.id)
               .values(failed_logins=0, locked_until=until))
    audit.record(db, at=now, action="login.locked", origin=origin, result="denied", actor_type="system",
                 subject_type="account", subject_id=account.id, details={"until": rfc3339(until)})
    return _lock_notice(rt, db, account, settings.login_lock_minutes)


def count_failed_proof(rt: Runtime, db: Session, origin: audit.Origin, account, now: datetime, *, action: str,
                       reason: str) -> None:
    """A wrong password or authenticator code given by a signed-in session (a step-up): it counts
    toward the same lock as a failed login, so a stolen session guesses no faster than a login form.
    While the account is locked the attempt is recorded as denied and not counted."""
    _count_failed_login(rt, db, origin, account, _locked(account, now), now, "session", reason=reason, action=action)


def passed_proof(db: Session, account_id: str, now: datetime) -> bool:
    """A signed-in session proved the password: clear the failure count, as a login does. False, and
    nothing changed, when the account is locked (read again here) or took a status without sessions."""
    return db.execute(_CLEAR_FAILURES, {"aid": account_id, "now": now}).rowcount == 1


def is_locked(account, now: datetime) -> bool:
    """Locked by too many failed logins (or step-ups) as read."""
    return _locked(account, now)


def _lock_notice(rt: Runtime, db: Session, account, minutes: int) -> SmsMessage | None:
    """Tell the owner at once (COMPLIANCE C4: report unauthorised use), naming what to do: inbox and
    SMS through the outbox, in the lock's unit of work (a rolled-back lock is no news)."""
    outbox.notify_account(rt, db, account_id=account.id, template="notice_locked",
                          params={"minutes": minutes, "time": china_time(rt.clock.now())})
    return None


def _send_notice(rt: Runtime, notice: SmsMessage | None) -> None:
    if notice is not None:
        rt.dispatch_sms(notice)


def login_code(rt: Runtime, origin: audit.Origin, *, phone: str, code: str,
               device: str | None = None) -> tuple[Issued, dict]:
    """Login by SMS code. A proved code also lifts a password lock: the owner holds the phone.
    With TOTP on, the code is the first factor only: 401 ``mfa_required``, and a lock stays."""
    target = accounts.sms_target(rt, phone)
    rt.limiter.hit(f"{rt.settings.login_per_ip_minute}/minute", "login-ip", origin.ip or "-")
    now = rt.clock.now()
    token = new_session_token()
    issued = challenge = None
    with rt.db.write() as db:
        account = accounts.find(db, target)
        outcome = codes.redeem_code(rt, db, target, codes.Purpose.LOGIN, code) if account else codes.Redeemed.NONE
        if outcome is codes.Redeemed.OK:
            account = _lift_lapsed(rt, db, origin, account, now)
        proved = outcome is codes.Redeemed.OK and account.status not in REFUSED_STATUSES
        if proved and totp.is_enabled(account):
            # The lock also counts wrong authenticator codes: holding the phone must not lift it.
            if _locked(account, now):
                _count_failed_login(rt, db, origin, account, True, now, target.channel)
            else:
                challenge = _challenge(rt, db, origin, account, now, "sms_code")
        elif proved and db.execute(update(_accounts).where(_accounts.c.id == account.id,
                                                          _accounts.c.status.not_in(NO_SESSION_STATUSES))
                                   .values(failed_logins=0, locked_until=None)).rowcount != 1:
            # The account changed status since it was read: no session.
            account = _refuse_changed(db, origin, status_changed(db, account.id) or account, now, "sms_code")
        elif proved:
            # A proved code lifts a password lock (the owner holds the phone); it was cleared above.
            issued = start_session(rt, db, account.id, token, "sms_code", origin)
            audit.record(db, at=now, action="login.succeeded", origin=origin, actor_type="user",
                         actor_id=account.id, subject_type="account", subject_id=account.id,
                         details={"method": "sms_code"})
        elif outcome is codes.Redeemed.OK:
            _record_refusal(db, origin, account, now, "sms_code")
        else:
            audit.record(db, at=now, action="login.failed", origin=origin, result="failed",
                         subject_type="account" if account else None, subject_id=account.id if account else None,
                         details={"reason": "invalid_code", "method": "sms_code"})
    if outcome is not codes.Redeemed.OK:
        raise errors.invalid_credentials()
    _refuse_status(account)
    if challenge is not None:
        raise challenge
    if issued is None:
        raise errors.invalid_credentials()
    devices.note_login(rt, origin, account.id, device, "sms_code")
    return issued, accounts.view(rt, account)


# --- second factor (TOTP) --------------------------------------------------------------------------

MFA_METHODS = ("password", "sms_code")
_BY_ID = select(_accounts).where(_accounts.c.id == bindparam("aid"))
# The second step passes once: it moves totp_last_step, which the mfa_token is bound to; the step
# must be unused (replay) and the account unlocked, all in the one conditional UPDATE.
_PASS_SECOND_STEP = (
    update(_accounts)
    .where(_accounts.c.id == bindparam("aid"), _accounts.c.totp_enabled_at.is_not(None),
           _accounts.c.status.not_in(NO_SESSION_STATUSES),
           _accounts.c.totp_last_step.is_not_distinct_from(bindparam("last_step")),
           or_(_accounts.c.totp_last_step.is_(None), _accounts.c.totp_last_step < bindparam("step")),
           or_(_accounts.c.locked_until.is_(None), _accounts.c.locked_until <= bindparam("now")))
    .values(totp_last_step=bindparam("step"), failed_logins=0, locked_until=None)
)


@dataclass(frozen=True)
class MfaClaim:
    account_id: str
    expires: int  # Unix seconds
    method: str
    nonce: str
    mac: str


def mfa_required(token: str, seconds: int) -> errors.DomainError:
    return errors.DomainError("mfa_required", "Enter the 6-digit code from your authenticator app.", 401,
                              extra={"mfa_token": token, "expires_in": seconds})


def _mfa_mac(rt: Runtime, account, account_id: str, expires: int, method: str, nonce: str,
             key: bytes | None = None) -> str:
    """HMAC over the claim and the account's second-factor state: a passed second step moves
    totp_last_step, so a token works once; a new password or a new secret ends it too. Made with the
    current secret key; checked against each configured one (``key``) while it rotates."""
    state = (account.password_hash or "", str(account.totp_last_step), rfc3339(account.totp_enabled_at) or "")
    return b64(keyed_digest(key or rt.keys.secret, "mfa_token", account_id, str(expires), method, nonce, *state))


def new_mfa_token(rt: Runtime, account, method: str, now: datetime) -> str:
    expires = int(now.timestamp()) + rt.settings.mfa_token_seconds
    nonce = secrets.token_hex(8)
    return ".".join((account.id, str(expires), method, nonce, _mfa_mac(rt, account, account.id, expires, method,
                                                                         nonce)))


def read_mfa_token(raw: str | None) -> MfaClaim | None:
    """The claim of a well-formed token; its MAC is checked against the account (``_mfa_mac``)."""
    parts = raw.split(".") if isinstance(raw, str) and len(raw) <= 256 else []
    if len(parts) != 5 or not (parts[1].isascii() and parts[1].isdigit()) or parts[2] not in MFA_METHODS:
        return None
    return MfaClaim(parts[0], int(parts[1]), parts[2], parts[3], parts[4])


def _challenge(rt: Runtime, db: Session, origin: audit.Origin, account, now: datetime,
               method: str) -> errors.DomainError:
    audit.record(db, at=now, action="login.mfa_required", origin=origin, actor_type="user", actor_id=account.id,
                 subject_type="account", subject_id=account.id, details={"method": method})
    return mfa_required(new_mfa_token(rt, account, method, now), rt.settings.mfa_token_seconds)


def login_mfa(rt: Runtime, origin: audit.Origin, *, mfa_token: str, code: str | None = None,
              recovery_key: str | None = None, device: str | None = None) -> tuple[Issued, dict]:
    """The second login step: the mfa_token from the first, and a code from the authenticator app
    or, as the factor of last resort, the recovery key. Wrong ones count toward the same lockout as
    wrong passwords; a bad, used or expired token answers like a wrong password."""
    # The password login's second step: the same policy when Redis is down.
    rt.limiter.hit(f"{rt.settings.login_per_ip_minute}/minute", "login-ip", origin.ip or "-", when_down="local")
    now = rt.clock.now()
    claim = read_mfa_token(mfa_token)
    account = None
    if claim is not None and claim.expires > now.timestamp():
        with rt.db.connect() as conn:
            account = conn.execute(_BY_ID, {"aid": claim.account_id}).first()
    if (account is None or account.status == "cancelled" or not totp.is_enabled(account)
            or not any([same(claim.mac, _mfa_mac(rt, account, claim.account_id, claim.expires, claim.method,
                                                 claim.nonce, key)) for key in rt.keys.secrets])):
        with rt.db.write() as db:
            audit.record(db, at=now, action="login.failed", origin=origin, result="failed",
                         details={"reason": "invalid_mfa_token"})
        raise errors.invalid_credentials()

    by_key = code is None
    if by_key:
        proved = totp.recovery_key_matches(rt, account, recovery_key)
        check = totp.CodeCheck()
        # A recovery-key pass uses up the current step too, which ends the token like a code would.
        step = max(totp.time_step(now), (account.totp_last_step or 0) + 1)
    else:
        check = totp.check_code(totp.secret_of(rt, account), code, now, account.totp_last_step)
        proved, step = check.ok, check.step
    locked = _locked(account, now)
    factor = "recovery_key" if by_key else "totp"
    token = new_session_token()
    issued = notice = None
    with rt.db.write() as db:
        account = _lift_lapsed(rt, db, origin, account, now)
        if account.status in REFUSED_STATUSES:
            _record_refusal(db, origin, account, now, claim.method)
        elif locked:
            _count_failed_login(rt, db, origin, account, True, now, factor)
        elif check.replayed:
            # The right code, used before: a slow double submit, or a code read over a shoulder.
            audit.record(db, at=now, action="login.failed", origin=origin, result="failed", subject_type="account",
                         subject_id=account.id, details={"reason": "totp_replayed"})
        elif not proved:
            notice = _count_failed_login(rt, db, origin, account, False, now, factor, reason=f"wrong_{factor}")
        elif db.execute(_PASS_SECOND_STEP, {"aid": account.id, "last_step": account.totp_last_step, "step": step,
                                            "now": now}).rowcount != 1:
            if (changed := status_changed(db, account.id)) is not None:
                # The account changed status since it was read (a finalisation, a suspension): no session.
                account = _refuse_changed(db, origin, changed, now, claim.method)
            else:
                # Another request passed (or the account locked) in between: this token is spent.
                audit.record(db, at=now, action="login.failed", origin=origin, result="failed",
                             subject_type="account", subject_id=account.id, details={"reason": "mfa_token_spent"})
        else:
            # The authenticator code, or the password of the first step, counts as a step-up.
            issued = start_session(rt, db, account.id, token, claim.method, origin,
                                   stepped_up=not by_key or claim.method == "password")
            audit.record(db, at=now, action="login.succeeded", origin=origin, actor_type="user",
                         actor_id=account.id, subject_type="account", subject_id=account.id,
                         details={"method": claim.method, "second_factor": factor})
    _send_notice(rt, notice)
    _refuse_status(account)
    if issued is not None:
        devices.note_login(rt, origin, account.id, device, claim.method)
        return issued, accounts.view(rt, account)
    if locked or account.status == "cancelled":
        raise errors.invalid_credentials()
    if by_key:
        raise totp.invalid_recovery_key() if not proved else errors.invalid_credentials()
    raise totp.totp_replayed() if proved or check.replayed else totp.invalid_totp()


# Built once: the hot path of every authenticated request is one indexed join, session → account.
_sessions = LoginSession.__table__
_AUTHENTICATE = (
    select(_sessions.c.id.label("session_id"), _sessions.c.last_seen_at, _sessions.c.expires_at,
           _sessions.c.revoked_at, _accounts.c.id, _accounts.c.kind, _accounts.c.status, _accounts.c.nickname,
           _accounts.c.bio, _accounts.c.nickname_pending, _accounts.c.bio_pending, _accounts.c.avatar_id,
           _accounts.c.avatar_pending_id,
           _accounts.c.phone_enc, _accounts.c.email_enc, _accounts.c.created_at,
           _accounts.c.real_name_status, _accounts.c.real_name_enc, _accounts.c.id_number_enc,
           _accounts.c.totp_enabled_at, _sessions.c.method.label("session_method"), _sessions.c.stepped_up_at)
    .join(_accounts, _accounts.c.id == _sessions.c.account_id)
    .where(_sessions.c.token_hash == bindparam("token_hash"))
)
_AUTHENTICATE_HOT = HotStatement(_AUTHENTICATE, retry=True)
_TOUCH = update(_sessions).where(_sessions.c.id == bindparam("sid")).values(last_seen_at=bindparam("now"))


def authenticate(rt: Runtime, token: str | None) -> Principal | None:
    """One indexed read per request; a write only when last_seen_at is more than 5 minutes old.
    The principal carries the account row, so handlers that show it need no second query."""
    principal, stale = lookup(rt, token)
    if stale:
        touch(rt, principal)
    return principal


def lookup(rt: Runtime, token: str | None) -> tuple[Principal | None, bool]:
    """The read half of ``authenticate``: (principal or None, whether last_seen_at needs a touch).

    A row read from the database is kept in the process's sessions cache for
    ``session_cache_seconds``; every validity check runs again on each use."""
    if (digest := _digest(token)) is None:
        return None, False
    row = rt.sessions_cache.get(digest)
    fresh = row is None
    if fresh:
        with rt.db.connect() as conn:
            row = conn.execute(_AUTHENTICATE, {"token_hash": digest}).first()
    return _checked(rt, digest, row, fresh)


async def lookup_async(rt: Runtime, token: str | None) -> tuple[Principal | None, bool]:
    """``lookup`` on PostgreSQL for an event loop: a cached row costs no I/O, a fresh one is read
    through the loop's own connections (``Database.hot_async``), no thread hand-off either way."""
    if (digest := _digest(token)) is None:
        return None, False
    row = rt.sessions_cache.get(digest)
    fresh = row is None
    if fresh:
        row = await rt.db.hot_async(_AUTHENTICATE_HOT, {"token_hash": digest})
    return _checked(rt, digest, row, fresh)


def _digest(token: str | None) -> bytes | None:
    """The digest a session is found by; None for what cannot be a token (nothing to look up)."""
    return token_digest(token) if token and len(token) <= 128 else None


def _checked(rt: Runtime, digest: bytes, row, fresh: bool) -> tuple[Principal | None, bool]:
    if row is None:
        return None, False
    if fresh:
        rt.sessions_cache.put(digest, row)
    now = rt.clock.now()
    if row.revoked_at is not None or row.expires_at <= now:
        return None, False
    if row.last_seen_at + timedelta(days=rt.settings.session_idle_days) <= now:
        return None, False
    if row.status in REFUSED_STATUSES or row.status == "cancelled":
        return None, False
    return (Principal(row.id, row.session_id, row.status, row, row.stepped_up_at, row.session_method),
            fresh and now - row.last_seen_at > _TOUCH_EVERY)


def forget_sessions(rt: Runtime, *, session_id: str | None = None, account_id: str | None = None) -> None:
    """Drop cached session rows after a change to the session or its account."""
    rt.sessions_cache.drop(lambda row: row.session_id == session_id or row.id == account_id)


def touch(rt: Runtime, principal: Principal) -> None:
    with rt.db.write() as db:
        db.execute(_TOUCH, {"sid": principal.session_id, "now": rt.clock.now()})
    forget_sessions(rt, session_id=principal.session_id)


def list_sessions(rt: Runtime, principal: Principal) -> list[dict]:
    now = rt.clock.now()
    idle_cutoff = now - timedelta(days=rt.settings.session_idle_days)
    with rt.db.read() as db:
        rows = db.scalars(
            select(LoginSession).where(LoginSession.account_id == principal.account_id,
                                       LoginSession.revoked_at.is_(None), LoginSession.expires_at > now,
                                       LoginSession.last_seen_at > idle_cutoff)
            .order_by(LoginSession.last_seen_at.desc())
        ).all()
    regions = ip_regions(rt.settings.ip_region_file)
    return [{"id": r.id, "created_at": rfc3339(r.created_at), "last_seen_at": rfc3339(r.last_seen_at),
             "ip": r.ip, "ip_region": regions.resolve(r.ip), "user_agent": r.user_agent, "method": r.method,
             "current": r.id == principal.session_id} for r in rows]


def revoke_others(rt: Runtime, origin: audit.Origin, principal: Principal) -> int:
    """Sign out all other devices: revoke every live session of the account but this one."""
    with rt.db.write() as db:
        revoked = revoke_all(rt, db, principal.account_id, keep_session_id=principal.session_id)
        audit.record(db, at=rt.clock.now(), action="session.revoked_others", origin=origin, actor_type="user",
                     actor_id=principal.account_id, subject_type="account", subject_id=principal.account_id,
                     details={"count": revoked})
    # Again after the commit: a request between revoke_all's drop and the commit may have cached a row.
    forget_sessions(rt, account_id=principal.account_id)
    return revoked


def revoke(rt: Runtime, origin: audit.Origin, principal: Principal, session_id: str) -> None:
    now = rt.clock.now()
    with rt.db.write() as db:
        done = db.execute(
            update(LoginSession).where(LoginSession.id == session_id,
                                       LoginSession.account_id == principal.account_id,
                                       LoginSession.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount
        if not done:
            raise errors.not_found("session")
        sessions_ended(rt, db, principal.account_id, (session_id,), now)
        action = "logout" if session_id == principal.session_id else "session.revoked"
        audit.record(db, at=now, action=action, origin=origin, actor_type="user", actor_id=principal.account_id,
                     subject_type="session", subject_id=session_id)
    forget_sessions(rt, session_id=session_id)


def revoke_all(rt: Runtime, db: Session, account_id: str, *, keep_session_id: str | None = None) -> int:
    """Revoke every live session of the account (but ``keep_session_id``), inside the caller's
    unit of work. Returns how many were revoked; the caller records why in its audit event."""
    table = LoginSession.__table__
    condition = (table.c.account_id == account_id) & table.c.revoked_at.is_(None)
    if keep_session_id:
        condition &= table.c.id != keep_session_id
    now = rt.clock.now()
    ended = tuple(db.scalars(update(table).where(condition).values(revoked_at=now).returning(table.c.id)).all())
    sessions_ended(rt, db, account_id, ended, now)
    forget_sessions(rt, account_id=account_id)
    return len(ended)


def rotate(rt: Runtime, db: Session, principal: Principal, origin: audit.Origin, *,
           method: str | None = None) -> Issued | None:
    """End the caller's session and start a new one for the same client, inside the caller's unit of
    work (token rotation after a credential change or a step-up: the old token, perhaps stolen, stops
    working). The new session is stepped up: every caller has just checked the password or an
    authenticator code. ``method`` defaults to the one the session started with.
    None, and nothing written, when the session ended meanwhile: the caller refuses and rolls back."""
    table = LoginSession.__table__
    now = rt.clock.now()
    ended = db.execute(update(table).where(table.c.id == principal.session_id,
                                           table.c.account_id == principal.account_id,
                                           table.c.revoked_at.is_(None), table.c.expires_at > now)
                       .values(revoked_at=now)).rowcount
    forget_sessions(rt, session_id=principal.session_id)
    if ended != 1:
        return None
    issued = start_session(rt, db, principal.account_id, new_session_token(), method or principal.method or "password",
                           origin, stepped_up=True)
    for hook in _moved_hooks:
        hook(db, principal.session_id, issued.id)
    return issued


def sweep_sessions(rt: Runtime, db: Session) -> int:
    """Delete sessions that ended more than a day ago (the audit log keeps the logins)."""
    cutoff = rt.clock.now() - timedelta(days=1)
    table = LoginSession.__table__
    return db.execute(table.delete().where((table.c.expires_at < cutoff) | (table.c.revoked_at < cutoff))).rowcount


def sessions_of(db: Session, account_id: str) -> list[dict]:
    """Every session row the account still has, ended ones too (the personal-data export)."""
    rows = db.scalars(select(LoginSession).where(LoginSession.account_id == account_id)
                      .order_by(LoginSession.created_at.desc())).all()
    return [{"id": r.id, "method": r.method, "ip": r.ip, "user_agent": r.user_agent,
             "created_at": rfc3339(r.created_at), "last_seen_at": rfc3339(r.last_seen_at),
             "expires_at": rfc3339(r.expires_at), "revoked_at": rfc3339(r.revoked_at),
             "stepped_up_at": rfc3339(r.stepped_up_at)} for r in rows]


def erase_sessions(rt: Runtime, db: Session, account_id: str) -> int:
    """Delete every session of the account, live or ended (cancellation finalisation)."""
    table = LoginSession.__table__
    erased = db.execute(table.delete().where(table.c.account_id == account_id)).rowcount
    sessions_ended(rt, db, account_id, None, rt.clock.now())
    devices.erase_devices(db, account_id)
    forget_sessions(rt, account_id=account_id)
    return erased
