"""Cancellation and personal-data export: JSON API (issue 8)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Header, Response

from passport import errors
from passport.cancellation import service
from passport.cancellation.schemas import (
    CancellationIn,
    CancellationOut,
    ExportIn,
)
from passport.guards import Authenticated, SteppedUp
from passport.web.http import ApiOrigin, Rt
from passport.web.openapi import problems

router = APIRouter(tags=["cancellation and personal data"])


@router.post("/me/cancellation", status_code=202, response_model=CancellationOut,
             responses=problems(invalid_code=400, invalid_password=400, account_frozen=403, account_suspended=403,
                                account_terminated=403, account_cancelled=409, cancellation_blocked=409,
                                cancellation_not_allowed=409, cancellation_pending=409, phone_required=409))
def request_cancellation(body: CancellationIn, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    """Ask to cancel the account: the password and an SMS code (purpose ``cancel_account``). The account
    turns ``cancelling`` until ``effective_at`` (the cooling-off); withdraw with ``DELETE``.
    400 ``invalid_password`` | ``invalid_code``; 409 ``cancellation_pending`` | ``cancellation_blocked``
    (last administrator of a verified organisation: ``organizations`` lists them); 403 ``account_frozen`` |
    ``account_suspended`` | ``account_terminated``."""
    return service.request_cancellation(rt, origin, principal.account_id, password=body.password, code=body.code)


@router.get("/me/cancellation", response_model=CancellationOut, responses=problems(not_found=404))
def cancellation(principal: Authenticated, rt: Rt) -> dict:
    """The pending cancellation request; 404 when there is none."""
    return service.current(rt, principal.account_id)


@router.delete("/me/cancellation", status_code=204, responses=problems(not_found=404))
def withdraw_cancellation(principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    """Withdraw the pending request: the account gets back its status. 404 when nothing is pending."""
    service.withdraw(rt, origin, principal.account_id)
    return Response(status_code=204)


def _archive_response(archive: dict) -> Response:
    day = archive["generated_at"][:10]
    return Response(json.dumps(archive, ensure_ascii=False, indent=1), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="passport-export-{day}.json"',
                             "Cache-Control": "no-store"})


@router.post("/me/export", response_class=Response,
             responses=problems(invalid_code=400, phone_required=409) | {
                 200: {"content": {"application/json": {}}, "description": "The archive (attachment)."}})
def export(body: ExportIn, principal: SteppedUp, rt: Rt, origin: ApiOrigin) -> Response:
    """Everything held about the account as one JSON archive with a README, after an SMS code (purpose
    ``export``) sent to the account's own phone. 400 ``invalid_code``; 403 ``step_up_required`` unless
    the session stepped up (``POST /me/step-up``)."""
    return _archive_response(service.export_archive(rt, origin, principal.account_id, code=body.code))


@router.get("/me/export", response_class=Response,
            responses=problems(invalid_code=400, reauthentication_required=403, phone_required=409) | {
                200: {"content": {"application/json": {}}, "description": "The archive (attachment)."}})
def export_get(principal: SteppedUp, rt: Rt, origin: ApiOrigin,
               code: Annotated[str | None, Header(alias="X-Verification-Code", max_length=16)] = None) -> Response:
    """As ``POST /me/export``, with the code in the ``X-Verification-Code`` header (never in the URL,
    which proxies log). 403 ``reauthentication_required`` without it, ``step_up_required`` unless the
    session stepped up."""
    if not code:
        raise errors.DomainError("reauthentication_required",
                                 "Confirm with an SMS code (purpose export) to download your data.", 403)
    return _archive_response(service.export_archive(rt, origin, principal.account_id, code=code))


