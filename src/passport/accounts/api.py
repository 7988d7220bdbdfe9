from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from passport.accounts import profile, service
from passport.accounts.schemas import (
    ACCOUNT_EXAMPLE,
    AccountOut,
    EmailCodeIn,
    EmailCodeSent,
    EmailIn,
    ProfileHeld,
    ProfileIn,
)
from passport.agreements import service as agreements
from passport.credentials import email as email_binding
from passport.guards import Authenticated, SteppedUp
from passport.web.http import ApiOrigin, Rt
from passport.web.openapi import examples, problem_example, problems

router = APIRouter(tags=["accounts"])


@router.get("/me", response_model=AccountOut, openapi_extra=examples(answers={
    200: {"account": ACCOUNT_EXAMPLE},
    401: {"not_authenticated": problem_example(401, "not_authenticated", "Please log in first.")},
    403: {"consent_required": problem_example(
        403, "consent_required", "Please read and accept the updated agreements first.",
        pending=[{"kind": "privacy-policy", "version": "2.0"}])}}))
async def me(principal: Authenticated, rt: Rt) -> JSONResponse:
    # The account row came with the session; only pending re-consent may need the database.
    pending = agreements.pending_cached(rt, principal.account_id)
    if pending is None:
        pending = await run_in_threadpool(agreements.pending_of, rt, principal.account_id)
    # The hot read of every app: the view is built from our own typed data, so it skips the
    # response-model round trip; AccountOut still documents it in the OpenAPI contract.
    return JSONResponse(service.view(rt, principal.account, pending))


@router.patch("/me", response_model=AccountOut,
               responses=problems(account_restricted=403, account_info_rejected=422, invalid_bio=422,
                                  invalid_nickname=422)
               | {202: {"model": ProfileHeld}})
def update_me(body: ProfileIn, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict | JSONResponse:
    """Each changed field goes through account-information review: refused → 422
    ``account_info_rejected`` (``errors[].category``); held for a reviewer → 202 ``pending_review`` with
    the held fields (the old values stay until approved; ``GET /me`` shows ``pending_review``)."""
    change = profile.update_profile(rt, origin, principal.account_id, nickname=body.nickname, bio=body.bio,
                                    bio_given="bio" in body.model_fields_set)
    if change.held:
        return JSONResponse({"status": "pending_review", "fields": change.held}, status_code=202)
    return change.account


@router.post("/me/email", status_code=202, response_model=EmailCodeSent,
             responses=problems(account_restricted=403, invalid_email=422))
def request_email(body: EmailIn, principal: SteppedUp, rt: Rt, origin: ApiOrigin) -> dict:
    """Send a bind_email code to the address, kept as pending until ``/me/email/verify``. The answer
    does not tell whether another account holds the address (409 ``email_taken`` comes at verify).
    403 ``step_up_required`` unless the session stepped up (``POST /me/step-up``): binding or changing
    the address starts here, so the verification that follows needs none."""
    return email_binding.request_email(rt, origin, principal.account_id, email=body.email)


@router.post("/me/email/verify", status_code=204,
             responses=problems(account_restricted=403, email_taken=409, invalid_code=422))
def verify_email(body: EmailCodeIn, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    email_binding.verify_email(rt, origin, principal.account_id, code=body.code)
    return Response(status_code=204)


@router.delete("/me/email", status_code=204)
def unbind_email(principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    email_binding.unbind_email(rt, origin, principal.account_id)
    return Response(status_code=204)
