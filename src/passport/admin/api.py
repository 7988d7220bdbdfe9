"""JSON API under /api/v1/admin: staff login, dashboard, accounts, actions, reviews, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from passport.admin import enforcement, schemas
from passport.admin import service as admin
from passport.admin.service import StaffPrincipal
from passport.clock import rfc3339
from passport.guards import staff_permission
from passport.reviews import service as reviews
from passport.schemas import MAX_OFFSET
from passport.web.http import ApiOrigin, Rt
from passport.web.openapi import problems

router = APIRouter(prefix="/admin", tags=["admin"])

AnyStaff = Annotated[admin.StaffPrincipal, Depends(staff_permission("dashboard.read"))]
StaffManager = Annotated[admin.StaffPrincipal, Depends(staff_permission("staff.manage"))]


@router.post("/sessions", status_code=201, response_model=schemas.StaffLoginOut,
             responses=problems(invalid_credentials=401))
def staff_login(body: schemas.StaffLoginIn, rt: Rt, origin: ApiOrigin) -> dict:
    """Staff login: password and a current TOTP code, both required every time."""
    done = admin.login_staff(rt, origin, body.login, body.password, body.totp)
    return {"token": done.token, "expires_at": rfc3339(done.expires_at),
            "staff": {"login": done.login, "role": done.role}}


@router.delete("/sessions/current", status_code=204)
def staff_logout(principal: AnyStaff, rt: Rt, origin: ApiOrigin) -> Response:
    admin.end_staff_session(rt, origin, principal)
    return Response(status_code=204)


@router.get("/dashboard", response_model=schemas.DashboardOut)
def dashboard(principal: AnyStaff, rt: Rt) -> dict:
    return admin.dashboard(rt, principal)


@router.get("/staff", response_model=list[schemas.StaffOut])
def list_staff(principal: StaffManager, rt: Rt) -> list[dict]:
    return admin.list_staff(rt, principal)


@router.post("/staff", status_code=201, response_model=schemas.StaffCreatedOut,
             responses=problems(invalid_login=422, invalid_role=422, login_taken=409))
def create_staff(body: schemas.StaffCreateIn, principal: StaffManager, rt: Rt, origin: ApiOrigin) -> dict:
    return admin.add_staff(rt, origin, principal, login=body.login, role=body.role)


@router.post("/staff/{staff_id}/disable", response_model=schemas.StaffOut, responses=problems(cannot_disable_self=409))
def disable_staff(staff_id: str, principal: StaffManager, rt: Rt, origin: ApiOrigin) -> dict:
    return admin.disable_staff(rt, origin, principal, staff_id)


@router.post("/staff/{staff_id}/reset", response_model=schemas.StaffCreatedOut,
             responses=problems(cannot_reset_self=409, staff_disabled=409))
def reset_staff(staff_id: str, principal: StaffManager, rt: Rt, origin: ApiOrigin) -> dict:
    """Lost password or authenticator: password, TOTP and sessions go; the answer carries a new
    one-time enrolment link."""
    return admin.reset_staff(rt, origin, principal, staff_id=staff_id)


Reader = Annotated[StaffPrincipal, Depends(staff_permission("accounts.read"))]
Revealer = Annotated[StaffPrincipal, Depends(staff_permission("accounts.reveal"))]
Actor = Annotated[StaffPrincipal, Depends(staff_permission("accounts.act"))]
Reviewer = Annotated[StaffPrincipal, Depends(staff_permission("reviews.decide"))]


class RevealIn(BaseModel):
    field: Literal["phone", "email"]
    reason: str = Field("", max_length=1000)


class RevealOut(BaseModel):
    field: str
    value: str


class ActionIn(BaseModel):
    action: str = Field(max_length=32, description="warn | require_correction | restrict | suspend | unsuspend | "
                                                   "terminate")
    reason: str = Field("", max_length=1000)
    until: datetime | None = Field(None, description="End of a suspension (none: until lifted), deadline of "
                                                     "require_correction")
    field: Literal["nickname", "bio", "avatar"] | None = Field(None, description="require_correction: the field "
                                                               "to correct (a changed value meets the deadline)")
    escalate_to: Literal["restrict", "suspend", "terminate"] | None = Field(
        None, description="require_correction: the action a missed deadline escalates to (default restrict)")


class ActionOut(BaseModel):
    id: int
    account: dict
    revoked_sessions: int


class DecisionIn(BaseModel):
    decision: str = Field(max_length=16, description="approve | reject")
    reason: str | None = Field(None, max_length=1000)


@router.get("/accounts",
            responses=problems(filter_required=422, invalid_id_number=422, invalid_phone=422, invalid_status=422))
def search_accounts(staff: Reader, rt: Rt, origin: ApiOrigin, phone: str | None = Query(None, max_length=32),
                    status: str | None = Query(None, max_length=16),
                    id_number: str | None = Query(None, max_length=32),
                    offset: int = Query(0, ge=0, le=MAX_OFFSET), limit: int = Query(20, ge=1, le=100)) -> dict:
    """Masked results; ``id_number`` is matched through its blind index. A search by phone or ID
    number is audited (``account.searched``: the staff member, the value masked, the accounts found)."""
    return enforcement.search(rt, origin, staff, phone=phone, status=status, id_number=id_number, offset=offset,
                              limit=limit)


@router.get("/accounts/{account_id}")
def account_detail(account_id: str, staff: Reader, rt: Rt, origin: ApiOrigin) -> dict:
    """The account as staff see it (masked); each look is audited (``account.viewed``)."""
    return enforcement.detail(rt, origin, staff, account_id)


@router.post("/accounts/{account_id}/reveal", response_model=RevealOut,
             responses=problems(invalid_field=422, reason_required=422, reason_too_long=422))
def reveal(account_id: str, body: RevealIn, staff: Revealer, rt: Rt, origin: ApiOrigin) -> dict:
    value = enforcement.reveal(rt, origin, staff, account_id, field=body.field, reason=body.reason)
    return {"field": body.field, "value": value}


@router.post("/accounts/{account_id}/actions", status_code=201, response_model=ActionOut,
             responses=problems(invalid_action=422, reason_required=422, reason_too_long=422, until_in_past=422,
                                until_required=422, account_cancelled=409, invalid_transition=409))
def act(account_id: str, body: ActionIn, staff: Actor, rt: Rt, origin: ApiOrigin) -> dict:
    taken = enforcement.act(rt, origin, staff, account_id, action=body.action, reason=body.reason,
                            until=body.until, field=body.field, escalate_to=body.escalate_to)
    return {"id": taken.action_id, "account": taken.account, "revoked_sessions": taken.revoked_sessions}


@router.get("/reviews", responses=problems(invalid_queue=422, invalid_status=422))
def list_reviews(staff: Reviewer, rt: Rt, queue: str = Query(max_length=32),
                 status: str = Query("pending", max_length=16), offset: int = Query(0, ge=0, le=MAX_OFFSET),
                 limit: int = Query(20, ge=1, le=100)) -> dict:
    return reviews.list_reviews(rt, queue, status, offset=offset, limit=limit)


@router.post("/reviews/{review_id}/claim", responses=problems(already_claimed=409, already_decided=409))
def claim_review(review_id: str, staff: Reviewer, rt: Rt, origin: ApiOrigin) -> dict:
    return reviews.claim(rt, origin, review_id, staff)


@router.post("/reviews/{review_id}",
             responses=problems(claim_required=403, document_not_opened=403, already_claimed=409, already_decided=409,
                                decided_elsewhere=409, invalid_decision=422, reason_required=422,
                                reason_too_long=422))
def decide_review(review_id: str, body: DecisionIn, staff: Reviewer, rt: Rt, origin: ApiOrigin) -> dict:
    """Approve or reject an item, once. Only the reviewer holding a current claim (taken with
    ``POST …/claim`` within the last 30 minutes) decides: 403 ``claim_required`` otherwise, 409
    ``already_claimed`` while another reviewer's claim runs. A ``real_name`` or ``organization`` item
    also needs its document opened by the claimer during the claim (``GET …/document``): 403
    ``document_not_opened``. Refusals are audited (``review.decision_refused``); 409 ``already_decided``."""
    return reviews.decide(rt, origin, review_id, staff, decision=body.decision, reason=body.reason)
