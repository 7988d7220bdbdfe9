"""Staff, roles and staff sessions (issue 4). Roles separate duties: nobody edits or deletes audit
records; auditors read the audit log and act on nothing; reviewers act on accounts and reviews;
operators publish agreements and announcements; superadmins manage staff."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyotp
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts.models import Account
from passport.admin.models import STAFF_TOTP_SECRET, Staff, StaffSession
from passport.audit import service as audit
from passport.audit.models import AuditEvent
from passport.clock import CHINA_TIME, rfc3339
from passport.credentials import totp
from passport.db import new_id
from passport.passwordless import passkeys
from passport.reviews.models import Review
from passport.runtime import Runtime
from passport.security.policy import check_password
from passport.security.tokens import new_token, token_digest
from passport.sessions.models import LoginSession
from passport.work import ANONYMOUS, SYSTEM, Work, unit_of_work

ROLES = ("superadmin", "reviewer", "auditor", "operator")

# permission → roles that hold it. Every admin endpoint names exactly one permission.
PERMISSIONS: dict[str, frozenset[str]] = {
    "dashboard.read": frozenset(ROLES),
    "staff.manage": frozenset({"superadmin"}),
    "legal_hold.manage": frozenset({"superadmin"}),
    "accounts.read": frozenset({"reviewer"}),
    "accounts.reveal": frozenset({"reviewer"}),
    "accounts.act": frozenset({"reviewer"}),
    "reviews.decide": frozenset({"reviewer"}),
    "moderation.check": frozenset({"reviewer", "operator"}),
    "moderation.manage": frozenset({"reviewer", "operator"}),
    "audit.read": frozenset({"auditor"}),
    "audit.verify": frozenset({"auditor", "superadmin"}),
    "agreements.publish": frozenset({"operator"}),
    "consents.export": frozenset({"auditor"}),
    "announcements.manage": frozenset({"operator"}),
    "apps.manage": frozenset({"operator"}),  # single sign-on: register and disable apps
    "maintenance.manage": frozenset({"operator"}),
    "notices.manage": frozenset({"operator"}),
}

STAFF_IDLE = timedelta(minutes=30)
STAFF_ABSOLUTE = timedelta(hours=12)
ENROLMENT_TTL = timedelta(hours=24)
_LOGIN = re.compile(r"[a-z][a-z0-9._-]{2,63}")


@dataclass(frozen=True)
class StaffPrincipal:
    staff_id: str
    session_id: str
    login: str
    role: str

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]


def forbidden() -> errors.DomainError:
    return errors.DomainError("forbidden", "Your role does not allow this action.", 403)


def require(principal: StaffPrincipal, permission: str) -> None:
    if not principal.may(permission):
        raise forbidden()


def staff_origin_details(principal: StaffPrincipal) -> dict[str, Any]:
    return {"staff_login": principal.login, "role": principal.role}


def create_staff(rt: Runtime, origin: audit.Origin, *, login: str, role: str,
                 created_by: str | None = None) -> tuple[str, str]:
    """Create a staff member waiting to enrol. Returns (staff id, one-time enrolment token)."""
    login = (login or "").strip().lower()
    if not _LOGIN.fullmatch(login):
        raise errors.invalid("invalid_login", "Staff login is 3-64 lower-case letters, digits, dots, dashes.",
                             "login")
    if role not in ROLES:
        raise errors.invalid("invalid_role", "Unknown role.", "role")
    token = new_token()
    now = rt.clock.now()
    staff_id = new_id()
    with unit_of_work(rt, origin, actor=("staff" if created_by else "system", created_by), at=now) as work:
        db = work.db
        if db.scalar(select(Staff.id).where(Staff.login == login)):
            raise errors.DomainError("login_taken", "That staff login exists already.", 409)
        db.add(Staff(id=staff_id, login=login, role=role, status="enrolling", enrolment_hash=token_digest(token),
                     enrolment_expires_at=now + ENROLMENT_TTL, failed_logins=0, created_at=now,
                     created_by=created_by))
        db.flush()
        work.audit("staff.created", subject=("staff", staff_id), details={"login": login, "role": role})
    return staff_id, token


def start_staff_session(rt: Runtime, db: Session, staff: Staff, origin: audit.Origin) -> str:
    """Open a staff session in the caller's unit of work; returns the bearer token."""
    token = new_token()
    now = rt.clock.now()
    db.add(StaffSession(token_hash=token_digest(token), staff_id=staff.id, ip=origin.ip,
                        user_agent=(origin.user_agent or "")[:512] or None, created_at=now, last_seen_at=now,
                        expires_at=now + STAFF_ABSOLUTE))
    return token


