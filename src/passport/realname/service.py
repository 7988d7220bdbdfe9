"""Person verification and organisation accounts (issue 7; COMPLIANCE R1-R3, I1, D5).

A person proves a real identity with name + resident ID number through the configured provider
(``realname.providers``); the public only ever sees the nickname (后台实名，前台自愿). At most
``PASSPORT_REALNAME_ACCOUNTS_PER_ID`` live accounts hold one ID number: the check and the
reservation run in one write transaction, serialised per ID number (SQLite: BEGIN IMMEDIATE;
PostgreSQL: an advisory lock keyed by the blind index). A verified person applies for an
organisation (USCC, legal representative, contact, licence); a reviewer decides it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session, aliased

from passport.accounts import service as accounts
from passport.audit import service as audit
from passport.clock import rfc3339
from passport.realname.documents import remove_files, uploads_dir
from passport.realname.models import Attempt, Document, Organization, OrganizationAdmin
from passport.realname.organizations import (
    CONTACT_FIELD,
    LEGAL_REP_FIELD,
    active_admins,
    erase_organization,
    organization_row,
)
from passport.realname.person import (
    ACCOUNT_CANCELLED_REASON,
    ATTEMPT_ID_FIELD,
    ATTEMPT_NAME_FIELD,
    ID_FIELD,
    LEAVING,
    NAME_FIELD,
)
from passport.reviews import service as reviews
from passport.runtime import Runtime
from passport.work import unit_of_work

log = structlog.get_logger("passport.realname")

# --- reviewers ---------------------------------------------------------------------------------------

def review_subject(rt: Runtime, origin: audit.Origin, staff_id: str, review_id: str) -> dict:
    """What the reviewer compares with the document: the full name and ID number (or the legal
    representative), shown only to the reviewer holding the claim, and audited."""
    item = reviews.get_review(rt, review_id)
    if item["status"] != "pending" or item["claimed_by"] != staff_id:
        return {}
    cipher, now = rt.keys.cipher, rt.clock.now()
    with unit_of_work(rt, origin, actor=("staff", staff_id), at=now) as work:
        db = work.db
        if item["queue"] == "real_name":
            attempt = db.get(Attempt, item["subject_id"])
            if attempt is None:
                return {}
            shown = {"name": cipher.decrypt(attempt.name_enc, ATTEMPT_NAME_FIELD, attempt.id),
                     "id_number": cipher.decrypt(attempt.id_number_enc, ATTEMPT_ID_FIELD, attempt.id)}
        elif item["queue"] == "organization":
            org = db.get(Organization, item["subject_id"])
            if org is None or org.legal_representative_enc is None or org.contact_phone_enc is None:
                return {}
            shown = {"legal_representative": cipher.decrypt(org.legal_representative_enc, LEGAL_REP_FIELD, org.id),
                     "contact_phone": cipher.decrypt(org.contact_phone_enc, CONTACT_FIELD, org.id)}
        else:
            return {}
        work.audit("review.personal_data_shown", subject=("review", review_id), details={"fields": sorted(shown)})
    return shown


# --- cancellation (issue 8) --------------------------------------------------------------------------

def export_account(rt: Runtime, db: Session, account_id: str) -> dict[str, Any]:
    """Issue 8's export: real-name status and data (decrypted for the owner), organisations administered."""
    cipher = rt.keys.cipher
    account = accounts.get(db, account_id)
    attempts = db.scalars(select(Attempt).where(Attempt.account_id == account_id).order_by(Attempt.created_at)).all()
    orgs = db.execute(select(Organization, OrganizationAdmin.accepted_at)
                      .join(OrganizationAdmin, OrganizationAdmin.organization_id == Organization.id)
                      .where(OrganizationAdmin.account_id == account_id).order_by(Organization.created_at)).all()
    return {
        "real_name": {
            "status": account.real_name_status,
            "name": cipher.decrypt(account.real_name_enc, NAME_FIELD, account.id) if account.real_name_enc else None,
            "id_number": cipher.decrypt(account.id_number_enc, ID_FIELD, account.id) if account.id_number_enc else None,
        },
        "verification_attempts": [{
            "provider": a.provider, "status": a.status, "reason": a.reason,
            "name": cipher.decrypt(a.name_enc, ATTEMPT_NAME_FIELD, a.id),
            "id_number": cipher.decrypt(a.id_number_enc, ATTEMPT_ID_FIELD, a.id),
            "document_uploaded": a.document_id is not None,
            "submitted_at": rfc3339(a.created_at), "decided_at": rfc3339(a.decided_at)} for a in attempts],
        "organizations": [{
            "id": o.id, "name": o.name, "uscc": o.uscc, "status": o.status,
            "role": "administrator" if accepted else "invited",
            "created_by_you": o.created_by == account_id, "created_at": rfc3339(o.created_at)} for o, accepted in orgs],
    }


