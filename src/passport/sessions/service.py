"""Login, sessions and logout (API.md "Sessions", COMPLIANCE C5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts import service as accounts
from passport.audit import service as audit
from passport.clock import rfc3339
from passport.credentials import service as codes
from passport.db import new_id
from passport.runtime import Runtime
from passport.security.tokens import new_token, token_digest
from passport.sessions.models import LoginSession

# Touching last_seen_at on every request would turn every read into a write.
_TOUCH_EVERY = timedelta(minutes=5)
REFUSED_STATUSES = {"frozen": "account_frozen", "suspended": "account_suspended",
                    "terminated": "account_terminated"}


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


def new_session_token() -> str:
    return new_token()


# Hot-path statements on the tables (not the mapped classes), built once: the ORM's insert/update
# machinery (identity map synchronisation) costs more than the SQL itself.
_START = insert(LoginSession.__table__)
# Clears the failure count where the lock is checked, so a guess that raced a lockout loses.
_accounts = accounts.Account.__table__
_CLEAR_FAILURES = (update(_accounts)
                   .where(_accounts.c.id == bindparam("aid"),
                          or_(_accounts.c.locked_until.is_(None), _accounts.c.locked_until <= bindparam("now")))
                   .values(failed_logins=0, locked_until=None))


def start_session(rt: Runtime, db: Session, account_id: str, token: str, method: str,
                  origin: audit.Origin) -> Issued:
    now = rt.clock.now()
    session_id = new_id()
    expires_at = now + timedelta(days=rt.settings.session_absolute_days)
    db.execute(_START, {"id": session_id, "token_hash": token_digest(token), "account_id": account_id,
                        "method": method, "ip": origin.ip, "user_agent": (origin.user_agent or "")[:512] or None,
                        "created_at": now, "last_seen_at": now, "expires_at": expires_at})
    return Issued(session_id, token, min(expires_at, now + timedelta(days=rt.settings.session_idle_days)))


def _identify(rt: Runtime, login: str) -> codes.Target:
    login = (login or "").strip()
    if "@" in login:
        return codes.email_target(rt, login, "login")
    return codes.sms_target(rt, login, "login")


def _refuse_status(account) -> None:
    code = REFUSED_STATUSES.get(account.status)
    if code:
        raise errors.DomainError(
            code, {"account_frozen": "This account is frozen. Recover it with your phone and recovery key.",
                   "account_suspended": "This account is suspended.",
                   "account_terminated": "This account has been terminated."}[code],
            403, extra={"reason": account.status_reason, "until": rfc3339(account.status_until)})


def login_password(rt: Runtime, origin: audit.Origin, *, login: str, password: str) -> tuple[Issued, dict]:
    """Unknown account, wrong password and locked account give one answer, at the cost of one hash."""
    settings = rt.settings
    target = _identify(rt, login)
    rt.limiter.hit(f"{settings.login_per_ip_minute}/minute", "login-ip", origin.ip or "-")
    with rt.db.connect() as conn:
        account = accounts.find(conn, target)
    ok = rt.hasher.verify(account.password_hash if account else None, password or "")
    now = rt.clock.now()
    locked = bool(account and account.locked_until and account.locked_until > now)
    if account is None or locked or not ok:
        with rt.db.write() as db:
            _record_failure(rt, db, origin, account, locked, now, target.channel)
        raise errors.invalid_credentials()
    token = new_session_token()
    issued = None
    with rt.db.write() as db:
        if account.status in REFUSED_STATUSES:
            _record_refusal(db, origin, account, now, "password")
        elif db.execute(_CLEAR_FAILURES, {"aid": account.id, "now": now}).rowcount != 1:
            _record_failure(rt, db, origin, account, True, now, target.channel)
        else:
            issued = start_session(rt, db, account.id, token, "password", origin)
            audit.record(db, at=now, action="login.succeeded", origin=origin, actor_type="user",
                         actor_id=account.id, subject_type="account", subject_id=account.id,
                         details={"method": "password"})
    _refuse_status(account)
    if issued is None:
        raise errors.invalid_credentials()
    return issued, accounts.view(rt, account)


def _record_refusal(db: Session, origin: audit.Origin, account, now: datetime, method: str) -> None:
    audit.record(db, at=now, action="login.refused", origin=origin, result="denied", subject_type="account",
                 subject_id=account.id, details={"status": account.status, "method": method})


def _record_failure(rt: Runtime, db: Session, origin: audit.Origin, account, locked: bool, now: datetime,
                    channel: str) -> None:
    settings = rt.settings
    if account is None:
        audit.record(db, at=now, action="login.failed", origin=origin, result="failed",
                     details={"reason": "unknown_account", "by": channel})
        return
    if locked:
        audit.record(db, at=now, action="login.failed", origin=origin, result="denied", subject_type="account",
                     subject_id=account.id, details={"reason": "locked"})
        return
    failures = db.scalar(
        update(accounts.Account).where(accounts.Account.id == account.id)
        .values(failed_logins=accounts.Account.failed_logins + 1)
        .returning(accounts.Account.failed_logins)
    )
    audit.record(db, at=now, action="login.failed", origin=origin, result="failed", subject_type="account",
                 subject_id=account.id, details={"reason": "wrong_password", "failures": failures})
    if failures >= settings.login_max_failures:
        until = now + timedelta(minutes=settings.login_lock_minutes)
        db.execute(update(accounts.Account).where(accounts.Account.id == account.id)
                   .values(failed_logins=0, locked_until=until))
        audit.record(db, at=now, action="login.locked", origin=origin, result="denied", actor_type="system",
                     subject_type="account", subject_id=account.id, details={"until": rfc3339(until)})


def login_code(rt: Runtime, origin: audit.Origin, *, phone: str, code: str) -> tuple[Issued, dict]:
    """Login by SMS code. A proved code also lifts a password lock: the owner holds the phone."""
    target = codes.sms_target(rt, phone)
    rt.limiter.hit(f"{rt.settings.login_per_ip_minute}/minute", "login-ip", origin.ip or "-")
    now = rt.clock.now()
    token = new_session_token()
    issued = None
    with rt.db.write() as db:
        account = accounts.find(db, target)
        outcome = codes.redeem_code(rt, db, target, codes.Purpose.LOGIN, code) if account else codes.Redeemed.NONE
        if outcome is codes.Redeemed.OK and account.status not in REFUSED_STATUSES:
            # A proved code lifts a password lock: the owner holds the phone.
            db.execute(update(accounts.Account).where(accounts.Account.id == account.id)
                       .values(failed_logins=0, locked_until=None))
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
    return issued, accounts.view(rt, account)


# Built once: the hot path of every authenticated request is one indexed join, session → account.
_sessions = LoginSession.__table__
_AUTHENTICATE = (
    select(_sessions.c.id.label("session_id"), _sessions.c.last_seen_at, _sessions.c.expires_at,
           _sessions.c.revoked_at, _accounts.c.id, _accounts.c.kind, _accounts.c.status, _accounts.c.nickname,
           _accounts.c.bio, _accounts.c.phone_enc, _accounts.c.email_enc, _accounts.c.created_at)
    .join(_accounts, _accounts.c.id == _sessions.c.account_id)
    .where(_sessions.c.token_hash == bindparam("token_hash"))
)
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
    if not token or len(token) > 128:
        return None, False
    now = rt.clock.now()
    digest = token_digest(token)
    row = rt.sessions_cache.get(digest)
    fresh = row is None
    if fresh:
        with rt.db.connect() as conn:
            row = conn.execute(_AUTHENTICATE, {"token_hash": digest}).first()
        if row is None:
            return None, False
        rt.sessions_cache.put(digest, row)
    if row.revoked_at is not None or row.expires_at <= now:
        return None, False
    if row.last_seen_at + timedelta(days=rt.settings.session_idle_days) <= now:
        return None, False
    if row.status in REFUSED_STATUSES or row.status == "cancelled":
        return None, False
    return Principal(row.id, row.session_id, row.status, row), fresh and now - row.last_seen_at > _TOUCH_EVERY


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
    return [{"id": r.id, "created_at": rfc3339(r.created_at), "last_seen_at": rfc3339(r.last_seen_at),
             "ip": r.ip, "ip_region": None, "user_agent": r.user_agent, "method": r.method,
             "current": r.id == principal.session_id} for r in rows]


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
    revoked = db.execute(update(table).where(condition).values(revoked_at=rt.clock.now())).rowcount
    forget_sessions(rt, account_id=account_id)
    return revoked


def sweep_sessions(rt: Runtime, db: Session) -> int:
    """Delete sessions that ended more than a day ago (the audit log keeps the logins)."""
    cutoff = rt.clock.now() - timedelta(days=1)
    table = LoginSession.__table__
    return db.execute(table.delete().where((table.c.expires_at < cutoff) | (table.c.revoked_at < cutoff))).rowcount
