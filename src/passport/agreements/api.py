from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, StreamingResponse

from passport.admin.service import StaffPrincipal
from passport.agreements import service
from passport.agreements.schemas import (
    ConsentIn,
    ConsentOut,
    DocumentOut,
    PublishIn,
    PurposeIn,
    PurposeOut,
    VersionOut,
)
from passport.clock import rfc3339
from passport.guards import Authenticated, staff_permission
from passport.web.http import ApiOrigin, Rt
from passport.web.openapi import problems

router = APIRouter(tags=["agreements"])

Publisher = Annotated[StaffPrincipal, Depends(staff_permission("agreements.publish"))]
Exporter = Annotated[StaffPrincipal, Depends(staff_permission("consents.export"))]


def _out(v: service.Version) -> dict:
    out = {"kind": v.kind, "version": v.version, "title": v.title, "effective_at": rfc3339(v.effective_at),
           "digest": v.digest, "requires_reconsent": v.requires_reconsent}
    return out | ({"body": v.body} if v.body is not None else {})


def _consent(c: dict) -> dict:
    return c | {"accepted_at": rfc3339(c["accepted_at"])}


@router.get("/agreements", response_model=list[VersionOut])
def current_agreements(rt: Rt) -> list[dict]:
    with rt.db.read() as db:
        return [_out(v) for v in service.current_versions(rt, db)]


@router.get("/agreements/{kind}", response_model=DocumentOut)
def current_agreement(kind: str, rt: Rt) -> dict:
    with rt.db.read() as db:
        return _out(service.get_version(db, kind, None, rt))


@router.get("/agreements/{kind}/{version}", response_model=DocumentOut)
def agreement_version(kind: str, version: str, rt: Rt) -> dict:
    with rt.db.read() as db:
        return _out(service.get_version(db, kind, version, rt))


@router.get("/me/consents", response_model=list[ConsentOut])
def my_consents(principal: Authenticated, rt: Rt) -> list[dict]:
    with rt.db.read() as db:
        return [_consent(service.consent_view(c)) for c in service.consents_of(db, principal.account_id)]


@router.post("/me/consents", status_code=201, response_model=ConsentOut,
             responses=problems(not_found=404, version_not_current=409) | {
                 200: {"model": ConsentOut, "description": "Already accepted: the existing entry."}})
def accept(body: ConsentIn, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> JSONResponse:
    """Accept the version in force of a document (the re-consent gate opens once every pending
    version is accepted). 404 unknown kind or version, 409 ``version_not_current``."""
    entry, recorded = service.accept(rt, origin, principal.account_id, body.kind, body.version)
    return JSONResponse(_consent(entry), status_code=201 if recorded else 200)


@router.get("/me/purposes", response_model=list[PurposeOut])
def my_purposes(principal: Authenticated, rt: Rt) -> list[dict]:
    with rt.db.read() as db:
        return [p | {"changed_at": rfc3339(p["changed_at"])} for p in service.purposes_of(db, principal.account_id)]


@router.put("/me/purposes/{purpose}", response_model=PurposeOut, responses=problems(unknown_purpose=404))
def set_purpose(purpose: str, body: PurposeIn, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    """Grant or withdraw an optional purpose such as ``marketing`` (A4). Never needed for the core
    service; 404 ``unknown_purpose``."""
    with rt.db.write() as db:
        service.set_purpose(rt, db, principal.account_id, purpose, body.granted, origin)
        state = next(p for p in service.purposes_of(db, principal.account_id) if p["purpose"] == purpose)
    return state | {"changed_at": rfc3339(state["changed_at"])}


@router.post("/admin/agreements", status_code=201, response_model=VersionOut, tags=["admin"],
             responses=problems(version_exists=409, body_too_long=422, effective_at_not_future=422, empty_body=422,
                                invalid_effective_at=422, invalid_kind=422, invalid_markdown=422, invalid_version=422,
                                title_too_long=422))
def publish(body: PublishIn, staff: Publisher, rt: Rt, origin: ApiOrigin) -> dict:
    """Publish an immutable version (operators). 409 ``version_exists``; 422 ``invalid_kind``,
    ``invalid_version``, ``invalid_markdown``, ``empty_body``, ``effective_at_not_future``."""
    version = service.publish(rt, origin, kind=body.kind, version=body.version, title=body.title, body=body.body,
                              effective_at=body.effective_at, requires_reconsent=body.requires_reconsent,
                              immediate=body.immediate, actor_type="staff", actor_id=staff.staff_id)
    return _out(version)


@router.get("/admin/agreements", response_model=list[VersionOut], tags=["admin"])
def list_versions(staff: Publisher, rt: Rt) -> list[dict]:
    """Every published version, by kind, newest first (operators)."""
    with rt.db.read() as db:
        return [_out(v) for v in service.all_versions(db)]


@router.get("/admin/consents/export", response_class=StreamingResponse, tags=["admin"],
            responses=problems(unknown_kind=404, unknown_version=404, invalid_format=422, kind_required=422) | {
                200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}})
def export_consents(staff: Exporter, rt: Rt, origin: ApiOrigin,
                    kind: str | None = Query(None, max_length=32, description="Document kind or optional purpose."),
                    version: str | None = Query(None, max_length=32, description="Only this version (needs kind)."),
                    format: Literal["jsonl", "csv"] = Query("jsonl")) -> StreamingResponse:  # noqa: A002
    """Stream the consent ledger, oldest first, as JSON lines or CSV (auditors). Audited."""
    chunks = service.export(rt, origin, fmt=format, kind=kind, version=version, actor_type="staff",
                            actor_id=staff.staff_id)
    media = "application/x-ndjson; charset=utf-8" if format == "jsonl" else "text/csv; charset=utf-8"
    return StreamingResponse(chunks, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="consents.{format}"', "Cache-Control": "no-store"})
