from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from passport.accounts.schemas import ACCOUNT_EXAMPLE
from passport.clock import rfc3339
from passport.credentials import stepup
from passport.guards import Authenticated
from passport.sessions import service
from passport.sessions.schemas import LoginIn, LoginOut, SessionOut, StepUpIn, StepUpOut
from passport.web import html as web
from passport.web import http
from passport.web.http import ApiOrigin, Rt, device_id, keep_device
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


@router.post("/me/step-up", response_model=StepUpOut,
             responses=problems(invalid_password=400, invalid_totp=400, totp_not_enabled=409))
def step_up(body: StepUpIn, principal: Authenticated, request: Request, rt: Rt, origin: ApiOrigin) -> JSONResponse:
    """Step up this session before a sensitive change: the password, or a ``code`` from the
    authenticator app when two-step verification is on. For ``PASSPORT_STEP_UP_MINUTES`` (default 10)
    the changes that answer 403 ``step_up_required`` without it go through: turning two-step
    verification on or off, binding or changing the email address, starting a personal-data export.
    (Calls that carry the current password themselves — phone change, new recovery key, cancellation —
    need none.) The session token is replaced, as by ``PUT /me/password``: the answer is the new
    ``token`` and ``expires_at``, the old token answers 401; a call made with the session cookie gets
    the new cookie. Wrong passwords and codes count toward the login lock (5 failures, 15 minutes;
    while locked every try answers as a wrong one) and toward the hourly current-password budget
    (429 ``rate_limited``). 400 ``invalid_password`` | ``invalid_totp``; 409 ``totp_not_enabled``
    (a code without two-step verification)."""
    until = rt.clock.now() + stepup.window(rt)  # read before: never later than the session's own
    issued = stepup.step_up(rt, origin, principal, password=body.password, code=body.code)
    response = JSONResponse(issued.public() | {"stepped_up_until": rfc3339(until)})
    if http.bearer_token(request) is None:  # signed in by the cookie: the browser keeps its session
        web.set_session_cookie(request, response, issued.token, issued.expires_at - rt.clock.now())
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