_sessions = StaffSession.__table__
_staff = Staff.__table__
_AUTHENTICATE = (
    select(_sessions.c.id.label("session_id"), _sessions.c.last_seen_at, _sessions.c.expires_at,
           _sessions.c.revoked_at, _staff.c.id, _staff.c.login, _staff.c.role, _staff.c.status)
    .join(_staff, _staff.c.id == _sessions.c.staff_id)
    .where(_sessions.c.token_hash == bindparam("token_hash"))
)


def authenticate_staff(rt: Runtime, token: str | None) -> StaffPrincipal | None:
    """A live staff session: not revoked, not past 12 h, used within the last 30 minutes."""
    if not token or len(token) > 128:
        return None
    now = rt.clock.now()
    with rt.db.connect() as conn:
        row = conn.execute(_AUTHENTICATE, {"token_hash": token_digest(token)}).first()
    if row is None or row.revoked_at is not None or row.expires_at <= now or row.status != "active":
        return None
    if row.last_seen_at + STAFF_IDLE <= now:
        return None
    with rt.db.write() as db:  # the idle clock restarts at every use
        db.execute(update(_sessions).where(_sessions.c.id == row.session_id).values(last_seen_at=now))
    return StaffPrincipal(row.id, row.session_id, row.login, row.role)


def end_staff_session(rt: Runtime, origin: audit.Origin, principal: StaffPrincipal) -> None:
    now = rt.clock.now()
    with unit_of_work(rt, origin, actor=("staff", principal.staff_id), at=now) as work:
        work.db.execute(update(_sessions).where(_sessions.c.id == principal.session_id).values(revoked_at=now))
        work.audit("staff.logout", subject=("staff", principal.staff_id))


# --- enrolment, two-factor login, staff management (issue 4 slice: staff accounts) -------------------

TOTP_FIELD = STAFF_TOTP_SECRET


def enrolment_url(rt: Runtime, token: str) -> str:
    return f"{rt.settings.base_url.rstrip('/')}/admin/enrol/{token}"


def enrolment_invalid() -> errors.DomainError:
    return errors.DomainError("enrolment_invalid", "This enrolment link is invalid, used or expired.", 404)


def _enrolling(db: Session, token: str | None, now) -> Staff:
    if not token or len(token) > 128:
        raise enrolment_invalid()
    staff = db.scalar(select(Staff).where(Staff.enrolment_hash == token_digest(token)))
    if (staff is None or staff.status != "enrolling" or staff.enrolment_expires_at is None
            or staff.enrolment_expires_at <= now):
        raise enrolment_invalid()
    return staff


def _otpauth_uri(rt: Runtime, secret: str, login: str) -> str:
    return pyotp.TOTP(secret, digits=totp.DIGITS, interval=totp.STEP_SECONDS).provisioning_uri(
        name=f"staff:{login}", issuer_name=f"{rt.settings.totp_issuer} admin")


