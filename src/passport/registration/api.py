from __future__ import annotations

from fastapi import APIRouter, Request, Response

from passport.registration import service
from passport.registration.schemas import Registered, RegisterIn
from passport.web.http import ApiOrigin, Rt, device_id, keep_device

router = APIRouter(tags=["accounts"])


@router.post("/accounts", status_code=201, response_model=Registered)
def register(body: RegisterIn, request: Request, response: Response, rt: Rt, origin: ApiOrigin) -> dict:
    rt.limiter.hit(f"{rt.settings.register_per_ip_hour}/hour", "register-ip", origin.ip or "-")
    done = service.register(rt, origin, phone=body.phone, code=body.code, password=body.password,
                            nickname=body.nickname, accepted=body.agreements, device=device_id(request))
    keep_device(request, response)
    return {"account": done.account, "recovery_key": done.recovery_key, "session": done.session.public()}
