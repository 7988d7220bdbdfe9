"""Pages: the TOTP settings (QR code, confirm, disable)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from passport import errors, guards
from passport.credentials import totp
from passport.web import pages as web
from passport.web.pages import FormData, FormState

router = APIRouter(include_in_schema=False)

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


def _signed_in(request: Request):
    principal = guards.current_principal(request)
    if principal is None:
        return None, web.to_login(request)
    return principal, None


@router.get(PAGE)
def totp_settings(request: Request, done: str | None = None) -> Response:
    principal, away = _signed_in(request)
    if principal is None:
        return away
    notice = DONE_NOTICES.get(done or "")
    return totp_page(request, principal.account_id,
                     FormState(notice=web.translate(request, notice) if notice else None))


@router.post(f"{PAGE}/enroll")
def enroll(request: Request, form: FormData) -> Response:
    principal, away = _signed_in(request)
    if principal is None:
        return away
    if not web.csrf_passed(request, form):
        return totp_page(request, principal.account_id, web.expired_form(request, {}))
    try:
        totp.enroll(web.runtime(request), web.web_origin(request), principal.account_id)
    except errors.DomainError as exc:
        return totp_page(request, principal.account_id, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, PAGE)


@router.post(f"{PAGE}/confirm")
def confirm(request: Request, form: FormData) -> Response:
    principal, away = _signed_in(request)
    if principal is None:
        return away
    if not web.csrf_passed(request, form):
        return totp_page(request, principal.account_id, web.expired_form(request, {}), "confirm")
    try:
        totp.confirm(web.runtime(request), web.web_origin(request), principal.account_id, form.get("code", ""))
    except errors.DomainError as exc:
        return totp_page(request, principal.account_id, web.failed_form(request, exc, {}, ("code",)), "confirm")
    return web.redirect(request, f"{PAGE}?done=enabled")


@router.post(f"{PAGE}/disable")
def disable(request: Request, form: FormData) -> Response:
    principal, away = _signed_in(request)
    if principal is None:
        return away
    by_key = "recovery_key" in form
    active = "recovery" if by_key else "disable"
    if not web.csrf_passed(request, form):
        return totp_page(request, principal.account_id, web.expired_form(request, {}), active)
    try:
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

