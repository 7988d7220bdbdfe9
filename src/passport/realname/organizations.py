"""Organisation accounts (GB 32100 USCC): applications, review, administrators and the public page."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts import service as accounts
from passport.audit import service as audit
from passport.clock import rfc3339
from passport.db import new_id
from passport.identity.phone import mask_phone
from passport.identity.resident_id import (
    mask_person_name,
)
from passport.identity.uscc import InvalidUscc, normalize_uscc
from passport.ipregion import resolver as ip_regions
from passport.moderation import service as moderation
from passport.moderation.engine import Decision
from passport.notify import outbox
from passport.realname.documents import (
    LICENSE_TYPES,
    Upload,
    add_document,
    check_upload,
    remove_files,
    uploads_dir,
    write_file,
)
from passport.realname.models import CONTACT_PHONE, LEGAL_REPRESENTATIVE, Document, Organization, OrganizationAdmin
from passport.realname.person import LEAVING, SUBMISSIONS_PER_DAY, account_closed, account_for_update
from passport.reviews import service as reviews
from passport.reviews.models import Review
from passport.runtime import Runtime
from passport.work import Work, unit_of_work

log = structlog.get_logger("passport.realname")



LEGAL_REP_FIELD, CONTACT_FIELD = LEGAL_REPRESENTATIVE, CONTACT_PHONE


ADMIN_CHANGES_PER_HOUR = "30/hour"


ORG_NAME_MIN, ORG_NAME_MAX = 2, 100


LEGAL_REP_MAX = 50


USCC_MESSAGES = {
    "length": "A unified social credit code has 18 characters.",
    "charset": "The code may use only digits and capital letters other than I, O, S, V and Z.",
    "region": "Characters 3 to 8 of the code (the address code) must be digits.",
    "check": "The last character of the code (the check character) does not match. Check for a typing mistake.",
}


def _invalid_uscc(exc: InvalidUscc) -> errors.DomainError:
    message = USCC_MESSAGES[exc.part]
    extra: dict[str, Any] = {"part": exc.part}
    if exc.position is not None:
        extra["position"] = exc.position
    return errors.DomainError("invalid_uscc", message, 422, [errors.FieldError("uscc", "invalid_uscc", message)],
                              extra=extra)


def _forbidden_org() -> errors.DomainError:
    return errors.DomainError("not_organization_admin", "Only the organisation's administrators can do this.",
                              403)


def clean_uscc(raw: str) -> str:
    try:
        return normalize_uscc(raw)
    except InvalidUscc as exc:
        raise _invalid_uscc(exc) from None


def check_name(rt: Runtime, name: str) -> Decision:
    """The review engine on an organisation name (COMPLIANCE I1), normalised first: traditional script,
    spaces, ideographic spaces, zero-width and full-width characters do not get past it. ``block`` →
    422 ``account_info_rejected`` (field ``name``); ``review`` (names of the state or the party, of
    organs, media or brands) → strict review: approved only with a reason."""
    decision = moderation.check(rt, "organization_name", name)
    if decision.verdict == "block":
        raise moderation.rejected({"name": decision})
    return decision


def clean_org_name(raw: str) -> str:
    name = unicodedata.normalize("NFC", (raw or "").strip())
    if not ORG_NAME_MIN <= len(name) <= ORG_NAME_MAX or any(unicodedata.category(c)[0] == "C" for c in name):
        raise errors.invalid("invalid_organization_name",
                             "The organisation name must be 2 to 100 characters, as on the licence.", "name")
    return name


def clean_legal_representative(raw: str) -> str:
    name = unicodedata.normalize("NFC", (raw or "").strip())
    if not 2 <= len(name) <= LEGAL_REP_MAX or any(unicodedata.category(c)[0] in "CNPS" and c not in "·. -'"
                                                  for c in name):
        raise errors.invalid("invalid_legal_representative",
                             "Enter the legal representative's name as on the licence (2 to 50 letters).",
                             "legal_representative")
    return name


def apply_organization(rt: Runtime, origin: audit.Origin, account_id: str, *, name: str, uscc: str,
                       legal_representative: str, contact_phone: str, license: Upload | None) -> dict:  # noqa: A002
    """A verified person applies; the organisation waits in the review queue (COMPLIANCE R2, I1)."""
    with rt.db.read() as db:
        applicant = accounts.get(db, account_id)
        accounts.refuse_if_restricted(applicant, "organization")
        if applicant.real_name_status != "verified":
            raise errors.DomainError("real_name_required",
                                     "Verify your real name before you apply for an organisation.", 403)
    name = clean_org_name(name)
    code = clean_uscc(uscc)
    representative = clean_legal_representative(legal_representative)
    contact = accounts.sms_target(rt, contact_phone, "contact_phone").value
    kind = check_upload(rt, license, LICENSE_TYPES, "license")
    try:
        decision = check_name(rt, name)
    except errors.DomainError as refused:
        with unit_of_work(rt, origin, actor=("user", account_id)) as work:
            work.audit("organization.apply", result="denied",
                       details={"reason": "name_rejected", "categories": [e.category for e in refused.errors]})
        raise
    rt.limiter.hit(SUBMISSIONS_PER_DAY, "organization-apply", account_id)
    strict = decision.verdict == "review"
    flagged = sorted({name[hit.start:hit.end] for hit in decision.hits})
    cipher, now = rt.keys.cipher, rt.clock.now()
    written: list[Path] = []
    taken = False
    try:
        stored = write_file(rt, license, kind, written)
        with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
            db = work.db
            applicant = account_for_update(db, account_id)
            if applicant.status == "cancelled":
                raise account_closed()
            if applicant.real_name_status != "verified":
                raise errors.DomainError("real_name_required",
                                         "Verify your real name before you apply for an organisation.", 403)
            if db.scalar(select(func.count()).select_from(Organization).where(Organization.uscc_live == code)):
                taken = True
                work.audit("organization.apply", result="failed", details={"reason": "uscc_taken", "uscc": code})
            else:
                document = add_document(db, account_id, "license", stored, now)
                org_id = new_id()
                org = Organization(id=org_id, name=name, uscc=code, uscc_live=code,
                                   legal_representative_enc=cipher.encrypt(representative, LEGAL_REP_FIELD, org_id),
                                   contact_phone_enc=cipher.encrypt(contact, CONTACT_FIELD, org_id),
                                   status="pending_review",
                                   strict_review=strict, license_id=document.id, created_by=account_id,
                                   ip=origin.ip, created_at=now)
                db.add(org)
                db.flush()
                db.add(OrganizationAdmin(organization_id=org.id, account_id=account_id, added_by=account_id,
                                         created_at=now, accepted_at=now))
                org.review_id = reviews.enqueue(db, "organization", "organization", org.id, {
                    "organization_id": org.id, "name": name, "uscc": code, "strict_review": strict,
                    "strict_terms": flagged, "normalized": decision.normalized,
                    "hits": [hit.view() for hit in decision.hits], "marks": moderation.marks(decision),
                    "legal_representative": mask_person_name(representative),
                    "contact_phone": mask_phone(contact), "document_id": document.id, "account_id": account_id,
                }, now, origin)
                work.audit("organization.applied", subject=("organization", org.id),
                           details={"uscc": code, "strict_review": strict})
                result = {"id": org.id, "status": org.status, "strict_review": strict}
    except IntegrityError:
        remove_files(written)
        taken = True
    except BaseException:
        remove_files(written)
        raise
    if taken:
        remove_files(written)
        raise errors.DomainError("uscc_taken", "An organisation with this unified social credit code is already "
                                 "registered or under review.", 409,
                                 [errors.FieldError("uscc", "uscc_taken", "already registered")])
    return result


def rescan_names(rt: Runtime, origin: audit.Origin, *, batch: int = 500) -> dict[str, int]:
    """``passport review rescan --field organization_name``: check verified organisations' names against
    the current lexicons and send each hit to the profile queue (``organization.name`` items: the
    reviewer sees the name with its hits highlighted; a decision is recorded, any action on the
    organisation is taken by staff). Names under review are already in front of a reviewer."""
    counts = {"checked": 0, "review": 0, "block": 0, "queued": 0}
    last = ""
    while True:
        with rt.db.read() as db:
            rows = db.execute(select(Organization.id, Organization.name)
                              .where(Organization.id > last, Organization.status == "verified")
                              .order_by(Organization.id).limit(batch)).all()
        if not rows:
            return counts
        last = rows[-1][0]
        flagged = []
        for org_id, name in rows:
            counts["checked"] += 1
            decision = moderation.check(rt, "organization_name", name)
            if decision.verdict != "allow":
                counts[decision.verdict] += 1
                flagged.append((org_id, name, decision))
        if not flagged:
            continue
        with unit_of_work(rt, origin) as work:
            pending = set(work.db.scalars(select(Review.subject_id).where(
                Review.subject_type == "organization.name", Review.status == "pending",
                Review.subject_id.in_([o for o, _, _ in flagged]))).all())
            for org_id, name, decision in flagged:
                if org_id in pending:
                    continue
                reviews.enqueue(work.db, "profile", "organization.name", org_id, {
                    "organization_id": org_id, "field": "organization_name", "value": name, "current": name,
                    "rescan": True, "verdict": decision.verdict, "normalized": decision.normalized,
                    "hits": [hit.view() for hit in decision.hits], "marks": moderation.marks(decision),
                    "strict_review": decision.verdict == "review"}, work.at, work.origin)
                counts["queued"] += 1
            work.audit("review.rescanned", details={"field": "organization_name", "flagged": len(flagged)})


@reviews.on_decision("organization")
def _organization_decided(rt: Runtime, db: Session, decided: reviews.Decided) -> None:
    org = db.scalars(select(Organization).where(Organization.id == decided.subject_id).with_for_update()).first()
    if org is None or org.status != "pending_review":
        return
    if decided.decision == "approve" and org.strict_review and not decided.reason:
        # COMPLIANCE I1: a name that could pass for the state or the party is approved only with a reason.
        raise errors.invalid("reason_required",
                             "This organisation name needs strict review: give a reason for approving it.",
                             "reason")
    org.status = "verified" if decided.decision == "approve" else "rejected"
    org.reason, org.decided_at = decided.reason, decided.at
    if org.status == "rejected":
        org.uscc_live = None
    audit.record(db, at=decided.at, action=f"organization.{org.status}", origin=audit.Origin(channel="review"),
                 actor_type="staff", actor_id=decided.staff_id, subject_type="organization", subject_id=org.id,
                 details={"reason": decided.reason})
    params = {"organization": org.name}
    if org.status == "rejected":
        params["reason"] = decided.reason or "—"
    template = "realname_organization_verified" if org.status == "verified" else "realname_organization_rejected"
    for admin_id in db.scalars(select(OrganizationAdmin.account_id).where(
            OrganizationAdmin.organization_id == org.id, OrganizationAdmin.accepted_at.is_not(None))).all():
        outbox.notify_account(rt, db, account_id=admin_id, template=template, params=params)


def organization_row(db: Session, org_id: str, *, lock: bool = False) -> Organization:
    query = select(Organization).where(Organization.id == org_id)
    org = db.scalars(query.with_for_update() if lock else query).first()
    if org is None:
        raise errors.not_found("organization")
    return org


def _is_admin(db: Session, org_id: str, account_id: str) -> bool:
    """An administrator who accepted (an invitation alone gives no rights)."""
    link = db.get(OrganizationAdmin, (org_id, account_id))
    return link is not None and link.accepted_at is not None


def active_admins(db: Session, org_id: str, *, excluding: str | None = None) -> int:
    """Administrators who accepted and whose account is not being or been cancelled."""
    query = (select(func.count()).select_from(OrganizationAdmin)
             .join(accounts.Account, accounts.Account.id == OrganizationAdmin.account_id)
             .where(OrganizationAdmin.organization_id == org_id, OrganizationAdmin.accepted_at.is_not(None),
                    accounts.Account.status.not_in(LEAVING)))
    if excluding is not None:
        query = query.where(OrganizationAdmin.account_id != excluding)
    return db.scalar(query) or 0


def public_organization(rt: Runtime, org_id: str, *, viewer: str | None = None) -> dict:
    """CAC Order No. 10 Art. 13: operating entity, USCC, contact and IP region. Public once verified
    (issue 17: a name under review is not published); while under review only to its administrators
    (``viewer``); one whose verification staff revoked stays public, saying so (its name was approved,
    and who relied on it must see that it lost its verification); rejected or withdrawn ones to no one —
    the same 404 as an unknown id."""
    with rt.db.read() as db:
        org = organization_row(db, org_id)
        shown = org.status in ("verified", "revoked") or (org.status == "pending_review" and viewer is not None
                                             and _is_admin(db, org_id, viewer))
        if not shown or org.contact_phone_enc is None:
            raise errors.not_found("organization")
        contact = rt.keys.cipher.decrypt(org.contact_phone_enc, CONTACT_FIELD, org.id)
        return {"id": org.id, "name": org.name, "uscc": org.uscc, "contact_phone": mask_phone(contact),
                "ip_region": ip_regions(rt.settings.ip_region_file).resolve(org.ip), "status": org.status,
                "suspended": org.suspended_at is not None, "suspension_reason": org.suspension_reason,
                "verified_at": rfc3339(org.decided_at) if org.status == "verified" else None,
                "created_at": rfc3339(org.created_at)}


def organizations_of(rt: Runtime, account_id: str) -> list[dict]:
    with rt.db.read() as db:
        rows = db.scalars(select(Organization).join(OrganizationAdmin, OrganizationAdmin.organization_id ==
                                                    Organization.id)
                          .where(OrganizationAdmin.account_id == account_id,
                                 OrganizationAdmin.accepted_at.is_not(None))
                          .order_by(Organization.created_at.desc())).all()
        return [{"id": o.id, "name": o.name, "uscc": o.uscc, "status": o.status, "reason": o.reason,
                 "strict_review": o.strict_review, "created_at": rfc3339(o.created_at)} for o in rows]


def administrators(rt: Runtime, account_id: str, org_id: str) -> list[dict]:
    """For the organisation's administrators only: nicknames and masked phone numbers."""
    with rt.db.read() as db:
        organization_row(db, org_id)
        if not _is_admin(db, org_id, account_id):
            raise _forbidden_org()
        rows = db.execute(select(OrganizationAdmin, accounts.Account)
                          .join(accounts.Account, accounts.Account.id == OrganizationAdmin.account_id)
                          .where(OrganizationAdmin.organization_id == org_id,
                                 OrganizationAdmin.accepted_at.is_not(None))
                          .order_by(OrganizationAdmin.created_at, OrganizationAdmin.account_id)).all()
        cipher = rt.keys.cipher
        return [{"account_id": a.id, "nickname": a.nickname,
                 "phone": mask_phone(cipher.decrypt(a.phone_enc, accounts.PHONE_FIELD, a.id)) if a.phone_enc else None,
                 "added_at": rfc3339(link.created_at), "you": a.id == account_id} for link, a in rows]


