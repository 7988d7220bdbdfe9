from __future__ import annotations

from fastapi import APIRouter, Response

from passport.accounts.service import account_exists
from passport.credentials import service
from passport.credentials.schemas import (
    CodeRequest,
    CodeSent,
    FreezeIn,
    PasswordChangeIn,
    PasswordIn,
    PasswordResetIn,
    RecoveryKeyOut,
    UnfreezeIn,
)
from passport.guards import Authenticated
from passport.web.http import ApiOrigin, Rt

router = APIRouter()


@router.post("/verification-codes", status_code=202, response_model=CodeSent, tags=["verification codes"])
def send_verification_code(body: CodeRequest, rt: Rt, origin: ApiOrigin) -> dict:
    """Send a 6-digit code. The answer is the same whether or not an account holds the number."""
    return service.send_code(rt, origin, channel=body.channel, to=body.to, purpose=body.purpose,
                             account_exists=account_exists)


@router.put("/me/password", status_code=204, tags=["credentials"])
def change_password(body: PasswordChangeIn, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    """Change the password: the current one is required; every other session ends."""
    service.change_password(rt, origin, principal, current_password=body.current_password,
                            new_password=body.new_password)
    return Response(status_code=204)


@router.post("/password-resets", status_code=204, tags=["credentials"])
def reset_password(body: PasswordResetIn, rt: Rt, origin: ApiOrigin) -> Response:
    """Reset a forgotten password with an SMS code (purpose ``reset_password``) or the recovery key.
    A wrong code or key and an unknown number all answer 400 ``invalid_code``; every session ends."""
    service.reset_password(rt, origin, phone=body.phone, code=body.code, recovery_key=body.recovery_key,
                           new_password=body.new_password)
    return Response(status_code=204)


@router.post("/me/recovery-key", status_code=201, response_model=RecoveryKeyOut, tags=["credentials"])
def regenerate_recovery_key(body: PasswordIn, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    """A new recovery key, shown once; the old one stops working."""
    return {"recovery_key": service.regenerate_recovery_key(rt, origin, principal, password=body.password)}


@router.post("/account-freezes", status_code=204, tags=["credentials"])
def freeze_account(body: FreezeIn, rt: Rt, origin: ApiOrigin) -> Response:
    """"My account was stolen": freeze with an SMS code (purpose ``freeze``), no login needed.
    Every session ends and login answers 403 ``account_frozen`` until the account is unfrozen."""
    service.freeze_by_code(rt, origin, phone=body.phone, code=body.code)
    return Response(status_code=204)


@router.post("/me/freeze", status_code=204, tags=["credentials"])
def freeze_me(principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    """Freeze the signed-in account; this session ends with all the others."""
    service.freeze_own(rt, origin, principal)
    return Response(status_code=204)


@router.post("/account-unfreezes", status_code=204, tags=["credentials"])
def unfreeze_account(body: UnfreezeIn, rt: Rt, origin: ApiOrigin) -> Response:
    """Unfreeze with an SMS code (purpose ``unfreeze``) and the recovery key, setting a new password."""
    service.unfreeze(rt, origin, phone=body.phone, code=body.code, recovery_key=body.recovery_key,
                     new_password=body.new_password)
    return Response(status_code=204)