def enrolment(rt: Runtime, token: str) -> dict[str, str]:
    """What the enrolment page shows: the login, and the TOTP secret (made and stored now, encrypted,
    the first time the page is opened) with its otpauth URI."""
    now = rt.clock.now()
    with rt.db.write() as db:
        staff = _enrolling(db, token, now)
        if staff.totp_secret_enc is None:
            secret = totp.new_secret()
            done = db.execute(update(_staff).where(_staff.c.id == staff.id, _staff.c.totp_secret_enc.is_(None))
                              .values(totp_secret_enc=rt.keys.cipher.encrypt(secret, TOTP_FIELD, staff.id),
                                      totp_last_step=None)).rowcount
            if not done:  # a concurrent page view stored one first
                db.expire(staff)
                secret = rt.keys.cipher.decrypt(staff.totp_secret_enc, TOTP_FIELD, staff.id)
        else:
            secret = rt.keys.cipher.decrypt(staff.totp_secret_enc, TOTP_FIELD, staff.id)
        login, role = staff.login, staff.role
    return {"login": login, "role": role, "secret": secret, "otpauth_uri": _otpauth_uri(rt, secret, login)}


def enrol(rt: Runtime, origin: audit.Origin, token: str, password: str, totp_code: str) -> None:
    """Finish enrolment: a password that meets the policy and a first code from the app. The link
    then stops working (the token is cleared in the same conditional UPDATE that activates)."""
    rt.limiter.hit("10/minute", "staff-enrol", token_digest(token or "-").hex())
    now = rt.clock.now()
    with rt.db.read() as db:
        staff = _enrolling(db, token, now)
        staff_id, secret_enc, last_step = staff.id, staff.totp_secret_enc, staff.totp_last_step
    if secret_enc is None:  # the page was never opened: nothing to have scanned
        raise totp.invalid_totp()
    check_password(password or "", min_length=rt.settings.password_min_length,
                   min_classes=rt.settings.password_min_classes)
    check = totp.check_code(rt.keys.cipher.decrypt(secret_enc, TOTP_FIELD, staff_id), totp_code, now, last_step)
    if not check.ok:
        with unit_of_work(rt, origin, actor=("staff", staff_id), at=now) as work:
            work.audit("staff.enrol_rejected", result="failed", subject=("staff", staff_id),
                       details={"reason": "replayed" if check.replayed else "wrong_code"})
        raise totp.totp_replayed() if check.replayed else totp.invalid_totp()
    password_hash = rt.hasher.hash(password)
    with unit_of_work(rt, origin, actor=("staff", staff_id), at=now) as work:
        won = work.db.execute(
            update(_staff).where(_staff.c.id == staff_id, _staff.c.status == "enrolling",
                                 _staff.c.enrolment_hash == token_digest(token), _staff.c.totp_secret_enc == secret_enc)
            .values(status="active", password_hash=password_hash, totp_last_step=check.step, enrolment_hash=None,
                    enrolment_expires_at=None, failed_logins=0, locked_until=None)).rowcount == 1
        if won:
            work.audit("staff.enrolled", subject=("staff", staff_id))
    if not won:
        raise enrolment_invalid()


@dataclass(frozen=True)
class StaffLogin:
    token: str
    expires_at: Any
    login: str
    role: str


