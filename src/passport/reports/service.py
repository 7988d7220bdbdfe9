"""Reports (举报, agreement §五(六)) and their handling: a signed-in user reports an account or an
organisation; the reports of one subject form one case in the ``reports`` review queue (its priority:
how many people reported it); a reviewer claims the case and decides: no violation, or violation with
actions (reset the offending field, warning, correction deadline, restriction, suspension, termination,
refusal of re-registration), each through ``admin.enforcement`` with its reason and appeal link. The
reporters are told the outcome, never the subject's data (issue 18, COMPLIANCE I3, R3).

An unknown subject gets the answer a known one gets (202, a report id): the report is kept, the case
shows the subject as not found and is closed as no violation. The form is no oracle of which ids exist."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts import profile, refusals
from passport.accounts import service as accounts
from passport.admin import enforcement
from passport.admin.models import AccountAction, Staff
from passport.admin.service import StaffPrincipal
from passport.audit import service as audit
from passport.cancellation import service as cancellation
from passport.clock import as_utc, rfc3339
from passport.db import new_id
from passport.realname import documents, organizations
from passport.realname.models import Document, Organization
from passport.reports.models import DESCRIPTION, RIGHT_HOLDER, Report
from passport.reviews import service as reviews
from passport.reviews.models import Review
from passport.runtime import Runtime
from passport.work import Work, unit_of_work

QUEUE = "reports"
SUBJECT_TYPES = ("account", "organization", "complaint")
FIELDS = {"account": ("nickname", "avatar", "bio"), "organization": ("name",), "complaint": ()}
# A complaint or question to customer service (§十四(二)) goes through the same queue: its "subject" is
# the complainant (one case per complainant), the decision's reason is the answer they are sent.
COMPLAINT_CATEGORIES = ("complaint", "question")
# Agreement §五(三): what users may not publish; then impersonation, infringement, fraud, other.
CATEGORIES = ("illegal", "harmful", "pornography", "violence", "gambling", "rumor", "insult", "privacy",
              "advertising", "impersonation", "infringement", "fraud", "other")
DESCRIPTION_MAX = 1000
RIGHT_HOLDER_MAX = 300
EVIDENCE_MAX = 3
EVIDENCE_TYPES = frozenset({"image/png", "image/jpeg"})
OUTCOMES = ("violation", "no_violation")
# A decision's actions, in the order they are taken; at most one that changes the status.
DECISION_ACTIONS = ("reset_field", "warn", "require_correction", "restrict", "suspend", "terminate",
                    "refuse_registration", "revoke_verification", "dissolve")
ACTIONS_FOR = {"account": ("reset_field", "warn", "require_correction", "restrict", "suspend", "terminate",
                           "refuse_registration"),
               "organization": ("warn", "suspend", "revoke_verification", "dissolve"), "complaint": ()}
STATUS_ACTIONS = frozenset({"restrict", "suspend", "terminate"})
SUBJECT_NOT_FOUND = "subject_not_found"


@dataclass(frozen=True)
class Filed:
    report: dict
    merged: bool


def _clean_text(raw: str | None, field: str, maximum: int, *, required: bool) -> str | None:
    text = unicodedata.normalize("NFC", (raw or "").strip())
    if not text:
        if required:
            raise errors.invalid(f"{field}_required", "This field is required.", field)
        return None
    if len(text) > maximum:
        raise errors.invalid(f"{field}_too_long", "The text is too long.", field)
    if any(unicodedata.category(c)[0] == "C" and c not in "\n\t" for c in text):
        raise errors.invalid(f"invalid_{field}", "Control characters are not allowed.", field)
    return text


def _check_report(subject_type: str, field: str | None, category: str, right_holder: str | None) -> None:
    if subject_type not in SUBJECT_TYPES:
        raise errors.invalid("invalid_subject", "Report an account or an organisation.", "subject_type")
    if field is not None and field not in FIELDS[subject_type]:
        raise errors.invalid("invalid_field", "This field cannot be reported for this subject.", "field")
    if category not in (COMPLAINT_CATEGORIES if subject_type == "complaint" else CATEGORIES):
        raise errors.invalid("invalid_category", "Choose a report category.", "category")
    if category == "infringement" and not right_holder:
        raise errors.invalid("right_holder_required", "Give the right holder's name and contact.", "right_holder")


def _rate(rt: Runtime, reporter_id: str) -> None:
    rt.limiter.hit(f"{rt.settings.report_per_hour}/hour", "report-hour", reporter_id)
    rt.limiter.hit(f"{rt.settings.report_per_day}/day", "report-day", reporter_id)


def file_report(rt: Runtime, origin: audit.Origin, reporter_id: str, *, subject_type: str, subject_id: str,
                category: str, description: str | None, field: str | None = None,
                right_holder: str | None = None, evidence: list[documents.Upload] | None = None) -> Filed:
    """Keep the report and put it in its subject's case (one pending case per subject). A second
    report of the same subject by the same reporter while the first is open is merged into it: its
    text is appended, its images added (three at most in all). 429 past the reporter's limits."""
    field = (field or None) if field != "" else None
    description = _clean_text(description, "description", DESCRIPTION_MAX, required=True)
    right_holder = _clean_text(right_holder, "right_holder", RIGHT_HOLDER_MAX, required=False)
    _check_report(subject_type, field, category, right_holder)
    subject_id = reporter_id if subject_type == "complaint" else (subject_id or "").strip()[:64]
    if not subject_id:
        raise errors.invalid("invalid_subject", "Report an account or an organisation.", "subject_id")
    if subject_type in ("account", "organization") and subject_id == reporter_id:
        raise errors.invalid("cannot_report_self", "You cannot report your own account.", "subject_id")
    uploads = [u for u in (evidence or []) if u is not None and u.data]
    if len(uploads) > EVIDENCE_MAX:
        raise errors.invalid("too_many_files", "At most three images.", "evidence")
    kinds = [documents.check_upload(rt, upload, EVIDENCE_TYPES, "evidence") for upload in uploads]
    _rate(rt, reporter_id)
    written: list[Path] = []
    try:
        stored = [documents.write_file(rt, upload, kind, written) for upload, kind in zip(uploads, kinds, strict=True)]
        with unit_of_work(rt, origin, actor=("user", reporter_id)) as work:
            filed = _file(work, reporter_id, subject_type, subject_id, field, category, description, right_holder,
                          stored)
    except BaseException:
        documents.remove_files(written)
        raise
    return filed


