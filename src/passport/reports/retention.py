"""Retention sweeps of issue 18 (COMPLIANCE D2), run by the worker and by ``passport retention run``:

- consent-ledger rows of finalised accounts (cancelled, terminated) keep no IP address or user agent
  after the network-log period (``PASSPORT_NETWORK_LOG_DAYS``, at least 180);
- terminated accounts are anonymised ``PASSPORT_TERMINATED_RETENTION_DAYS`` (default 180) after the
  termination, unless a superadmin set a legal hold (with a reason, audited);
- the evidence images (and the right holder's details) of reports closed that long ago are deleted;
- what a cancelled account wrote (its closed reports' text and images, its decided appeals' text) is
  erased at the next sweep after the cancellation is final."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from passport import errors
from passport.accounts import service as accounts
from passport.admin.enforcement import clean_reason
from passport.admin.models import AccountAction
from passport.admin.service import StaffPrincipal
from passport.agreements.models import Consent
from passport.audit import service as audit
from passport.cancellation import service as cancellation
from passport.clock import rfc3339
from passport.realname import documents
from passport.realname.models import Document
from passport.reports.models import APPEAL_TEXT, DESCRIPTION, Appeal, LegalHold, Report
from passport.runtime import Runtime
from passport.work import SYSTEM, unit_of_work

_WORKER = audit.Origin(channel="worker")
FINALISED = ("cancelled", "terminated")
BATCH = 50


def run(rt: Runtime) -> dict[str, int]:
    done = {"consent_network_data": sweep_consents(rt), "terminated_anonymised": anonymise_due(rt),
            "evidence_deleted": delete_evidence(rt), "cancelled_texts_erased": erase_cancelled_texts(rt)}
    if any(done.values()):
        with unit_of_work(rt, _WORKER, actor=SYSTEM) as work:
            work.audit("retention.swept", details=done)
    return done


def sweep_consents(rt: Runtime) -> int:
    now = rt.clock.now()
    cutoff = now - timedelta(days=rt.settings.network_log_days)
    finalised = select(accounts.Account.id).where(accounts.Account.status.in_(FINALISED))
    with rt.db.write() as db:
        return db.execute(update(Consent).where(
            Consent.account_id.in_(finalised), Consent.accepted_at < cutoff,
            (Consent.ip.is_not(None)) | (Consent.user_agent.is_not(None)))
            .values(ip=None, user_agent=None).execution_options(synchronize_session=False)).rowcount


def _terminated_at():
    return (select(AccountAction.account_id, func.max(AccountAction.created_at).label("at"))
            .where(AccountAction.action == "terminate", AccountAction.reversed_at.is_(None))
            .group_by(AccountAction.account_id).subquery())


def anonymise_due(rt: Runtime) -> int:
    now = rt.clock.now()
    cutoff = now - timedelta(days=rt.settings.terminated_retention_days)
    terminated = _terminated_at()
    held = select(LegalHold.account_id).where(LegalHold.released_at.is_(None))
    with rt.db.read() as db:
        due = db.scalars(select(accounts.Account.id).outerjoin(terminated, terminated.c.account_id ==
                                                               accounts.Account.id)
                         .where(accounts.Account.status == "terminated",
                                accounts.Account.nickname != cancellation.TERMINATED_NICKNAME,
                                func.coalesce(terminated.c.at, accounts.Account.updated_at) < cutoff,
                                accounts.Account.id.not_in(held)).limit(BATCH)).all()
    done = 0
    for account_id in due:
        with unit_of_work(rt, _WORKER, actor=SYSTEM) as work:
            account = work.db.scalars(select(accounts.Account).where(accounts.Account.id == account_id)
                                      .with_for_update()).first()
            on_hold = work.db.scalar(select(LegalHold.id).where(LegalHold.account_id == account_id,
                                                                LegalHold.released_at.is_(None)))
            if account is None or account.status != "terminated" or on_hold is not None:
                continue
            cancellation.anonymise_terminated(work, account)
            done += 1
    return done


ERASED = "—"


def erase_cancelled_texts(rt: Runtime) -> int:
    """A cancelled account's closed reports and decided appeals keep their outcome, not its words."""
    cancelled = select(accounts.Account.id).where(accounts.Account.status == "cancelled")
    erased_text = rt.keys.cipher.encrypt  # re-sealed per row (bound to its id)
    done = 0
    with unit_of_work(rt, _WORKER, actor=SYSTEM) as work:
        db = work.db
        reports = db.scalars(select(Report).where(Report.reporter_id.in_(cancelled), Report.status == "closed",
                                                  Report.closed_at.is_not(None), Report.erased_at.is_(None))
                             .limit(BATCH).with_for_update()).all()
        for report in reports:
            report.description_enc = erased_text(ERASED, DESCRIPTION, report.id)
            report.right_holder_enc, report.erased_at = None, work.at
            done += 1
        appeals = db.scalars(select(Appeal).where(Appeal.account_id.in_(cancelled), Appeal.status != "pending",
                                                  Appeal.erased_at.is_(None)).limit(BATCH).with_for_update()).all()
        for appeal in appeals:
            appeal.text_enc, appeal.erased_at = erased_text(ERASED, APPEAL_TEXT, appeal.id), work.at
            done += 1
        report_ids = [r.id for r in reports]
        if done:
            work.audit("retention.cancelled_texts_erased", details={"reports": report_ids,
                                                                    "appeals": [a.id for a in appeals]})
    _delete_evidence_of(rt, report_ids)
    return done