def login_staff(rt: Runtime, origin: audit.Origin, login: str, password: str, totp_code: str) -> StaffLogin:
    """Password AND a current TOTP code, every time (COMPLIANCE C5). Unknown login, wrong password,
    wrong or replayed code, disabled or locked: one answer, 401 ``invalid_credentials``, at the cost
    of one hash. Five failures lock the login for 15 minutes."""
    settings = rt.settings
    rt.limiter.hit(f"{settings.login_per_ip_minute}/minute", "staff-login-ip", origin.ip or "-")
    login = (login or "").strip().lower()[:64]
    # Per login name too, whether or not it exists (no hint either way): guesses from many addresses
    # at one staff login stop here, on top of the lock after five failures.
    rt.limiter.hit(f"{settings.staff_login_per_login_hour}/hour", "staff-login", login or "-")
    with rt.db.read() as db:
        staff = db.scalar(select(Staff).where(Staff.login == login)) if login else None
        if staff is not None:
            db.expunge(staff)
    ok = rt.hasher.verify(staff.password_hash if staff else None, password or "")
    now = rt.clock.now()
    usable = staff is not None and staff.status == "active" and staff.totp_secret_enc is not None
    locked = bool(staff and staff.locked_until and staff.locked_until > now)
    check = totp.CodeCheck()
    if usable and ok and not locked:
        check = totp.check_code(rt.keys.cipher.decrypt(staff.totp_secret_enc, TOTP_FIELD, staff.id), totp_code, now,
                                staff.totp_last_step)
    token = None
    with unit_of_work(rt, origin, at=now) as work:
        if check.ok:
            # The step unused and the login unlocked, in the one conditional UPDATE (replay, lock races).
            won = work.db.execute(
                update(_staff).where(_staff.c.id == staff.id, _staff.c.status == "active",
                                     or_(_staff.c.totp_last_step.is_(None), _staff.c.totp_last_step < check.step),
                                     or_(_staff.c.locked_until.is_(None), _staff.c.locked_until <= now))
                .values(totp_last_step=check.step, failed_logins=0, locked_until=None)).rowcount == 1
            if won:
                token = start_staff_session(rt, work.db, staff, origin)
                work.audit("staff.login", actor=("staff", staff.id), subject=("staff", staff.id))
        if token is None:
            reason = ("unknown" if staff is None else "locked" if locked else "not_active" if not usable
                      else "wrong_password" if not ok else "replayed" if check.ok or check.replayed else "wrong_code")
            _staff_failure(work, staff, reason)
    if token is None:
        raise errors.invalid_credentials()
    return StaffLogin(token, now + STAFF_ABSOLUTE, staff.login, staff.role)


def staff_passkey_options(rt: Runtime, origin: audit.Origin, login: str) -> dict[str, Any]:
    """The passkey options for a staff login's second step (issue 21): that member's passkeys, or
    made-up ids for a login without any (or unknown): the answer says nothing either way."""
    login = (login or "").strip().lower()[:64]
    with rt.db.read() as db:
        staff_id = db.scalar(select(Staff.id).where(Staff.login == login, Staff.status == "active")) if login else None
    return passkeys.staff_login_options(rt, origin, staff_id, login)


def login_staff_passkey(rt: Runtime, origin: audit.Origin, login: str, password: str,
                        credential: dict[str, Any]) -> StaffLogin:
    """Password AND one of the member's passkeys (user verification required) instead of a TOTP code;
    the same limits, lock and single answer (401 ``invalid_credentials``) as ``login_staff``."""
    settings = rt.settings
    rt.limiter.hit(f"{settings.login_per_ip_minute}/minute", "staff-login-ip", origin.ip or "-")
    login = (login or "").strip().lower()[:64]
    rt.limiter.hit(f"{settings.staff_login_per_login_hour}/hour", "staff-login", login or "-")
    with rt.db.read() as db:
        staff = db.scalar(select(Staff).where(Staff.login == login)) if login else None
        if staff is not None:
            db.expunge(staff)
    ok = rt.hasher.verify(staff.password_hash if staff else None, password or "")
    now = rt.clock.now()
    usable = staff is not None and staff.status == "active"
    locked = bool(staff and staff.locked_until and staff.locked_until > now)
    proved = usable and ok and not locked and passkeys.staff_assertion_ok(rt, origin, staff.id, credential)
    token = None
    with unit_of_work(rt, origin, at=now) as work:
        if proved and work.db.execute(
                update(_staff).where(_staff.c.id == staff.id, _staff.c.status == "active",
                                     or_(_staff.c.locked_until.is_(None), _staff.c.locked_until <= now))
                .values(failed_logins=0, locked_until=None)).rowcount == 1:
            token = start_staff_session(rt, work.db, staff, origin)
            work.audit("staff.login", actor=("staff", staff.id), subject=("staff", staff.id),
                       details={"second_factor": "passkey"})
        if token is None:
            reason = ("unknown" if staff is None else "locked" if locked else "not_active" if not usable
                      else "wrong_password" if not ok else "wrong_passkey")
            _staff_failure(work, staff, reason)
    if token is None:
        raise errors.invalid_credentials()
    return StaffLogin(token, now + STAFF_ABSOLUTE, staff.login, staff.role)


