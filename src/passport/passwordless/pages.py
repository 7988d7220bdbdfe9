"""Pages: approve a QR login from a signed-in browser (``/qr/{code}``), and the passkeys of the
account (``/account/passkeys``). The login page's QR tab and passkey buttons are in
``sessions/pages.py``'s template; they call the JSON API (web/static/passwordless.js)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from passport import errors, guards
from passport.credentials import stepup
from passport.passwordless import passkeys, qr
from passport.web import html as web
from passport.web.html import CheckedForm, FormState

router = APIRouter(include_in_schema=False)


def qr_page(request: Request, code: str, details: dict | None, state: FormState,
            decided: str | None = None) -> Response:
    return web.render(request, "qr_approve.html", state.status, page_path=f"/qr/{quote(code)}", form=state,
                      code=code, details=details, decided=decided)


@router.get("/qr/{code}")
def qr_scanned(code: str, request: Request, principal: guards.PageUser) -> Response:
    """What the QR code on another browser's login page opens: where the request comes from, and
    the approve and reject buttons."""
    try:
        details = qr.scan(web.runtime(request), web.web_origin(request), principal, code)
    except errors.DomainError as exc:
        return qr_page(request, code, None, web.failed_form(request, exc, {}, ()))
    return qr_page(request, code, details, FormState())


@router.post("/qr/{code}/approve")
def qr_approve(code: str, request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    return _decide(request, principal, form, code, approve=True)


@router.post("/qr/{code}/reject")
def qr_reject(code: str, request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    return _decide(request, principal, form, code, approve=False)


def _decide(request: Request, principal, form: CheckedForm, code: str, *, approve: bool) -> Response:
    rt, origin = web.runtime(request), web.web_origin(request)
    try:
        form.check()
        details = qr.decide(rt, origin, principal, code, approve=approve)
    except errors.DomainError as exc:
        if exc.code == "step_up_required":  # two-step verification on: confirm on this device first
            return web.redirect(request, f"{guards.STEP_UP_PAGE}?next={quote(f'/qr/{code}', safe='/')}")
        return qr_page(request, code, None, web.failed_form(request, exc, {}, ()))
    return qr_page(request, code, details, FormState(), decided="approved" if approve else "rejected")


# --- passkeys of the account -------------------------------------------------------------------------

PASSKEYS_PAGE = "/account/passkeys"
DONE = {"added": "Passkey added.", "removed": "Passkey removed.", "renamed": "Passkey renamed."}


def passkeys_page(request: Request, principal, state: FormState) -> Response:
    rt = web.runtime(request)
    return web.render(request, "account_passkeys.html", state.status, page_path=PASSKEYS_PAGE, form=state,
                      passkeys=passkeys.list_passkeys(rt, principal.account_id),
                      stepped_up=stepup.is_stepped_up(rt, principal))


@router.get(PASSKEYS_PAGE)
def passkeys_list(request: Request, principal: guards.PageUser, done: str | None = None) -> Response:
    state = FormState(notice=web.translate(request, DONE[done]) if done in DONE else None)
    return passkeys_page(request, principal, state)


@router.post(PASSKEYS_PAGE + "/{passkey_id}/rename")
def passkey_rename(passkey_id: str, request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    try:
        form.check()
        passkeys.rename(web.runtime(request), web.web_origin(request), principal, passkey_id, form.get("name", ""))
    except errors.DomainError as exc:
        return passkeys_page(request, principal, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, f"{PASSKEYS_PAGE}?done=renamed")


@router.post(PASSKEYS_PAGE + "/{passkey_id}/remove")
def passkey_remove(passkey_id: str, request: Request, principal: guards.SteppedUpPage(PASSKEYS_PAGE),
                   form: CheckedForm) -> Response:
    try:
        form.check()
        passkeys.remove(web.runtime(request), web.web_origin(request), principal, passkey_id)
    except errors.DomainError as exc:
        return passkeys_page(request, principal, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, f"{PASSKEYS_PAGE}?done=removed")
