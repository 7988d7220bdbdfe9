"""JSON API under /api/v1/admin: staff login, dashboard, accounts, actions, reviews, audit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from passport.admin import schemas
from passport.admin import service as admin
from passport.clock import rfc3339
from passport.guards import staff_permission
from passport.web.http import ApiOrigin, Rt

router = APIRouter(prefix="/admin", tags=["admin"])

AnyStaff = Annotated[admin.StaffPrincipal, Depends(staff_permission("dashboard.read"))]
StaffManager = Annotated[admin.StaffPrincipal, Depends(staff_permission("staff.manage"))]


@router.post("/sessions", status_code=201, response_model=schemas.StaffLoginOut)
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


@router.post("/staff", status_code=201, response_model=schemas.StaffCreatedOut)
def create_staff(body: schemas.StaffCreateIn, principal: StaffManager, rt: Rt, origin: ApiOrigin) -> dict:
    return admin.add_staff(rt, origin, principal, login=body.login, role=body.role)


@router.post("/staff/{staff_id}/disable", response_model=schemas.StaffOut)
def disable_staff(staff_id: str, principal: StaffManager, rt: Rt, origin: ApiOrigin) -> dict:
    return admin.disable_staff(rt, origin, principal, staff_id)


@router.post("/staff/{staff_id}/reset", response_model=schemas.StaffCreatedOut)
def reset_staff(staff_id: str, principal: StaffManager, rt: Rt, origin: ApiOrigin) -> dict:
    """Lost password or authenticator: password, TOTP and sessions go; the answer carries a new
    one-time enrolment link."""
    return admin.reset_staff(rt, origin, principal, staff_id=staff_id)