def add_administrator(rt: Runtime, origin: audit.Origin, account_id: str, org_id: str, *, phone: str) -> dict:
    """Invite an account, by its mobile number, to become an administrator: it becomes one only when
    it accepts. The answer is the same whether or not the number has an account (no enumeration)."""
    target = accounts.sms_target(rt, phone)
    rt.limiter.hit(ADMIN_CHANGES_PER_HOUR, "organization-admins", account_id)
    now = rt.clock.now()
    masked = mask_phone(target.value)
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        db = work.db
        org = organization_row(db, org_id, lock=True)
        if not _is_admin(db, org_id, account_id):
            raise _forbidden_org()
        accounts.refuse_if_restricted(accounts.get(db, account_id), "invitation")
        if org.status in ("rejected", "withdrawn"):
            raise errors.DomainError("organization_rejected", "This organisation was rejected.", 409)
        holder = accounts.find(db, target)
        if holder is not None and holder.kind == "person" and holder.status not in LEAVING:
            link = db.get(OrganizationAdmin, (org_id, holder.id))
            if link is not None and link.accepted_at is not None:  # listed to the administrators already
                raise errors.DomainError("already_administrator", "This account is already an administrator.",
                                         409, [errors.FieldError("phone", "already_administrator", "already added")])
            if link is None:
                db.add(OrganizationAdmin(organization_id=org_id, account_id=holder.id, added_by=account_id,
                                         created_at=now))
                db.flush()
                work.notify(holder.id, "realname_admin_invited", {"organization": org.name}, channels=("inbox",))
        # The inviter reads this record (its activity, its export): it names the masked number it
        # typed and nothing that depends on a holder, and no second record is written (a gap in seq
        # would tell). The invitee is named by its invitation row (added_by, created_at) and by its
        # own organization.admin_accepted / admin_declined record.
        work.audit("organization.admin_invited", subject=("organization", org_id), details={"phone": masked})
    return {"status": "invited", "phone": masked}


