"""Pages: forgot password, change password, recovery key, freeze and unfreeze (API.md "Credentials")."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from passport import errors, guards
from passport.credentials import codes, service, totp
from passport.credentials import phone as phone_change
from passport.sessions import service as sessions
from passport.web import html as web
from passport.web import http
from passport.web.html import CheckedForm, FormState

router = APIRouter(include_in_schema=False)

RESET_FIELDS = {"sms": ("phone", "code", "new_password"), "key": ("phone", "recovery_key", "new_password")}
FREEZE_FIELDS = ("phone", "code")
UNFREEZE_FIELDS = ("phone", "code", "recovery_key", "new_password")
CHANGE_FIELDS = ("current_password", "new_password")
KEY_FIELDS = ("password",)
CHANGED_NOTICE = "Your password has been changed. Every other device has been logged out."


def _password_rules(request: Request) -> dict:
    settings = web.runtime(request).settings
    return {"password_min_length": settings.password_min_length,
            "password_min_classes": settings.password_min_classes}


def _done(request: Request, outcome: str) -> Response:
    """The result page after a reset, freeze or unfreeze."""
    ended = _session_ended(request)
    response = web.render(request, "credentials_done.html", page_path="/login", outcome=outcome)
    if ended:
        web.end_browser_session(request, response)
    return response


def _session_ended(request: Request) -> bool:
    """Whether the session this browser came with has just ended (every session of the account ends on
    a reset or a freeze); if so, the page is drawn for a visitor and the cookie is to be dropped."""
    token = request.cookies.get(http.SESSION_COOKIE)
    if not token or sessions.lookup(web.runtime(request), token)[0] is not None:
        return False
    request.state.page_principal = None  # looked up before the change; it no longer holds
    return True


# --- forgot password (public) ----------------------------------------------------------------------

def forgot_page(request: Request, state: FormState, method: str = "sms") -> Response:
    return web.render(request, "credentials_forgot.html", state.status, page_path="/forgot-password", form=state,
                      method=method, **_password_rules(request))


def forgot_by_sms_page(request: Request, state: FormState) -> Response:
    return forgot_page(request, state, "sms")



@router.get("/forgot-password")
def forgot_form(request: Request, method: str = "sms") -> Response:
    return forgot_page(request, FormState(), "key" if method == "key" else "sms")


@router.post("/forgot-password")
def forgot(request: Request, form: CheckedForm) -> Response:
    method = "key" if form.get("method") == "key" else "sms"
    values = {"phone": form.get("phone", "")}
    try:
        form.check()
        service.reset_password(web.runtime(request), web.web_origin(request), phone=values["phone"],
                               new_password=form.get("new_password", ""),
                               code=form.get("code", "") if method == "sms" else None,
                               recovery_key=form.get("recovery_key", "") if method == "key" else None)
    except errors.DomainError as exc:
        return forgot_page(request, web.failed_form(request, exc, values, RESET_FIELDS[method]), method)
    return _done(request, "reset")


# --- my account was stolen: freeze, unfreeze (public) ----------------------------------------------

def stolen_page(request: Request, state: FormState) -> Response:
    return web.render(request, "credentials_stolen.html", state.status, page_path="/account-stolen", form=state)



@router.get("/account-stolen")
def stolen_form(request: Request) -> Response:
    return stolen_page(request, FormState())


@router.post("/account-stolen")
def stolen(request: Request, form: CheckedForm) -> Response:
    values = {"phone": form.get("phone", "")}
    try:
        form.check()
        service.freeze_by_code(web.runtime(request), web.web_origin(request), phone=values["phone"],
                               code=form.get("code", ""))
    except errors.DomainError as exc:
        return stolen_page(request, web.failed_form(request, exc, values, FREEZE_FIELDS))
    return _done(request, "frozen")


def unfreeze_page(request: Request, state: FormState) -> Response:
    return web.render(request, "credentials_unfreeze.html", state.status, page_path="/unfreeze", form=state,
                      **_password_rules(request))



@router.get("/unfreeze")
def unfreeze_form(request: Request) -> Response:
    return unfreeze_page(request, FormState())


@router.post("/unfreeze")
def unfreeze(request: Request, form: CheckedForm) -> Response:
    values = {"phone": form.get("phone", "")}
    try:
        form.check()
        service.unfreeze(web.runtime(request), web.web_origin(request), phone=values["phone"],
                         code=form.get("code", ""), recovery_key=form.get("recovery_key", ""),
                         new_password=form.get("new_password", ""))
    except errors.DomainError as exc:
        return unfreeze_page(request, web.failed_form(request, exc, values, UNFREEZE_FIELDS))
    return _done(request, "unfrozen")


# --- signed in: change password, new recovery key, freeze ------------------------------------------

def password_page(request: Request, state: FormState) -> Response:
    return web.render(request, "credentials_password.html", state.status, page_path="/account/password",
                      form=state, **_password_rules(request))


@router.get("/account/password")
def password_form(request: Request, _principal: guards.PageUser, done: str | None = None) -> Response:
    notice = web.translate(request, CHANGED_NOTICE) if done == "1" else None
    return password_page(request, FormState(notice=notice))


@router.post("/account/password")
def change_password(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    try:
        form.check()
        issued = service.change_password(web.runtime(request), web.web_origin(request), principal,
                                         current_password=form.get("current_password", ""),
                                         new_password=form.get("new_password", ""))
    except errors.DomainError as exc:
        return password_page(request, web.failed_form(request, exc, {}, CHANGE_FIELDS))
    # Every session ended, this browser's too: it stays signed in with the new one.
    response = web.redirect(request, "/account/password?done=1")
    guards.start_browser_session(request, response, issued)
    return response


def recovery_key_page(request: Request, state: FormState, recovery_key: str | None = None) -> Response:
    return web.render(request, "credentials_recovery_key.html", state.status, page_path="/account/recovery-key",
                      form=state, recovery_key=recovery_key)


@router.get("/account/recovery-key")
def recovery_key_form(request: Request, _principal: guards.PageUser) -> Response:
    return recovery_key_page(request, FormState())


@router.post("/account/recovery-key")
def regenerate_recovery_key(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    try:
        form.check()
        key = service.regenerate_recovery_key(web.runtime(request), web.web_origin(request), principal,
                                              password=form.get("password", ""))
    except errors.DomainError as exc:
        return recovery_key_page(request, web.failed_form(request, exc, {}, KEY_FIELDS))
    return recovery_key_page(request, FormState(), key)


def freeze_page(request: Request, state: FormState) -> Response:
    return web.render(request, "credentials_freeze.html", state.status, page_path="/account/freeze", form=state)


@router.get("/account/freeze")
def freeze_form(request: Request, _principal: guards.PageUser) -> Response:
    return freeze_page(request, FormState())


@router.post("/account/freeze")
def freeze(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    try:
        form.check()
        service.freeze_own(web.runtime(request), web.web_origin(request), principal)
    except errors.DomainError as exc:
        if exc.code != "account_not_freezable":
            return freeze_page(request, web.failed_form(request, exc, {}, ()))
        # Not frozen, but every session ended: this one too.
        _session_ended(request)
        response = freeze_page(request, web.failed_form(request, exc, {}, ()))
        web.end_browser_session(request, response)
        return response
    return _done(request, "frozen")


PHONE_FIELDS = {"sms": ("phone", "code", "old_code", "password"), "key": ("phone", "code", "recovery_key", "password")}
PHONE_NOTICES = {"phone": "Your mobile number has been changed. Every other device has been logged out.",
                 "held": "Your request is waiting. Your current number, email and messages have been told.",
                 "cancelled": "The change of your mobile number has been cancelled."}
NOT_ME_NOT_FROZEN = "The change has been cancelled and every device has been logged out."


def phone_page(request: Request, principal: sessions.Principal, state: FormState, method: str = "sms", *,
               old_code_sent: str | None = None) -> Response:
    rt = web.runtime(request)
    return web.render(request, "export_phone.html", state.status, page_path="/account/phone", form=state,
                      phone=guards.masked_phone(request, principal), method=method, old_code_sent=old_code_sent,
                      held=phone_change.pending(rt, principal.account_id),
                      hold_days=rt.settings.phone_change_hold_days)


def phone_code_page(request: Request, state: FormState) -> Response:
    """The phone page again after the no-JavaScript "send code" button (whose handler is public)."""
    method = "key" if request.query_params.get("method") == "key" else "sms"
    return phone_page(request, guards.page_user(request), state, method)


@router.get("/account/phone")
def phone_form(request: Request, principal: guards.PageUser, method: str = "sms", done: str | None = None) -> Response:
    notice = PHONE_NOTICES.get(done or "")
    return phone_page(request, principal, FormState(notice=web.translate(request, notice) if notice else None),
                      "key" if method == "key" else "sms")


@router.post("/account/phone/old-code")
def phone_old_code(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    """The "send code" button of the current number: the code goes to the account's own phone."""
    values = {"phone": form.get("phone", "")}
    try:
        form.check()
        sent = codes.send_own_code(web.runtime(request), web.web_origin(request), principal.account_id,
                                   codes.Purpose.CHANGE_PHONE_OLD.value)
    except errors.DomainError as exc:
        return phone_page(request, principal, web.failed_form(request, exc, values, PHONE_FIELDS["sms"]))
    # Said under the current number's code, not the new one's.
    return phone_page(request, principal, FormState(values=values),
                      old_code_sent=web.code_sent_form(request, sent).notice)


