"""Staff, roles and staff sessions (issue 4). Roles separate duties: nobody edits or deletes audit
records; auditors read the audit log and act on nothing; reviewers act on accounts and reviews;
operators publish agreements and announcements; superadmins manage staff."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from passport import errors
from passport.admin.models import Staff, StaffSession
from passport.audit import service as audit
from passport.db import new_id
from passport.runtime import Runtime
from passport.security.tokens import new_token, token_digest

ROLES = ("superadmin", "reviewer", "auditor", "operator")

# permission → roles that hold it. Every admin endpoint names exactly one permission.
PERMISSIONS: dict[str, frozenset[str]] = {
    "dashboard.read": frozenset(ROLES),
    "staff.manage": frozenset({"superadmin"}),
    "accounts.read": frozenset({"reviewer"}),
    "accounts.reveal": frozenset({"reviewer"}),
    "accounts.act": frozenset({"reviewer"}),
    "reviews.decide": frozenset({"reviewer"}),
    "audit.read": frozenset({"auditor"}),
    "audit.verify": frozenset({"auditor", "superadmin"}),
    "agreements.publish": frozenset({"operator"}),
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
    with rt.db.write() as db:
        if db.scalar(select(Staff.id).where(Staff.login == login)):
            raise errors.DomainError("login_taken", "That staff login exists already.", 409)
        db.add(Staff(id=staff_id, login=login, role=role, status="enrolling", enrolment_hash=token_digest(token),
                     enrolment_expires_at=now + ENROLMENT_TTL, failed_logins=0, created_at=now,
                     created_by=created_by))
        db.flush()
        audit.record(db, at=now, action="staff.created", origin=origin,
                     actor_type="staff" if created_by else "system", actor_id=created_by,
                     subject_type="staff", subject_id=staff_id, details={"login": login, "role": role})
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
    with rt.db.write() as db:
        db.execute(update(_sessions).where(_sessions.c.id == principal.session_id).values(revoked_at=now))
        audit.record(db, at=now, action="staff.logout", origin=origin, actor_type="staff",
                     actor_id=principal.staff_id, subject_type="staff", subject_id=principal.staff_id)
