"""Reports and appeals: JSON API (issue 18)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile

from passport.admin.service import StaffPrincipal
from passport.guards import Authenticated, staff_permission
from passport.realname import documents
from passport.reports import appeals, retention, schemas, service
from passport.web import http
from passport.web.http import ApiOrigin, Rt
from passport.web.openapi import problems

router = APIRouter(tags=["reports"])

Reviewer = Annotated[StaffPrincipal, Depends(staff_permission("reviews.decide"))]

_REPORT_ERRORS = problems(cannot_report_self=422, description_required=422, description_too_long=422,
                          file_too_large=422, invalid_category=422, invalid_description=422, invalid_field=422,
                          invalid_file_type=422, invalid_right_holder=422, invalid_subject=422,
                          right_holder_required=422, right_holder_too_long=422, too_many_files=422)


def _uploads(rt, files: list[UploadFile] | None) -> list[documents.Upload]:
    """At most one byte over the limit is read of each: enough to refuse it."""
    return [documents.Upload(f.file.read(rt.settings.upload_max_bytes + 1), f.filename) for f in files or []
            if f is not None and f.filename]


@router.post("/reports", status_code=202, response_model=schemas.ReportFiled, responses=_REPORT_ERRORS)
def file_report(principal: Authenticated, rt: Rt, origin: ApiOrigin,
                subject_type: Annotated[str, Form(max_length=16, description="account | organization")],
                subject_id: Annotated[str, Form(max_length=64)],
                category: Annotated[str, Form(max_length=24, description=", ".join(service.CATEGORIES))],
                description: Annotated[str, Form(max_length=2000)],
                field: Annotated[str | None, Form(max_length=16, description="nickname | avatar | bio | name")] = None,
                right_holder: Annotated[str | None, Form(max_length=600, description="infringement: the right "
                                                         "holder's name and contact")] = None,
                evidence: Annotated[list[UploadFile] | None, File(description="Up to 3 PNG or JPEG images, "
                                                                   "5 MB each")] = None) -> dict:
    """Multipart. Report an account or an organisation (signed-in users). A repeat report of the same
    subject by the same reporter while the first is open is merged (``merged``). An unknown subject gets
    the same 202 as a known one. 429 ``rate_limited`` past the reporter's hourly or daily limit."""
    filed = service.file_report(rt, origin, principal.account_id, subject_type=subject_type, subject_id=subject_id,
                                category=category, description=description, field=field or None,
                                right_holder=right_holder, evidence=_uploads(rt, evidence))
    return {"report": filed.report, "merged": filed.merged}


@router.get("/me/reports", response_model=list[schemas.ReportOut])
def my_reports(principal: Authenticated, rt: Rt) -> list[dict]:
    """The reporter's reports, newest first, with their outcome (nothing of what was done to the subject)."""
    return service.reports_of(rt, principal.account_id)


@router.get("/me/actions", response_model=list[schemas.ActionMine])
def my_actions(principal: Authenticated, rt: Rt) -> list[dict]:
    """Actions the platform took on the account, with their reasons and whether each can be appealed."""
    return appeals.appealable_actions(rt, principal.account_id)


@router.post("/me/appeals", status_code=201, response_model=schemas.AppealOut,
             responses=problems(not_found=404, action_reversed=409, appeal_exists=409, appeal_window_closed=409,
                                invalid_text=422,
                                text_required=422, text_too_long=422))
