from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from passport import errors
from passport.accounts.service import account_exists
from passport.credentials import codes, service, totp
from passport.credentials import phone as phone_change
from passport.credentials.schemas import (
    CodeRequest,
    CodeSent,
    FreezeIn,
    HeldPhoneChange,
    HeldPhoneChangeIn,
    MfaLoginIn,
    NotMeIn,
    NotMeOut,
    OwnCodeIn,
    PasswordChangeIn,
    PasswordIn,
    PasswordResetIn,
    PhoneChanged,
    PhoneChangeIn,
    RecoveryKeyOut,
    TotpCodeIn,
    TotpDisableIn,
    TotpEnrolled,
    TotpStatus,
    UnfreezeIn,
)
from passport.guards import Authenticated, SteppedUp
from passport.sessions import service as sessions
from passport.sessions.schemas import LoginOut, SessionIssued
from passport.web import html as web
from passport.web import http
from passport.web.http import ApiOrigin, Rt
from passport.web.openapi import problems

router = APIRouter()


@router.post("/verification-codes", status_code=202, response_model=CodeSent, tags=["verification codes"],
             responses=problems(invalid_channel=422, invalid_email=422, invalid_phone=422, invalid_purpose=422))
def send_verification_code(body: CodeRequest, rt: Rt, origin: ApiOrigin) -> dict:
    """Send a 6-digit code. The answer is the same whether or not an account holds the number."""
    return codes.send_code(rt, origin, channel=body.channel, to=body.to, purpose=body.purpose,
                             account_exists=account_exists)


@router.put("/me/password", status_code=200, response_model=SessionIssued, tags=["credentials"],
            responses=problems(invalid_password=400, same_password=422, weak_password=422))
def change_password(body: PasswordChangeIn, principal: Authenticated, request: Request, rt: Rt,
                    origin: ApiOrigin) -> JSONResponse:
    """Change the password: the current one is required. Every session of the account ends, the one
    that made this call included, and this client gets a new session: the answer is its ``token`` and
    ``expires_at`` (as ``POST /sessions`` gives them); use it from now on, the old token answers 401.
    A call made with the session cookie gets the new cookie too."""
    issued = service.change_password(rt, origin, principal, current_password=body.current_password,
                                     new_password=body.new_password)
    response = JSONResponse(issued.public())
    if http.bearer_token(request) is None:  # signed in by the cookie: the browser keeps its session
        web.set_session_cookie(request, response, issued.token, issued.expires_at - rt.clock.now())
    return response


@router.post("/password-resets", status_code=204, tags=["credentials"],
             responses=problems(invalid_code=400, account_frozen=403, invalid_phone=422, weak_password=422))
def reset_password(body: PasswordResetIn, rt: Rt, origin: ApiOrigin) -> Response:
    """Reset a forgotten password with an SMS code (purpose ``reset_password``) or the recovery key.
    A wrong code or key and an unknown number all answer 400 ``invalid_code``; every session ends."""
    service.reset_password(rt, origin, phone=body.phone, code=body.code, recovery_key=body.recovery_key,
                           new_password=body.new_password)
    return Response(status_code=204)


@router.post("/me/recovery-key", status_code=201, response_model=RecoveryKeyOut, tags=["credentials"],
             responses=problems(invalid_password=400))