def invitations_of(rt: Runtime, account_id: str) -> list[dict]:
    """Invitations to administer an organisation, waiting for this account's answer."""
    with rt.db.read() as db:
        rows = db.execute(select(Organization, OrganizationAdmin)
                          .join(OrganizationAdmin, OrganizationAdmin.organization_id == Organization.id)
                          .where(OrganizationAdmin.account_id == account_id, OrganizationAdmin.accepted_at.is_(None),
                                 Organization.status.in_(("pending_review", "verified")))
                          .order_by(OrganizationAdmin.created_at)).all()
        return [{"id": o.id, "name": o.name, "uscc": o.uscc, "status": o.status,
                 "invited_at": rfc3339(link.created_at)} for o, link in rows]


def answer_invitation(rt: Runtime, origin: audit.Origin, account_id: str, org_id: str, *, accept: bool) -> None:
    """The invitee accepts (becomes an administrator) or declines (the invitation is gone)."""
    now = rt.clock.now()
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        db = work.db
        account = account_for_update(db, account_id)  # account, then organisation: finalisation's order
        org = organization_row(db, org_id, lock=True)
        link = db.get(OrganizationAdmin, (org_id, account_id))
        if link is None or link.accepted_at is not None:
            raise errors.not_found("invitation")
        if accept and (org.status not in ("pending_review", "verified") or account.status in LEAVING):
            raise errors.DomainError("invitation_closed", "This invitation can no longer be accepted.", 409)
        if accept:
            link.accepted_at = now
        else:
            db.delete(link)
        work.audit("organization.admin_accepted" if accept else "organization.admin_declined",
                   subject=("organization", org_id), details={"account": account_id})