def _file(work: Work, reporter_id: str, subject_type: str, subject_id: str, field: str | None, category: str,
          description: str, right_holder: str | None, stored: list[documents.Stored]) -> Filed:
    rt, db, now = work.rt, work.db, work.at
    # The reporter's account row orders two simultaneous reports of the same reporter (merge, not twice).
    db.execute(select(accounts.Account.id).where(accounts.Account.id == reporter_id).with_for_update())
    report = db.scalars(select(Report).where(
        Report.reporter_id == reporter_id, Report.subject_type == subject_type, Report.subject_id == subject_id,
        Report.status == "open")).first()
    merged = report is not None
    evidence = json.loads(report.evidence) if merged else []
    if len(evidence) + len(stored) > EVIDENCE_MAX:
        raise errors.invalid("too_many_files", "At most three images.", "evidence")
    for item in stored:
        documents.add_document(db, reporter_id, "evidence", item, now)
        evidence.append(item.document_id)
    if merged:
        joined = f"{rt.keys.cipher.decrypt(report.description_enc, DESCRIPTION, report.id)}\n---\n{description}"
        report.description_enc = rt.keys.cipher.encrypt(joined[:DESCRIPTION_MAX * 3], DESCRIPTION, report.id)
        report.category = category if report.category == "other" else report.category
        report.field = report.field or field
        if right_holder:
            report.right_holder_enc = rt.keys.cipher.encrypt(right_holder, RIGHT_HOLDER, report.id)
        report.evidence = json.dumps(evidence)
        report.updated_at = now
    else:
        report = Report(reporter_id=reporter_id, subject_type=subject_type, subject_id=subject_id, field=field,
                        category=category, evidence=json.dumps(evidence), status="open", created_at=now,
                        updated_at=now)
        report.id = new_id()
        report.description_enc = rt.keys.cipher.encrypt(description, DESCRIPTION, report.id)
        if right_holder:
            report.right_holder_enc = rt.keys.cipher.encrypt(right_holder, RIGHT_HOLDER, report.id)
        report.review_id = _case_for(work, subject_type, subject_id)
        db.add(report)
    db.flush()
    work.audit("report.merged" if merged else "report.filed", subject=("report", report.id),
               details={"subject": f"{subject_type}:{subject_id}", "category": category, "field": field,
                        "evidence": len(stored), "case": report.review_id})
    return Filed(_report_view(rt, report), merged)


