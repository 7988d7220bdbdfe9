from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Response, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from passport.accounts import profile, public, service
from passport.accounts.schemas import (
    ACCOUNT_EXAMPLE,
    AccountOut,
    EmailCodeIn,
    EmailCodeSent,
    EmailIn,
    ProfileHeld,
    ProfileIn,
    PublicProfile,
)
from passport.agreements import service as agreements
from passport.credentials import email as email_binding
from passport.guards import Authenticated, SteppedUp, staff_permission
from passport.web import http
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


@router.get("/accounts/{account_id}/profile", response_model=PublicProfile)
def public_profile(account_id: str, principal: Authenticated, rt: Rt) -> dict:
    """Another account's public profile (CAC Order No. 10 Art. 12), for any signed-in account: nickname,
    avatar, bio, the IP region of its last login, whether its real name is verified and the verified
    organisations it administers. 404 ``not_found`` for an unknown, cancelled or terminated account alike."""
    return public.public_profile(rt, account_id)


AVATAR_ERRORS = problems(account_restricted=403, account_info_rejected=422, animated_image=422, file_required=422,
                         image_too_large=422, invalid_image=422)


@router.put("/me/avatar", response_model=AccountOut, responses=AVATAR_ERRORS | {202: {"model": ProfileHeld}})
def put_avatar(principal: Authenticated, rt: Rt, origin: ApiOrigin,
               avatar: Annotated[UploadFile, File(description="JPEG, PNG, WebP or a still GIF")],
               ) -> dict | JSONResponse:
    """Upload an avatar (multipart, field ``avatar``). It is decoded within ``PASSPORT_AVATAR_MAX_BYTES``
    and ``PASSPORT_AVATAR_MAX_PIXELS`` (422 ``image_too_large``, ``limit`` ``bytes`` | ``dimensions``),
    re-encoded as a square JPEG without metadata; animations are refused (422 ``animated_image``), a QR
    code or an image on the operators' blocklist is 422 ``account_info_rejected`` (field ``avatar``).
    Shown at once (200, ``avatar_url``) or held for a reviewer (202 ``pending_review``, per
    ``PASSPORT_AVATAR_REVIEW``): the previous avatar stays until the new one is approved."""
    data = avatar.file.read(rt.settings.avatar_max_bytes + 1)
    change = profile.set_avatar(rt, origin, principal.account_id, data)
    if change.held:
        return JSONResponse({"status": "pending_review", "fields": change.held}, status_code=202)
    return change.account


@router.delete("/me/avatar", status_code=204)
def delete_avatar(principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    """Remove the avatar and any held one (the initial of the nickname is shown instead)."""
    profile.remove_avatar(rt, origin, principal.account_id)
    return Response(status_code=204)


AVATAR_IMAGE = {200: {"description": "The re-encoded avatar.", "content": {"image/jpeg": {}}}}


@router.get("/admin/avatars/{avatar_id}", tags=["admin"], response_class=Response, responses=AVATAR_IMAGE,
            dependencies=[Depends(staff_permission("reviews.decide"))])
def staff_avatar(avatar_id: str, rt: Rt) -> Response:
    """A held (or shown) avatar for reviewers: the image a ``profile`` item of field ``avatar`` names
    (``payload.value``). Never cached."""
    row = public.staff_avatar_image(rt, avatar_id)
    return http.avatar_response(row.image, row.content_type, public=False)