def remove_administrator(rt: Runtime, origin: audit.Origin, account_id: str, org_id: str, target_id: str) -> None:
    """Remove an administrator or withdraw an invitation. The organisation row lock orders removals,
    so two administrators removing each other at once cannot leave it with none; an administrator
    whose account is being cancelled does not count as one left."""
    now = rt.clock.now()
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        db = work.db
        organization_row(db, org_id, lock=True)
        if not _is_admin(db, org_id, account_id):
            raise _forbidden_org()
        link = db.get(OrganizationAdmin, (org_id, target_id))
        if link is None:
            raise errors.not_found("administrator")
        if link.accepted_at is not None and active_admins(db, org_id, excluding=target_id) < 1:
            raise errors.DomainError("last_administrator", "An organisation needs at least one administrator.", 409)
        db.delete(link)
        work.audit("organization.admin_removed", subject=("organization", org_id),
                   details={"account": target_id, "invitation": link.accepted_at is None})


def erase_organization(rt: Runtime, db: Session, org: Organization, now: datetime, reason: str,
                        origin: audit.Origin, actor: tuple[str, str | None]) -> list[Path]:
    """An application withdrawn (or left with no administrator): its review closes, its USCC is free,
    its legal representative, contact and licence are erased. Returns the licence file to delete
    after commit."""
    if org.status == "pending_review":
        org.status, org.reason, org.decided_at = "withdrawn", reason, now
    reviews.withdraw_items(db, "organization", [org.id], reason, now, origin)
    org.uscc_live = None
    org.legal_representative_enc = org.contact_phone_enc = None
    paths: list[Path] = []
    if org.license_id is not None:
        licence = db.get(Document, org.license_id)
        org.license_id = None
        db.flush()
        if licence is not None:
            paths.append(uploads_dir(rt) / licence.stored_name)
            db.delete(licence)
    audit.record(db, at=now, action="organization.withdrawn", origin=origin, actor_type=actor[0], actor_id=actor[1],
                 subject_type="organization", subject_id=org.id, details={"reason": reason})
    db.flush()
    return paths


