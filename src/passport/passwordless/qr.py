"""QR-code login (issue 21, API.md "Passwordless"): a browser that is not signed in shows a QR code
for a short-lived, single-use login request; a signed-in device (the mobile app through the API, or
another browser through ``/qr/{code}``) scans it, sees where the request comes from and approves or
rejects it; on approval the waiting browser, and only the browser that made the request (its
``passport_qr`` cookie secret), collects a NEW session of its own with ``method: "qr"``. The
approver's token never travels.

What is stored: the code (192 random bits) and the cookie secret only as SHA-256, the waiting
browser's IP and user agent (shown to the approver, as the session list shows them), the account that
scanned it first (only it may decide), and the outcome. A request lives ``PASSPORT_QR_LOGIN_SECONDS``
(120); an approved one may be collected until then; then it is spent (``used``).

Account states: a frozen, suspended or terminated account has no session to approve with (the guard
refuses it) and the approval reads the status again; the collection checks it once more, so a
freeze between approval and collection starts no session. A session started by QR is not stepped
up (no password or authenticator code was proved on that browser), and the re-consent gate applies
to it at its first request like to any other. With two-step verification on, the approving session
must be stepped up (``POST /me/step-up``) within ``PASSPORT_STEP_UP_MINUTES``: the second factor is
then proved on the approving device."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts import service as accounts
from passport.audit import service as audit
from passport.clock import as_utc, rfc3339
from passport.credentials import stepup, totp
from passport.ipregion import resolve as ip_region
from passport.passwordless.models import QrLogin
from passport.runtime import Runtime
from passport.security.tokens import same, token_digest
from passport.sessions import devices
from passport.sessions import service as sessions
from passport.work import unit_of_work

OPEN = ("pending", "scanned")
# After approval the waiting browser has this long past the expiry to collect its session (a poll
# in flight when the approval lands).
_COLLECT_GRACE = timedelta(seconds=30)


@dataclass(frozen=True)
class Created:
    code: str  # in the QR code's URL
    secret: str  # the binding cookie's value
    expires_at: datetime


def expired_error() -> errors.DomainError:
    return errors.DomainError("qr_login_expired", "This QR code has expired. Ask for a new one.", 410)


def closed_error() -> errors.DomainError:
    return errors.DomainError("qr_login_closed", "This QR code has already been used or rejected.", 409)


def payload(rt: Runtime, code: str) -> str:
    """What the QR code holds: the page a signed-in browser opens (the app reads the code from it)."""
    return f"{rt.settings.base_url.rstrip('/')}/qr/{code}"


def _digest(value: str | None) -> bytes | None:
    return token_digest(value) if value and 16 <= len(value) <= 64 else None


def create(rt: Runtime, origin: audit.Origin) -> Created:
    """A new login request for the browser asking (rate-limited per IP)."""
    rt.limiter.hit(f"{rt.settings.qr_login_per_ip_minute}/minute", "qr-login-ip", origin.ip or "-")
    code, secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    with unit_of_work(rt, origin) as work:
        row = QrLogin(code_hash=token_digest(code), browser_hash=token_digest(secret), status="pending",
                      ip=origin.ip, user_agent=(origin.user_agent or "")[:512] or None, created_at=work.at,
                      expires_at=work.at + timedelta(seconds=rt.settings.qr_login_seconds))
        work.db.add(row)
        work.db.flush()
        work.audit("qr_login.created", subject=("qr_login", row.id))
    return Created(code, secret, row.expires_at)


def _find(db: Session, code: str, *, lock: bool = False) -> QrLogin | None:
    digest = _digest(code)
    if digest is None:
        return None
    query = select(QrLogin).where(QrLogin.code_hash == digest)
    return db.scalars(query.with_for_update() if lock else query).first()


def _status(row: QrLogin, now: datetime) -> str:
    if row.status in OPEN and as_utc(row.expires_at) <= now:
        return "expired"
    if row.status == "approved" and as_utc(row.expires_at) + _COLLECT_GRACE <= now:
        return "expired"
    return row.status


def poll(rt: Runtime, origin: audit.Origin, code: str, secret: str | None,
         device: str | None = None) -> tuple[dict[str, Any], sessions.Issued | None]:
    """The waiting browser asks how its request stands. Another browser (without the cookie secret)
    gets 404 as for an unknown code. The first ask after approval starts this browser's session."""
    now = rt.clock.now()
    with rt.db.read() as db:
        row = _find(db, code)
    browser = _digest(secret)
    if row is None or browser is None or not same(row.browser_hash, browser):
        raise errors.not_found("qr_login")
    state = _status(row, now)
    answer = {"status": state, "expires_at": rfc3339(row.expires_at)}
    if state != "approved":
        return answer, None
    issued, refused = _collect(rt, origin, row.id, now)
    if issued is None:
        return {"status": "rejected" if refused else "used", "expires_at": answer["expires_at"]}, None
    devices.note_login(rt, origin, row.account_id, device, "qr")
    return answer, issued


