from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from passport.guards import Authenticated
from passport.sessions import service
from passport.sessions.schemas import LoginIn, LoginOut, SessionOut
from passport.web.http import ApiOrigin, Rt, device_id, keep_device

router = APIRouter(tags=["sessions"])


@router.post("/sessions", status_code=201, response_model=LoginOut)
async def login(body: LoginIn, request: Request, rt: Rt, origin: ApiOrigin) -> JSONResponse:
    """A sign-in from a device (the ``passport_device`` cookie, set on the first answer) the account
    has not used before is told to its owner (inbox and SMS)."""
    device = device_id(request)
    if body.password is not None and not rt.db.is_sqlite:
        issued, account = await service.login_password_async(rt, origin, login=body.login, password=body.password,
                                                             device=device)
    elif body.password is not None:
        issued, account = await run_in_threadpool(
            service.login_password, rt, origin, login=body.login, password=body.password, device=device)
    else:
        issued, account = await run_in_threadpool(service.login_code, rt, origin, phone=body.phone, code=body.code,
                                                  device=device)
    # Built from our own typed values (as GET /me is): no response-model round trip on the login path;
    # LoginOut still documents it.
    response = JSONResponse(issued.public() | {"account": account}, status_code=201)
    keep_device(request, response)
    return response


@router.get("/sessions", response_model=list[SessionOut])
def list_sessions(principal: Authenticated, rt: Rt) -> list[dict]:
    return service.list_sessions(rt, principal)


@router.delete("/sessions/current", status_code=204)
def logout(principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    service.revoke(rt, origin, principal, principal.session_id)
    return Response(status_code=204)


@router.delete("/sessions/others", status_code=204)
def revoke_other_sessions(principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    """Sign out every other device of this account; this session stays."""
    service.revoke_others(rt, origin, principal)
    return Response(status_code=204)


# Declared after the fixed paths above: "current" and "others" are not session ids.
@router.delete("/sessions/{session_id}", status_code=204)
def revoke_session(session_id: str, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    service.revoke(rt, origin, principal, session_id)
    return Response(status_code=204)
