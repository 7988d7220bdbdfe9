from __future__ import annotations

from fastapi import APIRouter

from passport.accounts.service import account_exists
from passport.credentials import service
from passport.credentials.schemas import CodeRequest, CodeSent
from passport.web.http import ApiOrigin, Rt

router = APIRouter(tags=["verification codes"])


@router.post("/verification-codes", status_code=202, response_model=CodeSent)
def send_verification_code(body: CodeRequest, rt: Rt, origin: ApiOrigin) -> dict:
    """Send a 6-digit code. The answer is the same whether or not an account holds the number."""
    return service.send_code(rt, origin, channel=body.channel, to=body.to, purpose=body.purpose,
                             account_exists=account_exists)
