from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from passport.accounts.schemas import ACCOUNT_EXAMPLE
from passport.guards import Authenticated
from passport.sessions import service
from passport.sessions.schemas import LoginIn, LoginOut, SessionOut
from passport.web.http import ApiOrigin, Rt
from passport.web.openapi import examples, problem_example, problems

router = APIRouter(tags=["sessions"])

LOGIN_EXAMPLES = examples(
    request={"password": {"login": "13812345678", "password": "Qz7!mountain-Lark"},
             "sms_code": {"phone": "13812345678", "code": "123456"}},
    answers={
        201: {"signed_in": {"id": "5b0e…", "token": "pst_…", "expires_at": "2026-05-31T08:00:00Z",
                            "account": ACCOUNT_EXAMPLE}},
        401: {"invalid_credentials": problem_example(401, "invalid_credentials", "Wrong login or password."),
              "mfa_required": problem_example(401, "mfa_required",
                                              "Enter the 6-digit code from your authenticator app.",
                                              **{"mfa_token": "mfa_…", "expires_in": 300})},
        403: {"account_frozen": problem_example(
            403, "account_frozen", "This account is frozen. Recover it with your phone and recovery key.")}})



@router.post("/sessions", status_code=201, response_model=LoginOut,
             openapi_extra=LOGIN_EXAMPLES,
             responses=problems(invalid_credentials=401, mfa_required=401, account_frozen=403, account_suspended=403,
                                account_terminated=403, invalid_email=422, invalid_phone=422))
async def login(body: LoginIn, rt: Rt, origin: ApiOrigin) -> JSONResponse:
    if body.password is not None and not rt.db.is_sqlite:
        issued, account = await service.login_password_async(rt, origin, login=body.login, password=body.password)
    elif body.password is not None:
        issued, account = await run_in_threadpool(
            service.login_password, rt, origin, login=body.login, password=body.password)
    else:
        issued, account = await run_in_threadpool(service.login_code, rt, origin, phone=body.phone, code=body.code)
    # Built from our own typed values (as GET /me is): no response-model round trip on the login path;
    # LoginOut still documents it.
    return JSONResponse(issued.public() | {"account": account}, status_code=201)


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