def withdraw_application(rt: Runtime, origin: audit.Origin, account_id: str, org_id: str) -> dict:
    """An administrator withdraws an application still under review (e.g. to cancel the account)."""
    now = rt.clock.now()
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        org = organization_row(work.db, org_id, lock=True)
        if not _is_admin(work.db, org_id, account_id):
            raise _forbidden_org()
        if org.status != "pending_review":
            raise errors.DomainError("not_under_review", "Only an application under review can be withdrawn.", 409)
        paths = erase_organization(rt, work.db, org, work.at, "withdrawn by the applicant", work.origin, work.actor)
        work.after_commit(partial(remove_files, paths))
        result = {"id": org.id, "status": org.status, "strict_review": org.strict_review}
    return result


# --- actions on organisations (issue 18) ---------------------------------------------------------------

ORG_ACTIONS = ("warn", "suspend", "unsuspend", "revoke_verification", "dissolve")
_ORG_ACTION_NAMES = {"warn": {"zh-CN": "警告", "en": "warning"}, "suspend": {"zh-CN": "暂停", "en": "suspension"},
                     "unsuspend": {"zh-CN": "解除暂停", "en": "suspension lifted"},
                     "revoke_verification": {"zh-CN": "撤销认证", "en": "verification revoked"},
                     "dissolve": {"zh-CN": "解散", "en": "dissolution"}}
