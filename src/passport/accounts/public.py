"""The public profile of a person (CAC Order No. 10 Art. 12, COMPLIANCE I2; API.md "Accounts"): what any
signed-in account may see of another — nickname, avatar, bio, the IP region of the last login, whether
the real name is verified (never the name) and the verified organisations it administers. Never the
phone number, the email address or the real name. An unknown, cancelled or terminated account is the
same 404 as a random id.

The IP region comes from the newest session row the account still has (each login and the
registration start one; the row keeps the address); once the sessions are swept, from the newest
``login.succeeded`` / ``account.registered`` audit record. Only the region is shown, never the address."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts.models import Account, Avatar
from passport.audit.models import AuditEvent
from passport.ipregion import resolver as ip_regions
from passport.realname.models import Organization, OrganizationAdmin
from passport.runtime import Runtime
from passport.sessions.models import LoginSession

HIDDEN = frozenset({"cancelled", "terminated"})
LOGIN_ACTIONS = ("login.succeeded", "account.registered")


def avatar_url(account: Account) -> str | None:
    """The approved avatar's address (it changes with the avatar, so a cached copy never outlives it)."""
    return f"/u/{account.id}/avatar/{account.avatar_id}" if account.avatar_id else None


def last_login_ip(db: Session, account_id: str) -> str | None:
    ip = db.scalar(select(LoginSession.ip).where(LoginSession.account_id == account_id)
                   .order_by(LoginSession.created_at.desc()).limit(1))
    if ip:
        return ip
    return db.scalar(select(AuditEvent.ip).where(AuditEvent.subject_type == "account",
                                                 AuditEvent.subject_id == account_id,
                                                 AuditEvent.action.in_(LOGIN_ACTIONS), AuditEvent.result == "ok")
                     .order_by(AuditEvent.seq.desc()).limit(1))


def public_profile(rt: Runtime, account_id: str) -> dict:
    with rt.db.read() as db:
        account = db.get(Account, account_id)
        if account is None or account.kind != "person" or account.status in HIDDEN:
            raise errors.not_found("account")
        ip = last_login_ip(db, account.id)
        organizations = db.execute(
            select(Organization.id, Organization.name)
            .join(OrganizationAdmin, OrganizationAdmin.organization_id == Organization.id)
            .where(OrganizationAdmin.account_id == account.id, OrganizationAdmin.accepted_at.is_not(None),
                   Organization.status == "verified")
            .order_by(Organization.decided_at, Organization.id)).all()
        return {"id": account.id, "nickname": account.nickname, "avatar_url": avatar_url(account),
                "bio": account.bio or None,
                "ip_region": ip_regions(rt.settings.ip_region_file).resolve(ip),
                "real_name_verified": account.real_name_status == "verified",
                "organizations": [{"id": org_id, "name": name} for org_id, name in organizations]}


def avatar_image(rt: Runtime, account_id: str, avatar_id: str) -> Avatar:
    """The image behind ``avatar_url``: only the account's approved, shown avatar of a visible account
    (a held, replaced, rejected or reset one is the same 404 as an unknown id)."""
    with rt.db.read() as db:
        account = db.get(Account, account_id)
        row = db.get(Avatar, avatar_id)
        if (account is None or account.status in HIDDEN or account.avatar_id != avatar_id or row is None
                or row.account_id != account.id or row.status != "approved" or row.image is None):
            raise errors.not_found("avatar")
        db.expunge(row)
        return row


def staff_avatar_image(rt: Runtime, avatar_id: str) -> Avatar:
    """For reviewers: any avatar that still has its image (a held one above all)."""
    with rt.db.read() as db:
        row = db.get(Avatar, avatar_id)
        if row is None or row.image is None:
            raise errors.not_found("avatar")
        db.expunge(row)
        return row