def file_appeal(body: schemas.AppealIn, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    """Appeal an action on one's own account (once per decision): decided by a reviewer other than the
    one who acted. 404 for an action that is not the account's."""
    return appeals.file_appeal(rt, origin, principal.account_id, action_id=body.action_id, text=body.text)


@router.post("/appeals", status_code=201, response_model=schemas.AppealOut,
             responses=problems(not_found=404, action_reversed=409, appeal_exists=409, appeal_window_closed=409,
                                invalid_text=422,
                                text_required=422, text_too_long=422))
def file_appeal_by_link(body: schemas.LinkAppealIn, rt: Rt, origin: ApiOrigin) -> dict:
    """No session needed: the token of the appeal link in the action's notice (a suspended or terminated
    account cannot sign in). 404 for a link that is not one."""
    return appeals.file_appeal_by_link(rt, origin, token=body.token, text=body.text)


@router.get("/me/appeals", response_model=list[schemas.AppealOut])
def my_appeals(principal: Authenticated, rt: Rt) -> list[dict]:
    return appeals.appeals_of(rt, principal.account_id)


# --- staff ---------------------------------------------------------------------------------------------

Superadmin = Annotated[StaffPrincipal, Depends(staff_permission("legal_hold.manage"))]


@router.post("/admin/accounts/{account_id}/legal-hold", status_code=201, tags=["admin"],
             responses=problems(legal_hold_exists=409, reason_required=422, reason_too_long=422))
def set_legal_hold(account_id: str, body: schemas.LegalHoldIn, staff: Superadmin, rt: Rt, origin: ApiOrigin) -> dict:
    """Superadmins: keep a terminated account's data past PASSPORT_TERMINATED_RETENTION_DAYS (the retention
    sweep skips it while the hold stands). Audited with the reason."""
    return retention.set_hold(rt, origin, staff, account_id, reason=body.reason)


@router.delete("/admin/accounts/{account_id}/legal-hold", tags=["admin"],
               responses=problems(reason_required=422, reason_too_long=422))
def release_legal_hold(account_id: str, body: schemas.LegalHoldIn, staff: Superadmin, rt: Rt,
                       origin: ApiOrigin) -> dict:
    """Release the hold (with a reason); the next sweep anonymises the account if its retention ended."""
    return retention.release_hold(rt, origin, staff, account_id, reason=body.reason)


@router.get("/admin/reports", tags=["admin"], responses=problems(invalid_status=422))
def report_cases(staff: Reviewer, rt: Rt, status: str = Query("pending", max_length=16),
                 limit: int = Query(50, ge=1, le=100)) -> dict:
    """The reports queue grouped by subject: most reporters first, each with its handling deadline
    (``due_at``, PASSPORT_REPORT_HANDLING_DAYS) and ``overdue``. Claim with ``POST /admin/reviews/{id}/claim``."""
    return service.list_cases(rt, staff, status=status, limit=limit)


@router.get("/admin/reports/{review_id}", tags=["admin"])
def report_case(review_id: str, staff: Reviewer, rt: Rt, origin: ApiOrigin) -> dict:
    """One case: the subject's current information, its history of actions, this case's reports and the
    earlier ones. Audited."""
    return service.case(rt, origin, staff, review_id)


@router.get("/admin/reports/{review_id}/evidence/{document_id}", tags=["admin"], response_class=Response,
            responses=problems(claim_required=403) | {200: {"description": "The image as uploaded.",
                                                             "content": {"image/png": {}, "image/jpeg": {}}}})
def report_evidence(review_id: str, document_id: str, staff: Reviewer, rt: Rt, origin: ApiOrigin) -> Response:
    data, kind = service.evidence(rt, origin, staff, review_id, document_id)
    return http.document_response(data, kind)


@router.post("/admin/reports/{review_id}/decision", tags=["admin"],
             responses=problems(claim_required=403, already_claimed=409, already_decided=409, subject_not_found=409,
                                invalid_transition=409, account_cancelled=409, action_required=422,
                                field_required=422, invalid_action=422, invalid_field=422, invalid_escalation=422,
                                reason_required=422, reason_too_long=422, until_in_past=422, until_required=422))
def decide_report(review_id: str, body: schemas.CaseDecisionIn, staff: Reviewer, rt: Rt, origin: ApiOrigin) -> dict:
    """No violation, or violation with actions taken at once (each told to the subject with its reason
    and appeal link); the reporters are told the outcome. Only the reviewer holding the claim."""
    decision = service.Decision(body.outcome, body.reason, tuple(dict.fromkeys(body.actions)), body.field, body.until,
                                body.escalate_to, body.refusal_days)
    return service.decide(rt, origin, staff, review_id, decision)


Actor = Annotated[StaffPrincipal, Depends(staff_permission("accounts.act"))]


@router.post("/admin/organizations/{organization_id}/actions", tags=["admin"],
             responses=problems(invalid_action=422, invalid_transition=409, reason_required=422, reason_too_long=422,
                                until_in_past=422))
def act_on_organization(organization_id: str, body: schemas.OrganizationActionIn, staff: Actor, rt: Rt,
                        origin: ApiOrigin) -> dict:
    """warn | suspend (``until`` optional: until lifted; the public page shows 已暂停) | unsuspend |
    revoke_verification | dissolve. The administrators are told the action and the reason."""
    return service.act_on_organization(rt, origin, staff, organization_id, action=body.action, reason=body.reason,
                                       until=body.until)


@router.post("/organizations/{organization_id}/dissolve", tags=["real-name"],
             responses=problems(not_organization_admin=403, invalid_transition=409))
def dissolve_organization(organization_id: str, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    """An administrator dissolves the organisation: its USCC is free, its legal representative, contact
    and licence are erased, and it no longer keeps its sole administrator from cancelling."""
    return service.dissolve_organization(rt, origin, principal.account_id, organization_id)


@router.get("/admin/appeals", tags=["admin"], responses=problems(invalid_status=422))
def appeal_cases(staff: Reviewer, rt: Rt, status: str = Query("pending", max_length=16),
                 limit: int = Query(50, ge=1, le=100)) -> dict:
    """The appeals queue, oldest first, with ``due_at`` (PASSPORT_APPEAL_HANDLING_DAYS) and ``overdue``."""
    return appeals.list_appeals(rt, status=status, limit=limit)


@router.get("/admin/appeals/{review_id}", tags=["admin"])
def appeal_case(review_id: str, staff: Reviewer, rt: Rt) -> dict:
    return appeals.appeal_case(rt, review_id)


@router.post("/admin/appeals/{review_id}/decision", tags=["admin"],
             responses=problems(claim_required=403, same_reviewer=403, already_claimed=409, already_decided=409,
                                reason_required=422, reason_too_long=422))
def decide_appeal(review_id: str, body: schemas.AppealDecisionIn, staff: Reviewer, rt: Rt, origin: ApiOrigin) -> dict:
    """Reversed (the actions are undone; a reset field is not restored) or upheld, with a reason told to
    the user. 403 ``same_reviewer`` for the reviewer who took the action."""
    return appeals.decide_appeal(rt, origin, staff, review_id, outcome=body.outcome, reason=body.reason)