def _case_for(work: Work, subject_type: str, subject_id: str) -> str:
    """The subject's pending case, or a new one. The payload names the subject only: reviewers read
    its current information live."""
    db = work.db
    case_id = db.scalar(select(Review.id).where(Review.queue == QUEUE, Review.status == "pending",
                                                Review.subject_type == subject_type,
                                                Review.subject_id == subject_id).with_for_update())
    if case_id is not None:
        return case_id
    return reviews.enqueue(db, QUEUE, subject_type, subject_id, {"subject_type": subject_type,
                                                                 "subject_id": subject_id}, work.at, work.origin)


def _report_view(rt: Runtime, report: Report) -> dict[str, Any]:
    """What the reporter sees of their report: what they sent, its state and the outcome; nothing of
    what was done to the subject."""
    return {"id": report.id, "subject_type": report.subject_type, "subject_id": report.subject_id,
            "field": report.field, "category": report.category,
            "description": rt.keys.cipher.decrypt(report.description_enc, DESCRIPTION, report.id),
            "evidence": len(json.loads(report.evidence or "[]")), "status": report.status,
            "outcome": report.outcome, "created_at": rfc3339(report.created_at),
            "closed_at": rfc3339(report.closed_at)}


@cancellation.export_section("reports")
def _export_reports(rt: Runtime, db: Session, account_id: str) -> list[dict[str, Any]]:
    """The personal-data export (PIPL Art. 45): the reports and complaints the account sent."""
    rows = db.scalars(select(Report).where(Report.reporter_id == account_id).order_by(Report.created_at)).all()
    return [_report_view(rt, r) for r in rows]


def reports_of(rt: Runtime, reporter_id: str) -> list[dict[str, Any]]:
    with rt.db.read() as db:
        rows = db.scalars(select(Report).where(Report.reporter_id == reporter_id)
                          .order_by(Report.created_at.desc(), Report.id)).all()
        return [_report_view(rt, r) for r in rows]


# --- the queue -----------------------------------------------------------------------------------------

def handling_due(rt: Runtime, queue: str, created_at: datetime) -> datetime:
    days = rt.settings.report_handling_days if queue == QUEUE else rt.settings.appeal_handling_days
    return as_utc(created_at) + timedelta(days=days)


def _subject_summary(rt: Runtime, db: Session, subject_type: str, subject_id: str) -> dict[str, Any] | None:
    """The subject's current public information, as reviewers need it to judge (no phone, no ID)."""
    if subject_type == "complaint":
        account = db.get(accounts.Account, subject_id)
        return {"type": "complaint", "id": subject_id, "nickname": account.nickname if account else None}
    if subject_type == "account":
        account = db.get(accounts.Account, subject_id)
        if account is None or account.status == "cancelled":
            return None
        return {"type": "account", "id": account.id, "nickname": account.nickname, "bio": account.bio,
                "avatar": getattr(account, "avatar", None) and True, "kind": account.kind,
                "status": account.status, "status_reason": account.status_reason,
                "status_until": rfc3339(account.status_until), "created_at": rfc3339(account.created_at)}
    org = db.get(Organization, subject_id)
    if org is None or org.status in ("rejected", "withdrawn"):
        return None
    return {"type": "organization", "id": org.id, "name": org.name, "uscc": org.uscc, "status": org.status,
            "created_at": rfc3339(org.created_at)}


