"""Pages: registration (API.md "Accounts")."""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidTag
from fastapi import APIRouter, Request
from fastapi.responses import Response

from passport import errors, guards
from passport.accounts import service as accounts
from passport.agreements import service as agreements
from passport.registration import service
from passport.security.crypto import CryptoError, Field
from passport.web import html as web
from passport.web import http
from passport.web.html import ButtonForm, CheckedForm, FormState

router = APIRouter(include_in_schema=False)


REGISTER_FIELDS = ("phone", "code", "nickname", "password", "accept")


AGREEMENT_INPUT = "agreement."  # hidden inputs agreement.<kind> = <version shown on the page>

# The new account's recovery key travels from the registration POST to its own GET page (issue 20: a
# reload or the back button never re-posts the form) in a cookie sealed with the field key and bound
# to the account, readable only by the page under /register/done, for ten minutes at most.
WELCOME_COOKIE = "passport_welcome"
WELCOME_PATH = "/register/done"
WELCOME_SECONDS = 600
WELCOME_KEY = Field("cookie", WELCOME_COOKIE, "registration.recovery_key")


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
    if guards.current_principal(request, gate_applies=False) is not None:
        return web.redirect(request, "/account")  # signed in already
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
    response = web.redirect(request, WELCOME_PATH)
    sealed = rt.keys.cipher.encrypt(done.recovery_key, WELCOME_KEY, done.account["id"])
    response.set_cookie(WELCOME_COOKIE, base64.urlsafe_b64encode(sealed).decode("ascii"), max_age=WELCOME_SECONDS,
                        path=WELCOME_PATH, samesite="strict", secure=not rt.settings.is_dev, httponly=True)
    guards.start_browser_session(request, response, done.session)
    http.keep_device(request, response)
    return response


def _welcome_key(request: Request, account_id: str) -> str | None:
    raw = request.cookies.get(WELCOME_COOKIE)
    if not raw:
        return None
    try:
        return web.runtime(request).keys.cipher.decrypt(base64.urlsafe_b64decode(raw.encode("ascii")), WELCOME_KEY,
                                                        account_id)
    except (CryptoError, InvalidTag, ValueError, binascii.Error):  # another account's, tampered with, a retired key
        return None


def _forget_welcome(request: Request, response: Response) -> Response:
    response.delete_cookie(WELCOME_COOKIE, path=WELCOME_PATH, samesite="strict",
                           secure=not web.runtime(request).settings.is_dev, httponly=True)
    return response


@router.get(WELCOME_PATH)
def registered(request: Request, principal: guards.PageUser) -> Response:
    """The new account's recovery key, shown until the user says it is saved (or ten minutes pass)."""
    key = _welcome_key(request, principal.account_id)
    if key is None:
        return web.redirect(request, "/account")
    rt = web.runtime(request)
    with rt.db.read() as db:
        account = accounts.get(db, principal.account_id)
        nickname, held = account.nickname, account.nickname_pending
    return web.render(request, "registered.html", recovery_key=key, held_nickname=held,
                      viewer={"nickname": nickname})


@router.post(WELCOME_PATH)
def registered_saved(request: Request, principal: guards.PageUser, _form: ButtonForm) -> Response:
    return _forget_welcome(request, web.redirect(request, "/account"))


# The pages that hold a "send code" button, by code purpose (app.py gathers them for /send-code).
CODE_FORMS = {"register": register_page}