@router.post("/account/phone")
def change_phone(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    values = {"phone": form.get("phone", "")}
    try:
        form.check()
        issued, _ = phone_change.change_phone(web.runtime(request), web.web_origin(request), principal,
                                              phone=values["phone"], code=form.get("code", ""),
                                              old_code=form.get("old_code", ""), password=form.get("password", ""))
    except errors.DomainError as exc:
        return phone_page(request, principal, web.failed_form(request, exc, values, PHONE_FIELDS["sms"]))
    # Every other session ended, and this browser's was rotated: it stays signed in with the new one.
    response = web.redirect(request, "/account/phone?done=phone")
    guards.start_browser_session(request, response, issued)
    return response


@router.post("/account/phone/hold")
def hold_phone_change(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    values = {"phone": form.get("phone", "")}
    try:
        form.check()
        phone_change.request_held_change(web.runtime(request), web.web_origin(request), principal,
                                         phone=values["phone"], code=form.get("code", ""),
                                         recovery_key=form.get("recovery_key", ""), password=form.get("password", ""))
    except errors.DomainError as exc:
        return phone_page(request, principal, web.failed_form(request, exc, values, PHONE_FIELDS["key"]), "key")
    return web.redirect(request, "/account/phone?done=held")


@router.post("/account/phone/cancel")
def cancel_phone_change(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    try:
        form.check()
        phone_change.cancel_by_owner(web.runtime(request), web.web_origin(request), principal.account_id)
    except errors.DomainError as exc:
        return phone_page(request, principal, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, "/account/phone?done=cancelled")


# --- "this was not me" (public: the link in the notice of a held phone change) ----------------------

def not_me_page(request: Request, token: str, state: FormState, live: bool | None = None) -> Response:
    live = phone_change.link_is_live(web.runtime(request), token) if live is None else live
    return web.render(request, "credentials_not_me.html", state.status, page_path="/phone-change/not-me",
                      form=state, token=token, live=live)


@router.get("/phone-change/not-me")
def not_me_form(request: Request, token: str = "") -> Response:
    """Only a page with one button: a link scanner that opens the link changes nothing."""
    return not_me_page(request, token[:128], FormState())


@router.post("/phone-change/not-me")
def not_me(request: Request, form: CheckedForm) -> Response:
    token = form.get("token", "")[:128]
    try:
        form.check()
        frozen = phone_change.not_me(web.runtime(request), web.web_origin(request), token)
    except errors.DomainError as exc:
        return not_me_page(request, token, web.failed_form(request, exc, {}, ()))
    if frozen:
        return _done(request, "frozen")
    # Cancelled, but the platform holds the account in another status: every session ended all the same.
    _session_ended(request)
    response = not_me_page(request, token, FormState(notice=web.translate(request, NOT_ME_NOT_FROZEN)), live=False)
    web.end_browser_session(request, response)
    return response


# The pages that hold a "send code" button, by code purpose (app.py gathers them for /send-code).
CODE_FORMS = {codes.Purpose.RESET_PASSWORD.value: forgot_by_sms_page, codes.Purpose.FREEZE.value: stolen_page,
              codes.Purpose.UNFREEZE.value: unfreeze_page, codes.Purpose.CHANGE_PHONE.value: phone_code_page}


PAGE = "/account/totp"
DONE_NOTICES = {"enabled": "Two-step verification is on. Logins now ask for a code from your app.",
                "disabled": "Two-step verification is off."}


def grouped(secret: str) -> str:
    """``JBSW Y3DP …``: easier to type into an app by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def totp_page(request: Request, account_id: str, state: FormState, active: str | None = None) -> Response:
    """``active`` names the form (confirm, disable, recovery) that ``state`` belongs to."""
    rt = web.runtime(request)
    status = totp.status(rt, account_id)
    pending = totp.pending_enrollment(rt, account_id) if status["pending"] else None
    setup = None
    if pending:
        setup = {"qr": web.qr_image(pending["otpauth_uri"]), "secret": grouped(pending["secret"]),
                 "uri": pending["otpauth_uri"]}
    return web.render(request, "totp.html", state.status, page_path=PAGE, form=state, active=active,
                      blank=FormState(), totp=status, setup=setup)


@router.get(PAGE)
def totp_settings(request: Request, principal: guards.SteppedUpPage(), done: str | None = None) -> Response:
    notice = DONE_NOTICES.get(done or "")
    return totp_page(request, principal.account_id,
                     FormState(notice=web.translate(request, notice) if notice else None))


@router.post(f"{PAGE}/enroll")
def enroll(request: Request, principal: guards.SteppedUpPage(PAGE), form: CheckedForm) -> Response:
    try:
        form.check()
        totp.enroll(web.runtime(request), web.web_origin(request), principal.account_id)
    except errors.DomainError as exc:
        return totp_page(request, principal.account_id, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, PAGE)


@router.post(f"{PAGE}/confirm")
def confirm(request: Request, principal: guards.SteppedUpPage(PAGE), form: CheckedForm) -> Response:
    try:
        form.check()
        totp.confirm(web.runtime(request), web.web_origin(request), principal.account_id, form.get("code", ""))
    except errors.DomainError as exc:
        return totp_page(request, principal.account_id, web.failed_form(request, exc, {}, ("code",)), "confirm")
    return web.redirect(request, f"{PAGE}?done=enabled")


@router.post(f"{PAGE}/disable")
def disable(request: Request, principal: guards.SteppedUpPage(PAGE), form: CheckedForm) -> Response:
    by_key = "recovery_key" in form
    active = "recovery" if by_key else "disable"
    try:
        form.check()
        if by_key:
            totp.disable(web.runtime(request), web.web_origin(request), principal.account_id,
                         recovery_key=form.get("recovery_key", ""))
        else:
            totp.disable(web.runtime(request), web.web_origin(request), principal.account_id,
                         code=form.get("code", ""))
    except errors.DomainError as exc:
        state = web.failed_form(request, exc, {}, ("recovery_key",) if by_key else ("code",))
        return totp_page(request, principal.account_id, state, active)
    return web.redirect(request, f"{PAGE}?done=disabled")