def regenerate_recovery_key(body: PasswordIn, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    """A new recovery key, shown once; the old one stops working."""
    return {"recovery_key": service.regenerate_recovery_key(rt, origin, principal, password=body.password)}


@router.post("/account-freezes", status_code=204, tags=["credentials"],
             responses=problems(invalid_code=400, account_not_freezable=409, invalid_phone=422))
def freeze_account(body: FreezeIn, rt: Rt, origin: ApiOrigin) -> Response:
    """"My account was stolen": freeze with an SMS code (purpose ``freeze``), no login needed.
    Every session ends and login answers 403 ``account_frozen`` until the account is unfrozen."""
    service.freeze_by_code(rt, origin, phone=body.phone, code=body.code)
    return Response(status_code=204)


@router.post("/me/freeze", status_code=204, tags=["credentials"], responses=problems(account_not_freezable=409))
def freeze_me(principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    """Freeze the signed-in account; this session ends with all the others."""
    service.freeze_own(rt, origin, principal)
    return Response(status_code=204)


@router.post("/account-unfreezes", status_code=204, tags=["credentials"],
             responses=problems(invalid_code=400, invalid_phone=422, weak_password=422))
def unfreeze_account(body: UnfreezeIn, rt: Rt, origin: ApiOrigin) -> Response:
    """Unfreeze with an SMS code (purpose ``unfreeze``) and the recovery key, setting a new password."""
    service.unfreeze(rt, origin, phone=body.phone, code=body.code, recovery_key=body.recovery_key,
                     new_password=body.new_password)
    return Response(status_code=204)


@router.post("/me/verification-codes", status_code=202, response_model=CodeSent, tags=["verification codes"],
             responses=problems(phone_required=409, invalid_purpose=422))
def send_own_code(body: OwnCodeIn, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    """Send a ``cancel_account``, ``export`` or ``change_phone_old`` code to the signed-in account's own phone."""
    return codes.send_own_code(rt, origin, principal.account_id, body.purpose)


@router.put("/me/phone", response_model=PhoneChanged, tags=["credentials"],
            responses=problems(invalid_code=400, invalid_old_code=400, invalid_password=400, old_code_required=400,
                               conflict=409, phone_taken=409, invalid_phone=422, same_phone=422))
def change_phone(body: PhoneChangeIn, principal: Authenticated, request: Request, rt: Rt,
                 origin: ApiOrigin) -> JSONResponse:
    """Change the mobile number at once: a ``change_phone_old`` code sent to the CURRENT number
    (``POST /me/verification-codes``), the password, and a ``change_phone`` code sent to the NEW one.
    Every other session ends and this client gets a new session (``token``, ``expires_at``; the old
    token answers 401; a cookie session gets the new cookie), with the ``account``.
    400 ``old_code_required`` | ``invalid_old_code`` | ``invalid_password`` | ``invalid_code``;
    422 ``invalid_phone`` | ``same_phone``; 409 ``phone_taken`` (only after the code proved the number)."""
    issued, account = phone_change.change_phone(rt, origin, principal, phone=body.phone, code=body.code,
                                                old_code=body.old_code, password=body.password)
    response = JSONResponse(issued.public() | {"account": account})
    if http.bearer_token(request) is None:
        web.set_session_cookie(request, response, issued.token, issued.expires_at - rt.clock.now())
    return response


@router.post("/me/phone-change", status_code=202, response_model=HeldPhoneChange, tags=["credentials"],
             responses=problems(invalid_code=400, invalid_password=400, invalid_recovery_key=400, phone_taken=409,
                                phone_change_pending=409, phone_change_not_allowed=409, invalid_phone=422,
                                same_phone=422))
def request_held_phone_change(body: HeldPhoneChangeIn, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    """Lost the old number: the recovery key, the password and a ``change_phone`` code sent to the new
    number start a change that waits ``PASSPORT_PHONE_CHANGE_HOLD_DAYS`` (``effective_at``). The old
    number, the email and the inbox are told, with a "this was not me" link; then the worker applies it
    and every session ends. 400 ``invalid_password`` | ``invalid_recovery_key`` | ``invalid_code``;
    422 ``invalid_phone`` | ``same_phone``; 409 ``phone_taken`` (after the code) | ``phone_change_pending`` |
    ``phone_change_not_allowed``."""
    return phone_change.request_held_change(rt, origin, principal, phone=body.phone, code=body.code,
                                            recovery_key=body.recovery_key, password=body.password)


@router.get("/me/phone-change", response_model=HeldPhoneChange, tags=["credentials"],
            responses=problems(not_found=404))
def held_phone_change(principal: Authenticated, rt: Rt) -> dict:
    """The held change; 404 ``not_found`` when there is none."""
    held = phone_change.pending(rt, principal.account_id)
    if held is None:
        raise errors.not_found("phone_change")
    return held


@router.delete("/me/phone-change", status_code=204, tags=["credentials"],
               responses=problems(not_found=404))
def cancel_held_phone_change(principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    """Cancel the held change; 404 ``not_found`` when there is none (or it was applied)."""
    phone_change.cancel_by_owner(rt, origin, principal.account_id)
    return Response(status_code=204)


@router.post("/phone-changes/not-me", response_model=NotMeOut, tags=["credentials"],
             responses=problems(invalid_link=400))
def phone_change_not_me(body: NotMeIn, rt: Rt, origin: ApiOrigin) -> dict:
    """"This was not me", no login needed: the token of the link in the notice cancels the held change
    and freezes the account (every session ends; unfreeze with an SMS code and the recovery key).
    400 ``invalid_link`` when the token is forged or its change is no longer held."""
    return {"frozen": phone_change.not_me(rt, origin, body.token)}


@router.get("/me/totp", tags=["two-factor"], response_model=TotpStatus)
def totp_status(principal: Authenticated, rt: Rt) -> dict:
    return totp.status(rt, principal.account_id)


@router.post("/me/totp", tags=["two-factor"], response_model=TotpEnrolled, responses=problems(totp_already_enabled=409))
def enroll_totp(principal: SteppedUp, rt: Rt, origin: ApiOrigin) -> dict:
    """A new secret, not yet in force: confirm it with a first code. 409 ``totp_already_enabled``;
    403 ``step_up_required`` unless the session stepped up (``POST /me/step-up``)."""
    return totp.enroll(rt, origin, principal.account_id)


@router.post("/me/totp/confirm", tags=["two-factor"], status_code=204,
             responses=problems(invalid_totp=400, totp_not_enrolled=409))
def confirm_totp(body: TotpCodeIn, principal: SteppedUp, rt: Rt, origin: ApiOrigin) -> Response:
    """Turn two-step verification on. 400 ``invalid_totp`` for a wrong or already used code;
    403 ``step_up_required`` unless the session stepped up."""
    totp.confirm(rt, origin, principal.account_id, body.code)
    return Response(status_code=204)


@router.delete("/me/totp", tags=["two-factor"], status_code=204,
               responses=problems(invalid_recovery_key=400, invalid_totp=400, totp_not_enabled=409))
def disable_totp(body: TotpDisableIn, principal: SteppedUp, rt: Rt, origin: ApiOrigin) -> Response:
    """Turn it off with a current code, or with the recovery key (400 ``invalid_recovery_key``);
    403 ``step_up_required`` unless the session stepped up."""
    totp.disable(rt, origin, principal.account_id, code=body.code, recovery_key=body.recovery_key)
    return Response(status_code=204)


@router.post("/sessions/mfa", status_code=201, response_model=LoginOut, tags=["two-factor", "sessions"],
             responses=problems(invalid_recovery_key=400, invalid_totp=400, invalid_credentials=401, account_frozen=403,
                                account_suspended=403, account_terminated=403))
def login_second_step(body: MfaLoginIn, request: Request, response: Response, rt: Rt, origin: ApiOrigin) -> dict:
    """Finish a login that answered 401 ``mfa_required``. Wrong codes count toward the login
    lockout; a bad, used or expired mfa_token gives 401 ``invalid_credentials``."""
    issued, account = sessions.login_mfa(rt, origin, mfa_token=body.mfa_token, code=body.code,
                                         recovery_key=body.recovery_key, device=http.device_id(request))
    http.keep_device(request, response)
    return issued.public() | {"account": account}