def delete_evidence(rt: Runtime) -> int:
    cutoff = rt.clock.now() - timedelta(days=rt.settings.terminated_retention_days)
    with rt.db.read() as db:
        ids = db.scalars(select(Report.id).where(Report.status == "closed", Report.closed_at < cutoff,
                                                 (Report.evidence != "[]") | Report.right_holder_enc.is_not(None))
                         .limit(BATCH)).all()
    return _delete_evidence_of(rt, ids)


def _delete_evidence_of(rt: Runtime, ids: list[str]) -> int:
    removed = 0
    for report_id in ids:
        paths: list[Path] = []
        with unit_of_work(rt, _WORKER, actor=SYSTEM) as work:
            report = work.db.scalars(select(Report).where(Report.id == report_id).with_for_update()).first()
            evidence = json.loads(report.evidence or "[]")
            for document in work.db.scalars(select(Document).where(Document.id.in_(evidence))).all():
                paths.append(documents.uploads_dir(rt) / document.stored_name)
                work.db.delete(document)
            report.evidence, report.right_holder_enc = "[]", None
            work.audit("report.evidence_deleted", subject=("report", report.id), details={"images": len(evidence)})
            work.after_commit(lambda p=paths: documents.remove_files(p))
            removed += len(evidence)
    return removed


# --- legal holds -------------------------------------------------------------------------------------

def _hold_view(hold: LegalHold) -> dict[str, Any]:
    return {"id": hold.id, "account_id": hold.account_id, "reason": hold.reason, "staff_id": hold.staff_id,
            "created_at": rfc3339(hold.created_at), "released_at": rfc3339(hold.released_at)}


def set_hold(rt: Runtime, origin: audit.Origin, staff: StaffPrincipal, account_id: str, *,
             reason: str | None) -> dict[str, Any]:
    """A superadmin keeps a terminated account's data past its retention (a court or authority asked)."""
    reason = clean_reason(reason, 5)
    with unit_of_work(rt, origin, actor=("staff", staff.staff_id)) as work:
        accounts.get(work.db, account_id)
        if work.db.scalar(select(LegalHold.id).where(LegalHold.account_id == account_id,
                                                     LegalHold.released_at.is_(None))) is not None:
            raise errors.DomainError("legal_hold_exists", "This account is on legal hold already.", 409)
        hold = LegalHold(account_id=account_id, reason=reason, staff_id=staff.staff_id, created_at=work.at)
        work.db.add(hold)
        work.db.flush()
        work.audit("account.legal_hold_set", subject=("account", account_id),
                   details={"reason": reason, "hold": hold.id, "staff_login": staff.login})
        return _hold_view(hold)


def release_hold(rt: Runtime, origin: audit.Origin, staff: StaffPrincipal, account_id: str, *,
                 reason: str | None) -> dict[str, Any]:
    reason = clean_reason(reason, 5)
    with unit_of_work(rt, origin, actor=("staff", staff.staff_id)) as work:
        hold = work.db.scalars(select(LegalHold).where(LegalHold.account_id == account_id,
                                                       LegalHold.released_at.is_(None)).with_for_update()).first()
        if hold is None:
            raise errors.not_found("legal_hold")
        hold.released_at = work.at
        work.audit("account.legal_hold_released", subject=("account", account_id),
                   details={"reason": reason, "hold": hold.id, "staff_login": staff.login})
        return _hold_view(hold)


def current_hold(rt: Runtime, account_id: str) -> dict[str, Any] | None:
    """The account's hold in force (none: the retention sweep may anonymise it once terminated)."""
    with rt.db.read() as db:
        hold = db.scalars(select(LegalHold).where(LegalHold.account_id == account_id,
                                                  LegalHold.released_at.is_(None))).first()
        return _hold_view(hold) if hold is not None else None


def holds_in_force(rt: Runtime) -> list[dict[str, Any]]:
    """The holds not released, newest first, each with its account's status (what matters for the sweep)."""
    with rt.db.read() as db:
        rows = db.execute(select(LegalHold, accounts.Account.status)
                          .join(accounts.Account, accounts.Account.id == LegalHold.account_id)
                          .where(LegalHold.released_at.is_(None)).order_by(LegalHold.created_at.desc())).all()
        return [_hold_view(hold) | {"account_status": status} for hold, status in rows]