def list_cases(rt: Runtime, staff: StaffPrincipal, *, status: str = "pending", limit: int = 50) -> dict:
    """The ``reports`` queue grouped by subject (one case each): most reporters first, then oldest;
    each with its handling deadline and whether it is overdue."""
    if status not in reviews.STATUSES:
        raise errors.invalid("invalid_status", "Unknown review status.", "status")
    now = rt.clock.now()
    with rt.db.read() as db:
        reporters = (select(Report.review_id, func.count(func.distinct(Report.reporter_id)).label("n"))
                     .group_by(Report.review_id).subquery())
        rows = db.execute(select(Review, func.coalesce(reporters.c.n, 0))
                          .outerjoin(reporters, reporters.c.review_id == Review.id)
                          .where(Review.queue == QUEUE, Review.status == status)
                          .order_by(func.coalesce(reporters.c.n, 0).desc(), Review.created_at, Review.id)
                          .limit(max(1, min(limit, reviews.PAGE_MAX)))).all()
        total = db.scalar(select(func.count()).select_from(Review).where(Review.queue == QUEUE,
                                                                          Review.status == status))
        items = []
        for review, count in rows:
            due = handling_due(rt, QUEUE, review.created_at)
            subject = _subject_summary(rt, db, review.subject_type, review.subject_id)
            items.append({"id": review.id, "subject_type": review.subject_type, "subject_id": review.subject_id,
                          "subject": subject, "reporters": count, "claimed_by": review.claimed_by,
                          "created_at": rfc3339(review.created_at), "due_at": rfc3339(due),
                          "overdue": review.status == "pending" and due < now, "status": review.status})
    return {"items": items, "total": total or 0}


def _history(db: Session, subject_type: str, subject_id: str) -> list[dict[str, Any]]:
    if subject_type != "account":
        return []
    rows = db.execute(select(AccountAction, Staff.login).join(Staff, Staff.id == AccountAction.staff_id)
                      .where(AccountAction.account_id == subject_id).order_by(AccountAction.id.desc())).all()
    return [{"id": a.id, "action": a.action, "field": a.field, "reason": a.reason, "until": rfc3339(a.until),
             "staff": login, "created_at": rfc3339(a.created_at), "reversed_at": rfc3339(a.reversed_at)}
            for a, login in rows]


def case(rt: Runtime, origin: audit.Origin, staff: StaffPrincipal, review_id: str) -> dict[str, Any]:
    """One case for a reviewer: the subject's current information, its history of actions, the open
    reports of this case and the earlier ones. Reporters are shown by id only; the right holder's
    details in clear only to the reviewer holding the claim. Each look is audited (``report.case_viewed``)."""
    with unit_of_work(rt, origin, actor=("staff", staff.staff_id)) as work:
        db = work.db
        review = db.get(Review, review_id)
        if review is None or review.queue != QUEUE:
            raise errors.not_found("review")
        mine = documents.may_see_document({"status": review.status, "claimed_by": review.claimed_by,
                                           "decided_by": review.decided_by}, staff.staff_id)
        rows = db.scalars(select(Report).where(Report.subject_type == review.subject_type,
                                               Report.subject_id == review.subject_id)
                          .order_by(Report.created_at.desc())).all()
        current, earlier = [], []
        for report in rows:
            view = _report_view(rt, report) | {"reporter_id": report.reporter_id,
                                           "evidence_ids": json.loads(report.evidence or "[]")}
            if report.right_holder_enc is not None:
                view["right_holder"] = (rt.keys.cipher.decrypt(report.right_holder_enc, RIGHT_HOLDER, report.id)
                                        if mine else "***")
            (current if report.review_id == review_id else earlier).append(view)
        due = handling_due(rt, QUEUE, review.created_at)
        result = {"id": review.id, "status": review.status, "subject_type": review.subject_type,
                  "subject_id": review.subject_id,
                  "subject": _subject_summary(rt, db, review.subject_type, review.subject_id),
                  "history": _history(db, review.subject_type, review.subject_id), "reports": current,
                  "earlier_reports": earlier, "reporters": len({r["reporter_id"] for r in current}),
                  "claimed_by": review.claimed_by, "claimed_at": rfc3339(review.claimed_at),
                  "decision": review.decision, "reason": review.reason, "decided_by": review.decided_by,
                  "decided_at": rfc3339(review.decided_at), "created_at": rfc3339(review.created_at),
                  "due_at": rfc3339(due), "overdue": review.status == "pending" and due < work.at,
                  "mine": mine}
        work.audit("report.case_viewed", subject=("review", review_id))
    return result


