"""QR login and passkeys through the JSON API (API.md "Passwordless")."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from passport.clock import rfc3339
from passport.credentials import stepup
from passport.guards import Authenticated, SteppedUp
from passport.passwordless import passkeys, qr
from passport.passwordless.schemas import (
    PasskeyLoginIn,
    PasskeyOptionsIn,
    PasskeyOut,
    PasskeyRegisterIn,
    PasskeyRenameIn,
    QrLoginCreated,
    QrLoginDetails,
    QrLoginStatus,
)
from passport.sessions.schemas import LoginOut, StepUpOut
from passport.web import html as web
from passport.web import http
from passport.web.http import ApiOrigin, Rt, device_id, keep_device
from passport.web.openapi import problems

router = APIRouter(tags=["passwordless"])

QR_COOKIE = "passport_qr"  # binds a login request to the browser that asked for it
QR_COOKIE_PATH = "/api/v1/qr-logins"


@router.post("/qr-logins", status_code=201, response_model=QrLoginCreated)
def create_qr_login(request: Request, rt: Rt, origin: ApiOrigin) -> JSONResponse:
    """A new QR login request for this browser (``PASSPORT_QR_LOGIN_PER_IP_MINUTE`` per IP). The answer
    sets the ``passport_qr`` cookie (HttpOnly) that only this browser holds: the status, and the
    session once a signed-in device approves, are given only with it. Show ``qr_image`` (or draw
    ``qr_payload``) and poll ``GET /qr-logins/{id}`` with backoff."""
    created = qr.create(rt, origin)
    seconds = round((created.expires_at - rt.clock.now()).total_seconds())
    response = JSONResponse({"id": created.code, "qr_payload": qr.payload(rt, created.code),
                             "qr_image": web.qr_image(qr.payload(rt, created.code)), "expires_in": seconds,
                             "expires_at": rfc3339(created.expires_at)}, status_code=201)
    response.set_cookie(QR_COOKIE, created.secret, max_age=rt.settings.qr_login_seconds + 60, path=QR_COOKIE_PATH,
                        samesite="strict", secure=not rt.settings.is_dev, httponly=True)
    return response


@router.get("/qr-logins/{code}", response_model=QrLoginStatus)
async def qr_login_status(code: str, request: Request, rt: Rt, origin: ApiOrigin) -> JSONResponse:
    """The waiting browser's view (its ``passport_qr`` cookie; any other caller gets 404). The first
    call after approval starts this browser's session, ``method: "qr"``: the ``passport_session``
    cookie is set and ``token`` is in the body, once; later calls answer ``used``. A request ends
    ``rejected``, ``expired`` (2 minutes) or ``used``: ask for a new one."""
    answer, issued = await run_in_threadpool(qr.poll, rt, origin, code, request.cookies.get(QR_COOKIE),
                                             device_id(request))
    if issued is not None:
        answer |= {"id": issued.id, "token": issued.token, "session_expires_at": rfc3339(issued.expires_at)}
    response = JSONResponse(answer)
    if issued is not None:
        web.set_session_cookie(request, response, issued.token, issued.expires_at - rt.clock.now())
        response.delete_cookie(QR_COOKIE, path=QR_COOKIE_PATH)
        keep_device(request, response)
    return response


_DECISION_PROBLEMS = problems(qr_login_expired=410, qr_login_closed=409)


@router.post("/qr-logins/{code}/scan", response_model=QrLoginDetails, responses=_DECISION_PROBLEMS)
def scan_qr_login(code: str, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    """A signed-in device read the QR code: the request is bound to this account (another account
    gets 404) and the answer says where it comes from (device family, IP and region, time). Optional
    before approve/reject."""
    return qr.scan(rt, origin, principal, code)


@router.post("/qr-logins/{code}/approve", response_model=QrLoginDetails,
             responses=problems(qr_login_expired=410, qr_login_closed=409, step_up_required=403,
                                account_frozen=403, account_suspended=403, account_terminated=403))
def approve_qr_login(code: str, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    """Approve: the waiting browser's next poll starts its own session. With two-step verification
    on, this session must be stepped up first (403 ``step_up_required``). 404 for an unknown code or
    one another account scanned; 410 ``qr_login_expired``; 409 ``qr_login_closed`` (decided already)."""
    return qr.decide(rt, origin, principal, code, approve=True)


@router.post("/qr-logins/{code}/reject", response_model=QrLoginDetails, responses=_DECISION_PROBLEMS)
def reject_qr_login(code: str, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    """Reject: the waiting browser is told ``rejected`` and gets no session."""
    return qr.decide(rt, origin, principal, code, approve=False)



# --- passkeys ----------------------------------------------------------------------------------------

@router.post("/me/passkeys/options", responses=problems(passkey_limit=409))
def passkey_creation_options(principal: SteppedUp, rt: Rt, origin: ApiOrigin) -> dict:
    """Creation options for ``navigator.credentials.create({publicKey})`` (base64url fields): a
    discoverable credential, user verification required. Needs a stepped-up session."""
    return passkeys.registration_options(rt, origin, principal)


@router.post("/me/passkeys", status_code=201, response_model=PasskeyOut,
             responses=problems(passkey_rejected=422, passkey_exists=409, passkey_limit=409))
def add_passkey(body: PasskeyRegisterIn, principal: SteppedUp, rt: Rt, origin: ApiOrigin) -> dict:
    """Keep the passkey the authenticator made for the options (``credential``: the
    PublicKeyCredential as JSON, base64url fields), with an optional ``name``. The owner is told."""
    return passkeys.register(rt, origin, principal, body.credential, body.name)


@router.get("/me/passkeys", response_model=list[PasskeyOut])
def list_passkeys(principal: Authenticated, rt: Rt) -> list[dict]:
    return passkeys.list_passkeys(rt, principal.account_id)


@router.patch("/me/passkeys/{passkey_id}", response_model=PasskeyOut, responses=problems(invalid_name=422))
def rename_passkey(passkey_id: str, body: PasskeyRenameIn, principal: Authenticated, rt: Rt,
                   origin: ApiOrigin) -> dict:
    return passkeys.rename(rt, origin, principal, passkey_id, body.name)


@router.delete("/me/passkeys/{passkey_id}", status_code=204)
def remove_passkey(passkey_id: str, principal: SteppedUp, rt: Rt, origin: ApiOrigin) -> Response:
    """Remove a passkey (a stepped-up session; the owner is told)."""
    passkeys.remove(rt, origin, principal, passkey_id)
    return Response(status_code=204)


@router.post("/me/step-up/passkey/options", responses=problems(not_found=404))
def passkey_step_up_options(principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    """Request options naming this account's passkeys, to step the session up with one (404 when the
    account has none)."""
    return passkeys.step_up_options(rt, origin, principal)


@router.post("/me/step-up/passkey", response_model=StepUpOut, responses=problems(invalid_passkey=400))
def passkey_step_up(body: PasskeyLoginIn, principal: Authenticated, request: Request, rt: Rt,
                    origin: ApiOrigin) -> JSONResponse:
    """Step up this session with a passkey instead of the password (as ``POST /me/step-up``: the token
    is replaced; a cookie session gets the new cookie). 400 ``invalid_passkey``; failures count toward
    the login lock."""
    until = rt.clock.now() + stepup.window(rt)
    issued = passkeys.step_up(rt, origin, principal, body.credential)
    response = JSONResponse(issued.public() | {"stepped_up_until": rfc3339(until)})
    if http.bearer_token(request) is None:
        web.set_session_cookie(request, response, issued.token, issued.expires_at - rt.clock.now())
    return response


@router.post("/sessions/passkey/options", responses=problems(invalid_phone=422))
def passkey_request_options(body: PasskeyOptionsIn, rt: Rt, origin: ApiOrigin) -> dict:
    """Request options for ``navigator.credentials.get({publicKey})``. Without ``phone`` the browser
    offers the passkeys it holds for this site (usernameless); with it, ``allowCredentials`` names
    that number's passkeys — or, for a number without an account or without passkeys, made-up ids
    that are the same on every ask: the answer never says whether an account exists."""
    return passkeys.login_options(rt, origin, body.phone)


@router.post("/sessions/passkey", status_code=201, response_model=LoginOut,
             responses=problems(invalid_credentials=401, account_frozen=403, account_suspended=403,
                                account_terminated=403))
def passkey_login(body: PasskeyLoginIn, request: Request, rt: Rt, origin: ApiOrigin) -> JSONResponse:
    """Sign in with the passkey's assertion: 201 as ``POST /sessions`` (``method: "passkey"``; a
    passkey with user verification is two factors, no TOTP step follows). A browser without a bearer
    token gets the session cookie too. Any failure — unknown passkey, spent challenge, wrong
    signature, a sign counter that went backwards (a cloned authenticator) — is 401
    ``invalid_credentials``; frozen, suspended or terminated accounts get the password login's 403."""
    issued, account = passkeys.login(rt, origin, body.credential, device_id(request))
    response = JSONResponse(issued.public() | {"account": account}, status_code=201)
    web.set_session_cookie(request, response, issued.token, issued.expires_at - rt.clock.now())
    keep_device(request, response)
    return response