LIVE = ("pending_review", "verified", "revoked")


def _admin_ids(db: Session, org_id: str) -> list[str]:
    return list(db.scalars(select(OrganizationAdmin.account_id).where(
        OrganizationAdmin.organization_id == org_id, OrganizationAdmin.accepted_at.is_not(None))).all())


def _dissolve(rt: Runtime, work, org: Organization, reason: str) -> None:
    """The organisation ends: its review closes, its USCC is free, its legal representative, contact
    and licence are erased, it no longer keeps an administrator from cancelling (it blocks no one)."""
    paths = erase_organization(rt, work.db, org, work.at, reason, work.origin, work.actor)
    org.status, org.reason, org.decided_at = "dissolved", reason, work.at
    org.suspended_at = org.suspended_until = org.suspension_reason = None
    work.after_commit(partial(remove_files, paths))


def act_on_organization(rt: Runtime, origin: audit.Origin, staff_id: str, org_id: str, *, action: str,
                        reason: str, until: datetime | None = None) -> dict:
    """Staff act on an organisation (agreement §五(一)): warning, suspension (the public page shows
    已暂停; until a time or until lifted), lifting it, revocation of the verification, dissolution. The
    administrators are told the action and the reason."""
    if action not in ORG_ACTIONS:
        raise errors.invalid("invalid_action", "Unknown action.", "action")
    with unit_of_work(rt, origin, actor=("staff", staff_id)) as work:
        return apply_organization_action(work, org_id, action=action, reason=reason, until=until)


def apply_organization_action(work: Work, org_id: str, *, action: str, reason: str,
                              until: datetime | None = None) -> dict:
    """``act_on_organization`` in the caller's unit of work (a report case's decision)."""
    rt = work.rt
    org = organization_row(work.db, org_id, lock=True)
    if org.status not in LIVE or (action == "revoke_verification" and org.status != "verified") \
            or (action == "unsuspend" and org.suspended_at is None):
        raise errors.DomainError("invalid_transition", "This action is not possible in the organisation's "
                                 "current status.", 409)
    admins = _admin_ids(work.db, org_id)
    if action == "suspend":
        org.suspended_at, org.suspended_until, org.suspension_reason = work.at, until, reason
    elif action == "unsuspend":
        org.suspended_at = org.suspended_until = org.suspension_reason = None
    elif action == "revoke_verification":
        org.status, org.reason, org.decided_at = "revoked", reason, work.at
    elif action == "dissolve":
        _dissolve(rt, work, org, reason)
    work.audit(f"organization.action.{action}", subject=("organization", org_id),
               details={"reason": reason, "until": rfc3339(until), "status": org.status})
    for admin_id in admins:
        work.notify(admin_id, "organization_action", {"name": org.name, "action_name": _ORG_ACTION_NAMES[action],
                                                      "reason": reason})
    return {"id": org.id, "status": org.status, "suspended": org.suspended_at is not None}


def dissolve_by_admin(rt: Runtime, origin: audit.Origin, account_id: str, org_id: str) -> dict:
    """An administrator dissolves the organisation (e.g. its sole administrator, to cancel their own
    account: a verified organisation must not keep them from leaving, COMPLIANCE D1). The other
    administrators are told."""
    with unit_of_work(rt, origin, actor=("user", account_id)) as work:
        org = organization_row(work.db, org_id, lock=True)
        if not _is_admin(work.db, org_id, account_id):
            raise _forbidden_org()
        if org.status not in LIVE:
            raise errors.DomainError("invalid_transition", "This action is not possible in the organisation's "
                                     "current status.", 409)
        admins = _admin_ids(work.db, org_id)
        _dissolve(rt, work, org, "dissolved by an administrator")
        work.audit("organization.dissolved", subject=("organization", org_id), details={"by": "administrator"})
        for admin_id in admins:
            work.notify(admin_id, "organization_action", {
                "name": org.name, "action_name": _ORG_ACTION_NAMES["dissolve"],
                "reason": {"zh-CN": "由管理员解散", "en": "dissolved by an administrator"}})
        return {"id": org.id, "status": org.status}