def _staff_failure(work: Work, staff: Staff | None, reason: str) -> None:
    db, now = work.db, work.at
    work.audit("staff.login_failed", result="failed", actor=("staff", staff.id) if staff else ANONYMOUS,
               subject=("staff", staff.id) if staff else None, details={"reason": reason})
    if staff is None or reason == "locked":
        return
    count = db.execute(update(_staff).where(_staff.c.id == staff.id)
                       .values(failed_logins=_staff.c.failed_logins + 1)
                       .returning(_staff.c.failed_logins)).scalar_one()
    if count >= work.rt.settings.login_max_failures:
        until = now + timedelta(minutes=work.rt.settings.login_lock_minutes)
        db.execute(update(_staff).where(_staff.c.id == staff.id).values(failed_logins=0, locked_until=until))
        work.audit("staff.locked", result="denied", actor=SYSTEM, subject=("staff", staff.id),
                   details={"until": until.isoformat()})


def staff_view(staff: Staff) -> dict[str, Any]:
    return {"id": staff.id, "login": staff.login, "role": staff.role, "status": staff.status,
            "created_at": rfc3339(staff.created_at), "locked_until": rfc3339(staff.locked_until)}


def list_staff(rt: Runtime, principal: StaffPrincipal) -> list[dict[str, Any]]:
    require(principal, "staff.manage")
    with rt.db.read() as db:
        return [staff_view(s) for s in db.scalars(select(Staff).order_by(Staff.created_at, Staff.login))]


def staff_logins(db: Session, staff_ids: Collection[str]) -> dict[str, str]:
    """Logins of these staff members, for a staff page that names actors (no permission of its own:
    the page that shows them checks its own)."""
    if not staff_ids:
        return {}
    return dict(db.execute(select(Staff.id, Staff.login).where(Staff.id.in_(list(staff_ids)))).all())


def add_staff(rt: Runtime, origin: audit.Origin, principal: StaffPrincipal, *, login: str,
              role: str) -> dict[str, Any]:
    """A superadmin creates a staff member; the answer carries the one-time enrolment link."""
    require(principal, "staff.manage")
    staff_id, token = create_staff(rt, origin, login=login, role=role, created_by=principal.staff_id)
    with rt.db.read() as db:
        view = staff_view(db.get(Staff, staff_id))
    return view | {"enrolment_url": enrolment_url(rt, token)}


def disable_staff(rt: Runtime, origin: audit.Origin, principal: StaffPrincipal, staff_id: str) -> dict[str, Any]:
    """Disable a staff member: their sessions end now and their enrolment link stops working."""
    require(principal, "staff.manage")
    if staff_id == principal.staff_id:
        raise errors.DomainError("cannot_disable_self", "You cannot disable your own staff account.", 409)
    now = rt.clock.now()
    with unit_of_work(rt, origin, actor=("staff", principal.staff_id), at=now) as work:
        db = work.db
        staff = db.get(Staff, staff_id) if staff_id and len(staff_id) <= 32 else None
        if staff is None:
            raise errors.not_found("staff")
        if staff.status != "disabled":
            staff.status = "disabled"
            staff.enrolment_hash = None
            staff.enrolment_expires_at = None
            revoked = db.execute(update(_sessions).where(_sessions.c.staff_id == staff_id,
                                                         _sessions.c.revoked_at.is_(None))
                                 .values(revoked_at=now)).rowcount
            work.audit("staff.disabled", subject=("staff", staff_id),
                       details={"login": staff.login, "sessions_revoked": revoked})
        db.flush()
        return staff_view(staff)