def _collect(rt: Runtime, origin: audit.Origin, row_id: str, now: datetime) -> tuple[sessions.Issued | None, bool]:
    """Spend the approval and start the session, once (a conditional UPDATE: of two polls at once one
    wins). (None, True): the account may not have sessions any more (frozen since, say)."""
    table = QrLogin.__table__
    with unit_of_work(rt, origin, at=now) as work:
        row = work.db.execute(update(table).where(table.c.id == row_id, table.c.status == "approved")
                              .values(status="used").returning(table.c.account_id)).first()
        if row is None:
            return None, False
        account_id = row.account_id
        changed = sessions.status_changed(work.db, account_id)
        if changed is not None:
            work.audit("login.refused", result="denied", subject=("account", account_id),
                       details={"status": changed.status if changed else None, "method": "qr"})
            return None, True
        issued = sessions.start_session(rt, work.db, account_id, sessions.new_session_token(), "qr", origin)
        work.db.execute(update(table).where(table.c.id == row_id).values(session_id=issued.id))
        work.audit("qr_login.session_started", subject=("account", account_id), actor=("user", account_id),
                   details={"request": row_id, "session": issued.id})
        work.audit("login.succeeded", subject=("account", account_id), actor=("user", account_id),
                   details={"method": "qr"})
    return issued, False


def _refuse(row: QrLogin | None, account_id: str, now: datetime) -> errors.DomainError:
    """Why a scan or decision changed nothing: unknown, or another account's → 404; too late → 410;
    decided already → 409."""
    if row is None or (row.account_id is not None and row.account_id != account_id):
        return errors.not_found("qr_login")
    if _status(row, now) == "expired":
        return expired_error()
    return closed_error()


def _details(rt: Runtime, row: QrLogin, code: str, now: datetime) -> dict[str, Any]:
    return {"id": code, "status": _status(row, now), "requested_at": rfc3339(row.created_at),
            "expires_at": rfc3339(row.expires_at), "device": devices.ua_family(row.user_agent),
            "ip": row.ip, "ip_region": ip_region(rt.settings, row.ip)}


def scan(rt: Runtime, origin: audit.Origin, principal: sessions.Principal, code: str) -> dict[str, Any]:
    """A signed-in device scanned the code: the request is bound to its account (no other account
    may decide it) and the device is told where the request comes from."""
    now = rt.clock.now()
    account_id = principal.account_id
    table = QrLogin.__table__
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        row = _find(work.db, code, lock=True)
        if row is None or row.status not in OPEN or (row.account_id not in (None, account_id)) \
                or as_utc(row.expires_at) <= now:
            raise _refuse(row, account_id, now)
        if row.status == "pending":
            work.db.execute(update(table).where(table.c.id == row.id, table.c.status == "pending")
                            .values(status="scanned", account_id=account_id))
            work.audit("qr_login.scanned", subject=("account", account_id), details={"request": row.id})
        work.db.refresh(row)
        return _details(rt, row, code, now)


def decide(rt: Runtime, origin: audit.Origin, principal: sessions.Principal, code: str, *,
           approve: bool) -> dict[str, Any]:
    """Approve or reject the request. Approval: the account must be in a status that has sessions
    (read again here, not from the session cache) and, with two-step verification on, the session
    stepped up."""
    now = rt.clock.now()
    account_id = principal.account_id
    table = QrLogin.__table__
    if approve:
        with rt.db.read() as db:
            account = accounts.get(db, account_id)
        if account.status in sessions.REFUSED_STATUSES or account.status == "cancelled":
            raise refused(account)
        if totp.is_enabled(account) and not stepup.is_stepped_up(rt, principal):
            raise stepup.step_up_required(stepup.methods(account))
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        row = _find(work.db, code, lock=True)
        if row is None or row.status not in OPEN or (row.account_id not in (None, account_id)) \
                or as_utc(row.expires_at) <= now:
            raise _refuse(row, account_id, now)
        to = "approved" if approve else "rejected"
        work.db.execute(update(table).where(table.c.id == row.id, table.c.status.in_(OPEN))
                        .values(status=to, account_id=account_id, decided_at=now))
        work.audit(f"qr_login.{to}", subject=("account", account_id),
                   details={"request": row.id, "device": devices.ua_family(row.user_agent)})
        work.db.refresh(row)
        return _details(rt, row, code, now)


def refused(account) -> errors.DomainError:
    """403 for an account whose status has no sessions: the answers of a password login."""
    code = sessions.REFUSED_STATUSES.get(account.status, "account_terminated")
    return errors.DomainError(code, {"account_frozen": "This account is frozen. Recover it with your phone and "
                                                       "recovery key.",
                                     "account_suspended": "This account is suspended.",
                                     "account_terminated": "This account has been terminated."}[code], 403)


def of_account(db: Session, account_id: str) -> list[dict[str, Any]]:
    """The QR login requests the account scanned or decided (the personal-data export)."""
    rows = db.scalars(select(QrLogin).where(QrLogin.account_id == account_id)
                      .order_by(QrLogin.created_at.desc())).all()
    return [{"status": r.status, "requested_at": rfc3339(r.created_at), "decided_at": rfc3339(r.decided_at),
             "ip": r.ip, "user_agent": r.user_agent, "session_id": r.session_id} for r in rows]


def erase_account(db: Session, account_id: str) -> int:
    """Delete the account's QR login requests (cancellation finalisation)."""
    return db.execute(QrLogin.__table__.delete().where(QrLogin.__table__.c.account_id == account_id)).rowcount


def sweep(db: Session, now: datetime) -> int:
    """Delete requests nobody scanned that expired a day ago (the audit log keeps what happened)."""
    table = QrLogin.__table__
    return db.execute(table.delete().where(table.c.account_id.is_(None),
                                           table.c.expires_at < now - timedelta(days=1))).rowcount