def erase_account(rt: Runtime, db: Session, account_id: str) -> None:
    """Issue 8's finalisation: delete verification attempts, uploaded documents and administrator rows
    (and invitations) of the account; close its pending review items and scrub their payload. An
    organisation left with no administrator that is not verified (an application under review or
    rejected) is withdrawn: USCC released, legal representative, contact and licence erased. A verified
    one stays with the platform's records (cancellation_blockers keeps it from losing its last one)."""
    now, origin = rt.clock.now(), audit.Origin(channel="worker")
    attempt_ids = list(db.scalars(select(Attempt.id).where(Attempt.account_id == account_id)).all())
    reviews.withdraw_items(db, "realname_attempt", attempt_ids, ACCOUNT_CANCELLED_REASON, now, origin)
    org_ids = db.scalars(select(OrganizationAdmin.organization_id)
                         .where(OrganizationAdmin.account_id == account_id)).all()
    paths: list[Path] = []
    for org_id in org_ids:
        org = organization_row(db, org_id, lock=True)
        if org.status != "verified" and active_admins(db, org_id, excluding=account_id) == 0:
            paths += erase_organization(rt, db, org, now, ACCOUNT_CANCELLED_REASON, origin, ("system", None))
    licences = select(Organization.license_id).where(Organization.license_id.is_not(None))
    documents = db.scalars(select(Document).where(Document.account_id == account_id,
                                                  Document.id.not_in(licences))).all()
    db.execute(delete(Attempt).where(Attempt.account_id == account_id))
    db.execute(delete(OrganizationAdmin).where(OrganizationAdmin.account_id == account_id))
    paths += [uploads_dir(rt) / document.stored_name for document in documents]
    for document in documents:
        db.delete(document)
    # The files go once the rows are gone for good: a rolled-back finalisation keeps both.
    event.listen(db, "after_commit", lambda _session: remove_files(paths), once=True)
    account = accounts.get(db, account_id)
    account.real_name_status = "none"
    account.real_name_enc = account.id_number_enc = account.id_number_bidx = None
    db.flush()


def cancellation_blockers(rt: Runtime, db: Session, account_id: str) -> list[dict[str, Any]]:
    """Issue 8: organisations, verified or under review, of which this account is the last
    administrator ``[{"organization_id", "name"}]`` (administrators who have only been invited, or whose
    own account is being cancelled, do not count); cancellation asks to hand over or dissolve them
    first, or to withdraw the application (``withdraw_application``)."""
    other = aliased(OrganizationAdmin)
    others = (select(func.count()).select_from(other)
              .join(accounts.Account, accounts.Account.id == other.account_id)
              .where(other.organization_id == Organization.id, other.account_id != account_id,
                     other.accepted_at.is_not(None), accounts.Account.status.not_in(LEAVING))
              .correlate(Organization).scalar_subquery())
    rows = db.execute(select(Organization.id, Organization.name)
                      .join(OrganizationAdmin, OrganizationAdmin.organization_id == Organization.id)
                      .where(OrganizationAdmin.account_id == account_id, OrganizationAdmin.accepted_at.is_not(None),
                             Organization.status.in_(("verified", "pending_review")), others == 0)
                      .order_by(Organization.created_at)).all()
    return [{"organization_id": r.id, "name": r.name} for r in rows]