def evidence(rt: Runtime, origin: audit.Origin, staff: StaffPrincipal, review_id: str,
             document_id: str) -> tuple[bytes, str]:
    """An evidence image of the case, for the reviewer holding its claim (or who decided it); audited."""
    item = reviews.get_review(rt, review_id)
    if item["queue"] != QUEUE:
        raise errors.not_found("document")
    if not documents.may_see_document(item, staff.staff_id):
        raise errors.DomainError("claim_required", "Claim this item before you open its document.", 403)
    with unit_of_work(rt, origin, actor=("staff", staff.staff_id)) as work:
        ids = [i for r in work.db.scalars(select(Report.evidence).where(Report.subject_type == item["subject_type"],
                                                                          Report.subject_id == item["subject_id"]))
               for i in json.loads(r or "[]")]
        document = work.db.get(Document, document_id) if document_id in ids else None
        if document is None:
            raise errors.not_found("document")
        work.audit("document.viewed", subject=("review", review_id),
                   details={"document": document.id, "kind": document.kind})
        kind = document.content_type
    return documents.read_document(rt, document), kind


# --- organisations -------------------------------------------------------------------------------------

def act_on_organization(rt: Runtime, origin: audit.Origin, staff: StaffPrincipal, org_id: str, *, action: str,
                        reason: str | None, until: datetime | None = None) -> dict:
    reason = enforcement.clean_reason(reason)
    if until is not None and as_utc(until) <= rt.clock.now():
        raise errors.invalid("until_in_past", "The end time or deadline must be in the future.", "until")
    return organizations.act_on_organization(rt, origin, staff.staff_id, org_id, action=action, reason=reason,
                                             until=as_utc(until) if until else None)


def organization_for_staff(rt: Runtime, org_id: str) -> dict:
    """What the console's organisation page shows: no personal data (no contact, no legal representative)."""
    with rt.db.read() as db:
        org = organizations.organization_row(db, org_id)
        return {"id": org.id, "name": org.name, "uscc": org.uscc, "status": org.status,
                "suspended": org.suspended_at is not None, "suspension_reason": org.suspension_reason,
                "admins": organizations.active_admins(db, org_id), "created_at": rfc3339(org.created_at)}


def dissolve_organization(rt: Runtime, origin: audit.Origin, account_id: str, org_id: str) -> dict:
    return organizations.dissolve_by_admin(rt, origin, account_id, org_id)


# --- the decision ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    outcome: str  # violation | no_violation
    reason: str
    actions: tuple[str, ...] = ()
    field: str | None = None  # reset_field / require_correction
    until: datetime | None = None  # suspend (none: indefinite), require_correction (the deadline)
    escalate_to: str | None = None  # require_correction
    refusal_days: int | None = None  # refuse_registration


def _check_decision(rt: Runtime, decision: Decision, subject_type: str, subject: dict | None) -> None:
    if decision.outcome not in OUTCOMES:
        raise errors.invalid("invalid_decision", "The decision is violation or no_violation.", "outcome")
    unknown = [a for a in decision.actions if a not in DECISION_ACTIONS]
    if unknown:
        raise errors.invalid("invalid_action", "Unknown action.", "actions")
    if decision.outcome == "no_violation" and decision.actions:
        raise errors.invalid("invalid_action", "No action follows a decision of no violation.", "actions")
    if decision.outcome == "violation" and not decision.actions:
        raise errors.invalid("action_required", "Choose at least one action.", "actions")
    if subject_type == "account" and len(set(decision.actions) & STATUS_ACTIONS) > 1:
        raise errors.invalid("invalid_action", "Choose at most one of restriction, suspension, termination.",
                             "actions")
    if decision.actions and subject is None:
        raise errors.DomainError(SUBJECT_NOT_FOUND, "The reported subject no longer exists.", 409)
    if set(decision.actions) - set(ACTIONS_FOR.get(subject_type, ())):
        raise errors.invalid("invalid_action", "These actions do not apply to this subject.", "actions")
    if "reset_field" in decision.actions and decision.field not in enforcement.CORRECTABLE:
        raise errors.invalid("field_required", "Choose the field to reset.", "field")
    if "refuse_registration" in decision.actions and "terminate" not in decision.actions \
            and (subject or {}).get("status") != "terminated":
        raise errors.invalid("invalid_action", "Refusal of re-registration follows a termination.", "actions")


