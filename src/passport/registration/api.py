from __future__ import annotations

from fastapi import APIRouter, Request, Response

from passport.accounts.schemas import ACCOUNT_EXAMPLE
from passport.registration import service
from passport.registration.schemas import Registered, RegisterIn
from passport.web.http import ApiOrigin, Rt, device_id, keep_device
from passport.web.openapi import examples, problem_example, problems

router = APIRouter(tags=["accounts"])

REGISTER_EXAMPLES = examples(
    request={"register": {"phone": "13812345678", "code": "123456", "password": "Qz7!mountain-Lark", "nickname": "小明",
                          "agreements": {"user-agreement": "1.0", "privacy-policy": "1.0"}}},
    answers={
        201: {"registered": {"account": ACCOUNT_EXAMPLE, "recovery_key": "K7QX-M2PD-9VHT-4RJC-WN8E-3FLA",
                             "session": {"id": "5b0e…", "token": "pst_…", "expires_at": "2026-05-31T08:00:00Z"}}},
        409: {"phone_taken": problem_example(
            409, "phone_taken", "This mobile number is already registered. Please log in.",
            errors=[{"field": "phone", "code": "phone_taken", "message": "already registered"}])},
        422: {"invalid_code": problem_example(
            422, "invalid_code", "The verification code is wrong or has expired.",
            errors=[{"field": "code", "code": "invalid_code",
                     "message": "The verification code is wrong or has expired."}])}})



@router.post("/accounts", status_code=201, response_model=Registered,
             openapi_extra=REGISTER_EXAMPLES,
             responses=problems(phone_taken=409, account_info_rejected=422, agreements_required=422, invalid_code=422,
                                invalid_nickname=422, invalid_phone=422, weak_password=422))
def register(body: RegisterIn, request: Request, response: Response, rt: Rt, origin: ApiOrigin) -> dict:
    rt.limiter.hit(f"{rt.settings.register_per_ip_hour}/hour", "register-ip", origin.ip or "-")
    done = service.register(rt, origin, phone=body.phone, code=body.code, password=body.password,
                            nickname=body.nickname, accepted=body.agreements, device=device_id(request))
    keep_device(request, response)
    return {"account": done.account, "recovery_key": done.recovery_key, "session": done.session.public()}
