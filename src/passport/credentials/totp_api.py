"""JSON API: TOTP enrolment (/me/totp…) and the second login step (/sessions/mfa)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from passport.credentials import totp
from passport.credentials.totp_schemas import MfaLoginIn, TotpCodeIn, TotpDisableIn, TotpEnrolled, TotpStatus
from passport.guards import Authenticated
from passport.sessions import service as sessions
from passport.sessions.schemas import LoginOut
from passport.web.http import ApiOrigin, Rt

router = APIRouter(tags=["two-factor"])


@router.get("/me/totp", response_model=TotpStatus)
def totp_status(principal: Authenticated, rt: Rt) -> dict:
    return totp.status(rt, principal.account_id)


@router.post("/me/totp", response_model=TotpEnrolled)
def enroll_totp(principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    """A new secret, not yet in force: confirm it with a first code. 409 ``totp_already_enabled``."""
    return totp.enroll(rt, origin, principal.account_id)


@router.post("/me/totp/confirm", status_code=204)
def confirm_totp(body: TotpCodeIn, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    """Turn two-step verification on. 400 ``invalid_totp`` for a wrong or already used code."""
    totp.confirm(rt, origin, principal.account_id, body.code)
    return Response(status_code=204)


@router.delete("/me/totp", status_code=204)
def disable_totp(body: TotpDisableIn, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    """Turn it off with a current code, or with the recovery key (400 ``invalid_recovery_key``)."""
    totp.disable(rt, origin, principal.account_id, code=body.code, recovery_key=body.recovery_key)
    return Response(status_code=204)


@router.post("/sessions/mfa", status_code=201, response_model=LoginOut, tags=["sessions"])
def login_second_step(body: MfaLoginIn, rt: Rt, origin: ApiOrigin) -> dict:
    """Finish a login that answered 401 ``mfa_required``. Wrong codes count toward the login
    lockout; a bad, used or expired mfa_token gives 401 ``invalid_credentials``."""
    issued, account = sessions.login_mfa(rt, origin, mfa_token=body.mfa_token, code=body.code,
                                         recovery_key=body.recovery_key)
    return issued.public() | {"account": account}
