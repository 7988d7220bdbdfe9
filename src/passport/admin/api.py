"""JSON API under /api/v1/admin: staff login, dashboard, accounts, actions, reviews, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from passport.admin import enforcement, schemas
from passport.admin import service as admin
from passport.admin.service import StaffPrincipal
from passport.clock import rfc3339
from passport.guards import staff_permission
from passport.passwordless import passkeys
from passport.passwordless.schemas import PasskeyOut, PasskeyRegisterIn
from passport.reviews import service as reviews
from passport.schemas import MAX_OFFSET
from passport.web import http
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


@router.post("/sessions/passkey/options")
def staff_passkey_options(body: schemas.StaffPasskeyOptionsIn, rt: Rt, origin: ApiOrigin) -> dict:
    """Options for ``navigator.credentials.get`` for a staff login with a passkey instead of the TOTP
    code: the member's passkeys, or made-up ids for a login without any (the answer says nothing)."""
    return admin.staff_passkey_options(rt, origin, body.login)


@router.post("/sessions/passkey", status_code=201, response_model=schemas.StaffLoginOut,
             responses=problems(invalid_credentials=401))
def staff_passkey_login(body: schemas.StaffPasskeyLoginIn, request: Request, rt: Rt, origin: ApiOrigin) -> JSONResponse:
    """Staff login with the password and a passkey (user verification required) instead of the TOTP
    code. A browser without a bearer token gets the ``passport_admin`` cookie too."""
    done = admin.login_staff_passkey(rt, origin, body.login, body.password, body.credential)
    response = JSONResponse({"token": done.token, "expires_at": rfc3339(done.expires_at),
                             "staff": {"login": done.login, "role": done.role}}, status_code=201)
    response.set_cookie(http.ADMIN_COOKIE, done.token, max_age=int(admin.STAFF_ABSOLUTE.total_seconds()), path="/",
                        samesite="strict", secure=not rt.settings.is_dev, httponly=True)
    return response


@router.get("/me/passkeys", response_model=list[PasskeyOut])
def staff_passkeys(principal: AnyStaff, rt: Rt) -> list[dict]:
    """The signed-in staff member's passkeys (a second factor instead of the TOTP code)."""
    return passkeys.staff_passkeys(rt, principal.staff_id)


@router.post("/me/passkeys/options", responses=problems(passkey_limit=409))
def staff_passkey_creation_options(principal: AnyStaff, rt: Rt, origin: ApiOrigin) -> dict:
    return passkeys.staff_registration_options(rt, origin, principal.staff_id, principal.login)


@router.post("/me/passkeys", status_code=201, response_model=PasskeyOut,
             responses=problems(passkey_rejected=422, passkey_exists=409, passkey_limit=409))
def add_staff_passkey(body: PasskeyRegisterIn, principal: AnyStaff, rt: Rt, origin: ApiOrigin) -> dict:
    """Keep a passkey as this staff member's second factor (the TOTP code keeps working)."""
    return passkeys.register_staff(rt, origin, principal.staff_id, body.credential, body.name)


@router.delete("/me/passkeys/{passkey_id}", status_code=204)
def remove_staff_passkey(passkey_id: str, principal: AnyStaff, rt: Rt, origin: ApiOrigin) -> Response:
    passkeys.remove_staff(rt, origin, principal.staff_id, passkey_id)
    return Response(status_code=204)


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


class ResetIn(BaseModel):
    field: str = Field(max_length=16, description="nickname | bio | avatar")
    reason: str = Field("", max_length=1000, description="Told to the account in its inbox.")


class ResetOut(BaseModel):
    field: str
    reset: bool = Field(description="false: the field already had its default (nothing was written)")


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


@router.post("/accounts/{account_id}/reset", response_model=ResetOut,
             responses=problems(invalid_field=422, reason_required=422, reason_too_long=422))
def reset_info(account_id: str, body: ResetIn, staff: Reviewer, rt: Rt, origin: ApiOrigin) -> dict:
    """Reset a nickname (to a neutral one), a bio (to empty) or an avatar (to none) with a reason
    (agreement §五(一)); a change held for the field is withdrawn. Audited (``account.info_reset``); the
    owner is told in the inbox with the reason. 404 for an unknown or cancelled account."""
    done = enforcement.reset_info(rt, origin, staff, account_id, field=body.field, reason=body.reason)
    return {"field": body.field, "reset": done}


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