def reset_staff(rt: Runtime, origin: audit.Origin, principal: StaffPrincipal | None, *, staff_id: str | None = None,
                login: str | None = None) -> dict[str, Any]:
    """A lost password or authenticator: the staff member enrols again from a new one-time link. Their
    password, TOTP secret and sessions go now. A superadmin resets others from the console; the CLI
    (``principal`` None: shell access to the server) can reset anyone, the last superadmin included."""
    if principal is not None:
        require(principal, "staff.manage")
        if staff_id == principal.staff_id:
            raise errors.DomainError("cannot_reset_self", "Ask another superadmin, or use the command line.", 409)
    now = rt.clock.now()
    token = new_token()
    with unit_of_work(rt, origin, actor=("staff", principal.staff_id) if principal else SYSTEM, at=now) as work:
        db = work.db
        if staff_id is not None:
            staff = db.get(Staff, staff_id) if len(staff_id) <= 32 else None
        else:
            staff = db.scalar(select(Staff).where(Staff.login == (login or "").strip().lower()))
        if staff is None:
            raise errors.not_found("staff")
        if staff.status == "disabled":
            raise errors.DomainError("staff_disabled", "A disabled staff member cannot be reset.", 409)
        staff.status = "enrolling"
        staff.password_hash = None
        staff.totp_secret_enc = None
        staff.totp_last_step = None
        staff.failed_logins = 0
        staff.locked_until = None
        staff.enrolment_hash = token_digest(token)
        staff.enrolment_expires_at = now + ENROLMENT_TTL
        revoked = db.execute(update(_sessions).where(_sessions.c.staff_id == staff.id, _sessions.c.revoked_at.is_(None))
                             .values(revoked_at=now)).rowcount
        removed = passkeys.erase_staff(db, staff.id)  # a lost authenticator may be a passkey too
        work.audit("staff.reset", subject=("staff", staff.id),
                   details={"login": staff.login, "sessions_revoked": revoked, "passkeys_removed": removed})
        db.flush()
        return staff_view(staff) | {"enrolment_url": enrolment_url(rt, token)}


# A review item still pending after this long shows as overdue on the dashboard.
REVIEW_OVERDUE = timedelta(hours=48)


def dashboard(rt: Runtime, principal: StaffPrincipal) -> dict[str, Any]:
    """Counts for the console's first page: no personal data."""
    require(principal, "dashboard.read")
    now = rt.clock.now()
    china = now.astimezone(CHINA_TIME)
    midnight = china.replace(hour=0, minute=0, second=0, microsecond=0)
    with rt.db.read() as db:
        accounts = dict(db.execute(select(Account.status, func.count()).group_by(Account.status)).all())
        active_today = db.scalar(select(func.count()).select_from(LoginSession).where(
            LoginSession.last_seen_at >= midnight, LoginSession.revoked_at.is_(None),
            LoginSession.expires_at > now))
        reviews = dict(db.execute(select(Review.queue, func.count()).where(Review.status == "pending")
                                  .group_by(Review.queue)).all())
        overdue = dict(db.execute(select(Review.queue, func.count()).where(
            Review.status == "pending", Review.created_at < now - REVIEW_OVERDUE).group_by(Review.queue)).all())
        oldest = dict(db.execute(select(Review.queue, func.min(Review.created_at)).where(Review.status == "pending")
                                 .group_by(Review.queue)).all())
        audit_24h = db.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.at >= now - timedelta(hours=24)))
        # Reports and appeals are overdue past their own handling deadlines (issue 18), not after 48 hours.
        overdue |= {queue: db.scalar(select(func.count()).select_from(Review).where(
            Review.queue == queue, Review.status == "pending",
            Review.created_at < now - timedelta(days=days))) or 0
            for queue, days in (("reports", rt.settings.report_handling_days),
                                ("appeals", rt.settings.appeal_handling_days))}
    return {"accounts": {"total": sum(accounts.values()), "by_status": accounts},
            "sessions_active_today": active_today or 0, "pending_reviews": reviews,
            "overdue_reviews": overdue, "oldest_review": oldest,
            "review_overdue_hours": REVIEW_OVERDUE // timedelta(hours=1),
            "audit_events_24h": audit_24h or 0}
