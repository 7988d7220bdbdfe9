"""Pages: registration (API.md "Accounts")."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from passport import errors, guards
from passport.agreements import service as agreements
from passport.registration import service
from passport.web import html as web
from passport.web import http
from passport.web.html import CheckedForm, FormState

router = APIRouter(include_in_schema=False)


REGISTER_FIELDS = ("phone", "code", "nickname", "password", "accept")


AGREEMENT_INPUT = "agreement."  # hidden inputs agreement.<kind> = <version shown on the page>


def register_page(request: Request, state: FormState) -> Response:
    rt = web.runtime(request)
    with rt.db.read() as db:
        current = {v.kind: v.version for v in agreements.current_versions(rt, db)}
    shown = {kind: current[kind] for kind in agreements.REQUIRED_AT_REGISTRATION if kind in current}
    return web.render(request, "register.html", state.status, page_path="/register", form=state,
                      agreements=shown, agreement_input=AGREEMENT_INPUT,
                      password_min_length=rt.settings.password_min_length,
                      password_min_classes=rt.settings.password_min_classes)


@router.get("/register")
def register_form(request: Request) -> Response:
    return register_page(request, FormState())


@router.post("/register")
def register(request: Request, form: CheckedForm) -> Response:
    ticked = bool(form.get("accept"))
    values = {"phone": form.get("phone", ""), "nickname": form.get("nickname", ""),
              "accept": "on" if ticked else ""}
    # The versions the page showed count as accepted only when the box is ticked (COMPLIANCE A1).
    accepted = {key.removeprefix(AGREEMENT_INPUT): version for key, version in form.items()
                if key.startswith(AGREEMENT_INPUT)} if ticked else {}
    rt, origin = web.runtime(request), web.web_origin(request)
    try:
        form.check()
        rt.limiter.hit(f"{rt.settings.register_per_ip_hour}/hour", "register-ip", origin.ip or "-")
        done = service.register(rt, origin, phone=values["phone"], code=form.get("code", ""),
                                password=form.get("password", ""), nickname=values["nickname"],
                                accepted=accepted, device=http.device_id(request))
    except errors.DomainError as exc:
        return register_page(request, web.failed_form(request, exc, values, REGISTER_FIELDS))
    response = web.render(request, "registered.html", page_path="/account", recovery_key=done.recovery_key,
                          viewer={"nickname": done.account["nickname"]},
                          held_nickname=done.account["pending_review"].get("nickname"))
    guards.start_browser_session(request, response, done.session)
    http.keep_device(request, response)
    return response


# The pages that hold a "send code" button, by code purpose (app.py gathers them for /send-code).
CODE_FORMS = {"register": register_page}