def decide(rt: Runtime, origin: audit.Origin, staff: StaffPrincipal, review_id: str,
           decision: Decision) -> dict[str, Any]:
    """Decide a case once (the claimer only, as every queue): close its reports with the outcome, take
    the actions in the same transaction, tell the reporters the outcome and the subject each action
    with its reason and appeal link."""
    reason = enforcement.clean_reason(decision.reason)
    now = rt.clock.now()
    verdict = "approve" if decision.outcome == "violation" else "reject"
    try:
        with unit_of_work(rt, origin, actor=("staff", staff.staff_id), at=now) as work:
            db = work.db
            review = db.get(Review, review_id)
            if review is None or review.queue != QUEUE:
                raise errors.not_found("review")
            subject = _subject_summary(rt, db, review.subject_type, review.subject_id)
            _check_decision(rt, decision, review.subject_type, subject)
            reviews.settle(work, review_id, staff.staff_id, verdict, reason)
            taken = _act(work, staff, review, decision, reason)
            closed = _close_reports(work, review_id, decision.outcome, reason)
            work.audit("report.decided", subject=("review", review_id),
                       details={"outcome": decision.outcome, "actions": list(decision.actions), "reason": reason,
                                "reports": closed, "about": f"{review.subject_type}:{review.subject_id}",
                                "action_ids": taken})
    except errors.DomainError as refused:
        reviews.audit_refusal(rt, origin, review_id, staff.staff_id, verdict, refused, now)
        raise
    return case(rt, origin, staff, review_id)


def _act(work: Work, staff: StaffPrincipal, review: Review, decision: Decision, reason: str) -> list[int]:
    rt, account_id = work.rt, review.subject_id
    taken: list[int] = []
    if review.subject_type == "organization":
        for action in decision.actions:
            organizations.apply_organization_action(work, review.subject_id, action=action, reason=reason,
                                                    until=decision.until if action == "suspend" else None)
        return taken
    for action in decision.actions:
        if action == "reset_field":
            profile.reset_account_info(rt, work, account_id, decision.field, reason=reason, staff_id=staff.staff_id)
            taken.append(enforcement.record_reset(work, staff.staff_id, account_id, decision.field, reason,
                                                  review.id).id)
        elif action == "refuse_registration":
            days = decision.refusal_days or rt.settings.refusal_days
            row = enforcement.record_refusal(work, staff.staff_id, account_id, reason, review.id,
                                             until=work.at + timedelta(days=days))
            refusals.refuse_account(work.rt, work.db, account_id, reason=reason, action_id=row.id,
                                    expires_at=row.until, now=work.at)
            taken.append(row.id)
        else:
            row, _, _ = enforcement.apply(work, staff.staff_id, staff.login, account_id, action=action, reason=reason,
                                          until=decision.until, review_id=review.id,
                                          field=decision.field if action == "require_correction" else None,
                                          escalate_to=decision.escalate_to)
            taken.append(row.id)
    return taken


OUTCOME_TEXT = {"violation": {"zh-CN": "经核查，被举报对象存在违规情形，平台已依据用户协议处理。",
                              "en": "We found a violation and acted under the user agreement."},
                "no_violation": {"zh-CN": "经核查，暂未发现被举报对象存在违规情形。",
                                 "en": "We found no violation."}}


def _close_reports(work: Work, review_id: str, outcome: str, reason: str) -> int:
    rows = work.db.scalars(select(Report).where(Report.review_id == review_id, Report.status == "open")
                           .with_for_update()).all()
    told: set[str] = set()
    for report in rows:
        report.status, report.outcome, report.closed_at, report.updated_at = "closed", outcome, work.at, work.at
        if report.reporter_id in told:
            continue
        told.add(report.reporter_id)
        if report.subject_type == "complaint":  # the reviewer's reason is the answer
            work.notify(report.reporter_id, "complaint_answered", {"answer": reason}, channels=("inbox", "sms"))
        else:
            work.notify(report.reporter_id, "report_outcome",
                        {"outcome": OUTCOME_TEXT[outcome], "report": report.id}, channels=("inbox",))
    work.db.flush()
    return len(rows)
