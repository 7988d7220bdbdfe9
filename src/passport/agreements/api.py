from __future__ import annotations

from fastapi import APIRouter

from passport.agreements import service
from passport.agreements.schemas import ConsentOut, DocumentOut, VersionOut
from passport.clock import rfc3339
from passport.web.http import Authenticated, Rt

router = APIRouter(tags=["agreements"])


def _out(v: service.Version) -> dict:
    out = {"kind": v.kind, "version": v.version, "title": v.title, "effective_at": rfc3339(v.effective_at),
           "digest": v.digest, "requires_reconsent": v.requires_reconsent}
    return out | ({"body": v.body} if v.body is not None else {})


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
        return [{"kind": c.kind, "version": c.version, "digest": c.digest, "accepted_at": rfc3339(c.accepted_at),
                 "ip": c.ip, "channel": c.channel} for c in service.consents_of(db, principal.account_id)]
