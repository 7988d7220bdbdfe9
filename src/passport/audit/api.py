"""JSON API: the account's own activity trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from passport.accounts import service as accounts
from passport.admin.service import StaffPrincipal
from passport.audit import service as audit
from passport.audit.schemas import ActivityPage
from passport.clock import as_utc
from passport.guards import Authenticated, staff_permission
from passport.schemas import MAX_SEQ
from passport.web.http import ApiOrigin, Rt

router = APIRouter()


@router.get("/me/activity", response_model=ActivityPage, tags=["activity"])
def my_activity(principal: Authenticated, rt: Rt,
                before: int | None = Query(None, ge=1, le=MAX_SEQ, description="Only events older than this seq."),
                limit: int = Query(20, ge=1, le=accounts.ACTIVITY_PAGE_MAX)) -> dict:
    """The account's own trail, newest first: logins, failures and changes (COMPLIANCE C3)."""
    return accounts.activity(rt, principal.account_id, before=before, limit=limit)


Reader = Annotated[StaffPrincipal, Depends(staff_permission("audit.read"))]
Verifier = Annotated[StaffPrincipal, Depends(staff_permission("audit.verify"))]


class AuditRecord(BaseModel):
    seq: int
    at: str
    actor_type: str = Field(examples=["staff"], description="user | staff | system | anonymous")
    actor_id: str | None
    subject_type: str | None
    subject_id: str | None
    action: str = Field(examples=["login.succeeded"])
    result: str = Field(examples=["ok"], description="ok | failed | denied")
    ip: str | None
    user_agent: str | None
    details: dict[str, Any] = Field(description="Masked details.")
    prev_hash: str | None
    hash: str | None


class AuditPage(BaseModel):
    items: list[AuditRecord]
    next_before: int | None = Field(description="Pass as ?before= for the next (older) page; null on the last.")


class VerifyResult(BaseModel):
    ok: bool
    checked: int = Field(description="Records that verified before the first bad one (all of them when ok).")
    first_bad: int | None = Field(description="seq of the first record that does not fit the chain.")
    reason: str | None = Field(None, description="Why it does not fit: hash or MAC mismatch, an audit key id that "
                                                 "is not configured, broken link, gap in seq, a cut-off end.")
    legacy_until: int | None = Field(None, description="seq of the newest record written before the audit keys "
                                                       "(hash only, no MAC), if any remain.")


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


@router.get("/admin/audit", tags=["admin"], response_model=AuditPage)
def search_audit(staff: Reader, rt: Rt, origin: ApiOrigin,
                 subject: str | None = Query(None, max_length=64, description="Subject id."),
                 action: str | None = Query(None, max_length=48, examples=["login.succeeded"]),
                 actor: str | None = Query(None, max_length=64, description="Actor id (account or staff)."),
                 since: datetime | None = Query(None, description="At or after this time."),
                 until: datetime | None = Query(None, description="Before this time."),
                 before: int | None = Query(None, ge=1, le=MAX_SEQ, description="Only records older than this seq."),
                 limit: int = Query(50, ge=1, le=500)) -> dict:
    """Search the audit log, newest first by seq (auditors). The search is itself audited."""
    items = audit.staff_search(rt, origin, staff.staff_id, limit=limit, subject=subject, action=action, actor=actor,
                               since=_utc(since), until=_utc(until), before=before)
    return {"items": items, "next_before": items[-1]["seq"] if len(items) == limit else None}


@router.get("/admin/audit/export", tags=["admin"], response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}})
def export_audit(staff: Reader, rt: Rt, origin: ApiOrigin,
                 since: datetime | None = Query(None, description="At or after this time."),
                 until: datetime | None = Query(None, description="Before this time."),
                 format: Literal["jsonl", "csv"] = Query("jsonl")) -> StreamingResponse:  # noqa: A002
    """Stream the records of a period, oldest first, as JSON lines or CSV (auditors). Audited."""
    chunks = audit.staff_export(rt, origin, staff.staff_id, fmt=format, since=_utc(since), until=_utc(until))
    media = "application/x-ndjson; charset=utf-8" if format == "jsonl" else "text/csv; charset=utf-8"
    return StreamingResponse(chunks, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="audit.{format}"', "Cache-Control": "no-store"})


@router.post("/admin/audit/verify", tags=["admin"], response_model=VerifyResult)
def verify_audit(staff: Verifier, rt: Rt, origin: ApiOrigin) -> dict:
    """Recompute the hash chain and its MACs and name the first record that does not fit (auditors,
    superadmins). Anchors are checked by ``passport audit verify --anchor``: they live outside."""
    report = audit.staff_verify(rt, origin, staff.staff_id)
    return {"ok": report.ok, "checked": report.checked, "first_bad": report.first_bad, "reason": report.reason,
            "legacy_until": report.legacy_until}
