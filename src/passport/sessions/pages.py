"""Pages: log in (password or SMS code), log out, and the no-JS "send code" button."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from passport import errors, guards
from passport.accounts import service as accounts
from passport.clock import china_time
from passport.credentials import codes, stepup
from passport.passwordless import passkeys
from passport.sessions import service
from passport.web import html as web
from passport.web import http
from passport.web.html import ButtonForm, CheckedForm, FormState

router = APIRouter(include_in_schema=False)

LOGIN_FIELDS = {"password": ("login", "password"), "sms": ("phone", "code")}
# Failed logins from this browser (a cookie, nothing stored): after a few, the page says what to do
# instead. It depends only on this browser's own tries, so it tells nothing about the account.
TRIES_COOKIE = "passport_login_tries"
TRIES_BEFORE_HINT = 3
KEPT_ON_SEND = ("phone", "nickname", "accept", "login", "next")  # what the form keeps across a code send


def login_page(request: Request, state: FormState, method: str = "password", next_path: str = "",
               tries: int = 0) -> Response:
    return web.render(request, "login.html", state.status, page_path="/login", form=state, method=method,
                      next_path=next_path, hint=tries >= TRIES_BEFORE_HINT)


def mfa_page(request: Request, state: FormState, mfa_token: str, next_path: str = "") -> Response:
    """The second login step: the 6-digit code (or the recovery key), carrying the mfa_token."""
    return web.render(request, "login.html", state.status, page_path="/login", form=state, method="password",
                      mfa_token=mfa_token, next_path=next_path)


def next_path(value: str | None) -> str:
    """Where to go after logging in: a path on this site (never another host), else "" (the account)."""
    path = guards.local_path(value, "")
    return "" if path.startswith(("/login", "/logout", "/register")) else path


def _tries(request: Request) -> int:
    raw = request.cookies.get(TRIES_COOKIE, "")
    return min(int(raw), 99) if raw.isascii() and raw.isdigit() and len(raw) < 4 else 0


def _count_try(request: Request, response: Response, tries: int) -> Response:
    response.set_cookie(TRIES_COOKIE, str(tries), max_age=3600, path="/login", samesite="lax",
                        secure=not web.runtime(request).settings.is_dev, httponly=True)
    return response


def _signed_in(request: Request, issued, next_value: str) -> Response:
    response = web.redirect(request, next_value or "/account")
    guards.start_browser_session(request, response, issued)
    http.keep_device(request, response)
    response.delete_cookie(TRIES_COOKIE, path="/login", samesite="lax",
                           secure=not web.runtime(request).settings.is_dev, httponly=True)
    return response


def refused_form(request: Request, exc: errors.DomainError, values: dict[str, str], fields) -> FormState:
    """A failed login's form; a suspended or terminated user is told the reason and the end time
    (COMPLIANCE I3: every action is told to the user)."""
    state = web.failed_form(request, exc, values, fields)
    if exc.code in service.REFUSED_STATUSES.values() and exc.extra.get("reason"):
        state.alert = web.sentences(request, [
            web.translate(request, exc.title),
            web.translate(request, "Reason: %(reason)s", reason=exc.extra["reason"]),
            web.translate(request, "Until %(time)s (Beijing time).", time=china_time(exc.extra["until"]))
            if exc.extra.get("until") else None])
    return state


def sms_login_page(request: Request, state: FormState) -> Response:
    return login_page(request, state, "sms")



@router.get("/login")
def login_form(request: Request, method: str = "password", next: str | None = None,  # noqa: A002
               ended: str | None = None, login_hint: str | None = None) -> Response:
    """``next``: where to go after the login (this site only: an app's authorization request, a page
    that needed the login); ``login_hint``: the login to fill in (single sign-on)."""
    if guards.current_principal(request, gate_applies=False) is not None:
        return web.redirect(request, next_path(next) or "/account")  # signed in already
    method = method if method in ("sms", "qr") else "password"
    state = FormState(values={"login": login_hint[:254]} if login_hint and method == "password" else {})
    if ended:  # sent here by a page whose session stopped with its account's status: say why, once
        refused = service.ended_by_status(web.runtime(request), request.cookies.get(http.SESSION_COOKIE))
        if refused is not None:
            state = refused_form(request, refused, {}, ())
    response = login_page(request, state, method, next_path(next), _tries(request))
    if ended:
        web.end_browser_session(request, response)
    return response


@router.post("/login")
def login(request: Request, form: CheckedForm) -> Response:
    method = "sms" if form.get("method") == "sms" else "password"
    values = {"login": form.get("login", ""), "phone": form.get("phone", "")}
    going = next_path(form.get("next"))
    rt, origin = web.runtime(request), web.web_origin(request)
    try:
        form.check()
        if method == "sms":
            issued, _account = service.login_code(rt, origin, phone=values["phone"],
                                                  code=form.get("code", ""), device=http.device_id(request))
        else:
            issued, _account = service.login_password(rt, origin, login=values["login"],
                                                      password=form.get("password", ""),
                                                      device=http.device_id(request))
    except errors.DomainError as exc:
        if exc.code == "mfa_required":
            return mfa_page(request, FormState(), exc.extra["mfa_token"], going)
        state = refused_form(request, exc, values, LOGIN_FIELDS[method])
        if method == "sms" and exc.code == "invalid_credentials":
            # On the code tab the code is what was wrong (or expired): said at the field, the same for
            # every number, registered or not.
            state.alert = None
            state.errors["code"] = web.translate(request, "The code is wrong or has expired. Send a new one.")
        tries = _tries(request) + (1 if exc.code in ("invalid_credentials", "account_locked") else 0)
        return _count_try(request, login_page(request, state, method, going, tries), tries)
    return _signed_in(request, issued, going)


@router.post("/login/mfa")
def login_mfa(request: Request, form: CheckedForm) -> Response:
    token = form.get("mfa_token", "")
    going = next_path(form.get("next"))
    by_key = "recovery_key" in form
    if form.expired:  # before the try: a stale form is this step's, not the 403 of a refused login
        return mfa_page(request, web.failed_form(request, web.csrf_error(), {}, ()), token, going)
    try:
        issued, _account = service.login_mfa(
            web.runtime(request), web.web_origin(request), mfa_token=token,
            code=None if by_key else form.get("totp", ""), recovery_key=form.get("recovery_key") if by_key else None,
            device=http.device_id(request))
    except errors.DomainError as exc:
        if exc.status == 401:
            # A spent, expired or forged token, or an account locked meanwhile: back to the start.
            state = FormState(alert=web.translate(request, "This verification step has ended. Please log in again."),
                              status=401)
            return login_page(request, state, next_path=going)
        if exc.status == 403:
            return login_page(request, web.failed_form(request, exc, {}, ()), next_path=going)
        state = web.failed_form(request, exc, {}, ("recovery_key",) if by_key else ("code",))
        if "code" in state.errors:
            state.errors["totp"] = state.errors.pop("code")
        return mfa_page(request, state, token, going)
    return _signed_in(request, issued, going)


@router.post("/logout")
def logout(request: Request, _form: ButtonForm) -> Response:
    principal = guards.current_principal(request)
    if principal is not None:
        try:
            service.revoke(web.runtime(request), web.web_origin(request), principal, principal.session_id)
        except errors.DomainError:
            pass  # already ended
    return web.to_login(request)


@router.post("/send-code")
def send_code(request: Request, form: CheckedForm) -> Response:
    """The "send code" button without JavaScript: send, then show the same form again."""
    purpose = form.get("purpose", "")
    page = web.code_form(request, purpose)
    if page is None:
        return web.error_page(request, errors.not_found("page"))
    values = {key: form[key] for key in KEPT_ON_SEND if key in form}
    try:
        form.check()
        sent = codes.send_code(web.runtime(request), web.web_origin(request), channel="sms",
                                     to=values.get("phone", ""), purpose=purpose,
                                     account_exists=accounts.account_exists)
    except errors.DomainError as exc:
        return page(request, web.failed_form(request, exc, values, ("phone", "code")))
    return page(request, web.code_sent_form(request, sent, values))


# --- step-up: "confirm it is you" before a sensitive change ----------------------------------------

def step_up_page(request: Request, principal: service.Principal, state: FormState, next_url: str,
                 by: str = "password") -> Response:
    """``by`` names the form (password, totp) that ``state`` belongs to."""
    rt = web.runtime(request)
    return web.render(request, "step_up.html", state.status, page_path=guards.STEP_UP_PAGE, form=state,
                      blank=FormState(), by=by, next_url=next_url, methods=stepup.methods(principal.account),
                      minutes=rt.settings.step_up_minutes,
                      passkey=passkeys.has_passkeys(rt, principal.account_id))


@router.get(guards.STEP_UP_PAGE)
def step_up_form(request: Request, principal: guards.PageUser, next: str | None = None) -> Response:  # noqa: A002
    return step_up_page(request, principal, FormState(), guards.local_path(next))


@router.post(guards.STEP_UP_PAGE)
def step_up(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    next_url = guards.local_path(form.get("next"))
    by = "totp" if "totp" in form else "password"
    rt = web.runtime(request)
    try:
        form.check()
        issued = stepup.step_up(rt, web.web_origin(request), principal,
                                password=form.get("password", "") if by == "password" else None,
                                code=form.get("totp", "") if by == "totp" else None)
    except errors.DomainError as exc:
        state = web.failed_form(request, exc, {}, ("password", "code"))
        if "code" in state.errors:
            state.errors["totp"] = state.errors.pop("code")
        return step_up_page(request, principal, state, next_url, by)
    # The token was replaced (the old one no longer works): this browser carries on with the new one.
    response = web.redirect(request, next_url)
    web.set_session_cookie(request, response, issued.token, issued.expires_at - rt.clock.now())
    return response


# The pages that hold a "send code" button, by code purpose (app.py gathers them for /send-code).
CODE_FORMS = {"login": sms_login_page}
