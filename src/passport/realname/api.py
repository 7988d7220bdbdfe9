"""Real-name verification and organisation accounts: JSON API (issue 7)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile

from passport.admin.service import StaffPrincipal
from passport.guards import Authenticated, staff_permission
from passport.realname import documents, organizations, person, schemas, service
from passport.reviews import service as reviews
from passport.web import http
from passport.web.http import ApiOrigin, Rt
from passport.web.openapi import problems

router = APIRouter(tags=["real-name"])

Reviewer = Annotated[StaffPrincipal, Depends(staff_permission("reviews.decide"))]
Actor = Annotated[StaffPrincipal, Depends(staff_permission("accounts.act"))]


def read_upload(rt, upload: UploadFile | None) -> documents.Upload | None:
    """At most one byte over the limit is read: enough to refuse the file."""
    if upload is None:
        return None
    return documents.Upload(upload.file.read(rt.settings.upload_max_bytes + 1), upload.filename)


@router.post("/me/real-name", response_model=schemas.RealNameOut,
             responses=problems(account_cancelled=403, already_verified=409, id_number_limit=409,
                                verification_pending=409, document_required=422, file_required=422, file_too_large=422,
                                guardian_required=422, invalid_file_type=422, invalid_id_number=422, invalid_name=422,
                                provider_unavailable=503))
def verify_real_name(body: schemas.RealNameIn, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    """Verify name + resident ID number with the configured provider (``http``, ``dev``). With the
    ``manual`` provider use ``POST /me/real-name/manual`` (422 ``document_required`` here).
    Errors: 422 ``invalid_name`` | ``invalid_id_number`` (``part``: length, format, region, date,
    sequence, check) | ``guardian_required`` (under 14); 409 ``id_number_limit`` | ``already_verified`` |
    ``verification_pending``; 503 ``provider_unavailable``."""
    return person.submit_person(rt, origin, principal.account_id, name=body.name, id_number=body.id_number)


@router.post("/me/real-name/manual", response_model=schemas.RealNameOut,
             responses=problems(account_cancelled=403, already_verified=409, id_number_limit=409,
                                verification_pending=409, document_required=422, file_required=422, file_too_large=422,
                                guardian_required=422, invalid_file_type=422, invalid_id_number=422, invalid_name=422))
def verify_real_name_manually(principal: Authenticated, rt: Rt, origin: ApiOrigin,
                              name: Annotated[str, Form(max_length=64)],
                              id_number: Annotated[str, Form(max_length=32)],
                              document: Annotated[UploadFile, File(description="PNG or JPEG, at most 5 MB")]) -> dict:
    """Multipart: name, ID number and a photo of the ID document, for a reviewer (status ``pending``).
    Errors as ``POST /me/real-name`` plus 422 ``file_required`` | ``file_too_large`` | ``invalid_file_type``."""
    return person.submit_person(rt, origin, principal.account_id, name=name, id_number=id_number,
                                 document=read_upload(rt, document))


@router.get("/me/real-name", response_model=schemas.RealNameStatusOut)
def real_name_status(principal: Authenticated, rt: Rt) -> dict:
    return person.status_of(rt, principal.account_id)


@router.post("/organizations", status_code=202, response_model=schemas.OrganizationCreated,
             responses=problems(account_cancelled=403, account_restricted=403, real_name_required=403, uscc_taken=409,
                                account_info_rejected=422, file_required=422,
                                file_too_large=422, invalid_file_type=422, invalid_legal_representative=422,
                                invalid_organization_name=422, invalid_phone=422, invalid_uscc=422))
def apply_organization(principal: Authenticated, rt: Rt, origin: ApiOrigin,
                       name: Annotated[str, Form(max_length=200)], uscc: Annotated[str, Form(max_length=64)],
                       legal_representative: Annotated[str, Form(max_length=100)],
                       contact_phone: Annotated[str, Form(max_length=32)],
                       license: Annotated[UploadFile, File(description="PNG, JPEG or PDF, at most 5 MB")]) -> dict:  # noqa: A002
    """A verified person applies for an organisation account; it waits for review.
    Errors: 403 ``real_name_required``; 422 ``invalid_uscc`` (``part``: length, charset, region, check) |
    ``invalid_organization_name`` | ``invalid_legal_representative`` | ``invalid_phone`` | ``file_required`` |
    ``file_too_large`` | ``invalid_file_type`` | ``account_info_rejected`` (the review engine refuses the name:
    ``errors[0].field`` ``name`` with its ``category``); 409 ``uscc_taken``. A name the engine holds
    (state or party names, organs, media, brands) is ``strict_review``: approved only with a reason."""
    return organizations.apply_organization(rt, origin, principal.account_id, name=name, uscc=uscc,
                                      legal_representative=legal_representative, contact_phone=contact_phone,
                                      license=read_upload(rt, license))


@router.get("/me/organizations", response_model=list[schemas.OrganizationMine])
def my_organizations(principal: Authenticated, rt: Rt) -> list[dict]:
    return organizations.organizations_of(rt, principal.account_id)


@router.get("/organizations/{organization_id}", response_model=schemas.OrganizationPublic)
def organization(organization_id: str, rt: Rt) -> dict:
    """Public (CAC Order No. 10 Art. 13): name, USCC, masked contact, IP region, status — once verified;
    an organisation under review, rejected or withdrawn is 404 ``not_found`` like an unknown id."""
    return organizations.public_organization(rt, organization_id)


@router.get("/organizations/{organization_id}/administrators", response_model=list[schemas.AdministratorOut],
            responses=problems(not_organization_admin=403))
def administrators(organization_id: str, principal: Authenticated, rt: Rt) -> list[dict]:
    return organizations.administrators(rt, principal.account_id, organization_id)


@router.post("/organizations/{organization_id}/administrators", status_code=202,
             response_model=schemas.AdministratorInvited,
             responses=problems(account_restricted=403, not_organization_admin=403, already_administrator=409,
                                organization_rejected=409,
                                invalid_phone=422))
def add_administrator(organization_id: str, body: schemas.AdministratorIn, principal: Authenticated, rt: Rt,
                      origin: ApiOrigin) -> dict:
    """An administrator invites another account by its mobile number; it becomes an administrator once
    it accepts (``POST .../administrators/accept``). 202 whether or not the number has an account.
    409 ``already_administrator`` (listed already), 403 ``not_organization_admin``."""
    return organizations.add_administrator(rt, origin, principal.account_id, organization_id, phone=body.phone)


@router.get("/me/organization-invitations", response_model=list[schemas.InvitationOut])
def my_invitations(principal: Authenticated, rt: Rt) -> list[dict]:
    return organizations.invitations_of(rt, principal.account_id)


@router.post("/organizations/{organization_id}/administrators/accept", status_code=204,
             responses=problems(invitation_closed=409))
def accept_invitation(organization_id: str, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    """The invitee becomes an administrator. 404 ``not_found`` (no invitation), 409 ``invitation_closed``."""
    organizations.answer_invitation(rt, origin, principal.account_id, organization_id, accept=True)
    return Response(status_code=204)


@router.post("/organizations/{organization_id}/administrators/decline", status_code=204,
             responses=problems(invitation_closed=409))
def decline_invitation(organization_id: str, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    organizations.answer_invitation(rt, origin, principal.account_id, organization_id, accept=False)
    return Response(status_code=204)


@router.post("/organizations/{organization_id}/withdraw", response_model=schemas.OrganizationWithdrawn,
             responses=problems(not_organization_admin=403, not_under_review=409))
def withdraw_application(organization_id: str, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    """An administrator withdraws an application under review: the USCC is free again, the legal
    representative, contact and licence are erased. 409 ``not_under_review``."""
    return organizations.withdraw_application(rt, origin, principal.account_id, organization_id)


@router.delete("/organizations/{organization_id}/administrators/{account_id}", status_code=204,
               responses=problems(not_organization_admin=403, last_administrator=409))
def remove_administrator(organization_id: str, account_id: str, principal: Authenticated, rt: Rt,
                         origin: ApiOrigin) -> Response:
    """409 ``last_administrator`` when it would leave none."""
    organizations.remove_administrator(rt, origin, principal.account_id, organization_id, account_id)
    return Response(status_code=204)


@router.get("/admin/reviews/{review_id}", tags=["admin"])
def review_item(review_id: str, staff: Reviewer, rt: Rt) -> dict:
    """One review item (any queue), as listed by ``GET /admin/reviews``."""
    return reviews.get_review(rt, review_id)


@router.get("/admin/reviews/{review_id}/document", tags=["admin"], response_class=Response,
            responses=problems(claim_required=403) | {200: {
                "description": "The document as uploaded.",
                "content": {"image/png": {}, "image/jpeg": {}, "application/pdf": {}}}})
def review_document(review_id: str, staff: Reviewer, rt: Rt, origin: ApiOrigin) -> Response:
    """The ID document image or licence of a review item, for reviewers; each viewing is audited."""
    data, kind = documents.review_document(rt, origin, staff.staff_id, review_id)
    return http.document_response(data, kind)


@router.get("/admin/reviews/{review_id}/subject", tags=["admin"])
def review_subject(review_id: str, staff: Reviewer, rt: Rt, origin: ApiOrigin) -> dict:
    """The full name and ID number (or legal representative and contact) to compare with the
    document, for the reviewer who holds the claim; empty otherwise. Audited."""
    return service.review_subject(rt, origin, staff.staff_id, review_id)


@router.post("/admin/accounts/{account_id}/real-name/revoke", response_model=schemas.RealNameStatusOut,
             tags=["admin"], responses=problems(not_verified=409, reason_required=422))
def revoke_real_name(account_id: str, body: schemas.RevokeIn, staff: Actor, rt: Rt, origin: ApiOrigin) -> dict:
    """Withdraw an account's verification (a disputed or stolen ID number); the ID number is free again
    and the user is told the reason. 409 ``not_verified``."""
    return person.revoke_verification(rt, origin, account_id, reason=body.reason, actor=("staff", staff.staff_id))
