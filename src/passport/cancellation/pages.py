"""Cancellation, export and phone-number pages (issue 8)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response

from passport import errors, guards
from passport.cancellation import service
from passport.credentials import codes
from passport.credentials.codes import Purpose
from passport.sessions import service as sessions
from passport.web import html as web
from passport.web.html import CheckedForm, FormState

router = APIRouter(include_in_schema=False)

CANCEL_FIELDS = ("code", "password")
EXPORT_FIELDS = ("code",)
NOTICES = {"withdrawn": "Your cancellation request has been withdrawn. Your account works as before."}


def _left(seconds: int) -> dict[str, int]:
    days, rest = divmod(max(0, seconds), 86400)
    return {"days": days, "hours": rest // 3600, "minutes": rest % 3600 // 60}


def _send_own_code(request: Request, form, principal: sessions.Principal, purpose: Purpose, page,
                   fields: tuple[str, ...]) -> Response:
    """The "send code" button of a page that re-authenticates by SMS: the code goes to the account's own phone."""
    try:
        form.check()
        sent = codes.send_own_code(web.runtime(request), web.web_origin(request), principal.account_id,
                                     purpose.value)
    except errors.DomainError as exc:
        return page(request, principal, web.failed_form(request, exc, {}, fields))
    return page(request, principal, web.code_sent_form(request, sent))


# --- cancellation ----------------------------------------------------------------------------------

def cancellation_page(request: Request, principal: sessions.Principal, state: FormState) -> Response:
    rt = web.runtime(request)
    pending = service.pending_of(rt, principal.account_id)
    return web.render(request, "cancellation.html", state.status, page_path="/account/cancellation", form=state,
                      pending=pending, left=_left(pending["seconds_left"]) if pending else None,
                      blockers=[] if pending else service.blockers_of(rt, principal.account_id),
                      phone=guards.masked_phone(request, principal), account_status=principal.status,
                      cooling_off_days=rt.settings.cancellation_cooling_off_days,
                      audit_days=rt.settings.audit_retention_days)


@router.get("/account/cancellation")
def cancellation_form(request: Request, principal: guards.PageUser, done: str | None = None) -> Response:
    notice = NOTICES.get(done or "")
    return cancellation_page(request, principal, FormState(notice=web.translate(request, notice) if notice else None))


@router.post("/account/cancellation/code")
def cancellation_code(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    return _send_own_code(request, form, principal, Purpose.CANCEL_ACCOUNT, cancellation_page, CANCEL_FIELDS)


@router.post("/account/cancellation")
def request_cancellation(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    try:
        form.check()
        service.request_cancellation(web.runtime(request), web.web_origin(request), principal.account_id,
                                     password=form.get("password", ""), code=form.get("code", ""))
    except errors.DomainError as exc:
        return cancellation_page(request, principal, web.failed_form(request, exc, {}, CANCEL_FIELDS))
    return web.redirect(request, "/account/cancellation")


@router.post("/account/cancellation/withdraw")
def withdraw(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    try:
        form.check()
        service.withdraw(web.runtime(request), web.web_origin(request), principal.account_id)
    except errors.DomainError as exc:
        return cancellation_page(request, principal, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, "/account/cancellation?done=withdrawn")


# --- export ----------------------------------------------------------------------------------------

def export_page(request: Request, principal: sessions.Principal, state: FormState) -> Response:
    return web.render(request, "export.html", state.status, page_path="/account/export", form=state,
                      phone=guards.masked_phone(request, principal))


@router.get("/account/export")
def export_form(request: Request, principal: guards.SteppedUpPage()) -> Response:
    return export_page(request, principal, FormState())


@router.post("/account/export/code")
def export_code(request: Request, principal: guards.SteppedUpPage("/account/export"), form: CheckedForm) -> Response:
    return _send_own_code(request, form, principal, Purpose.EXPORT, export_page, EXPORT_FIELDS)


@router.post("/account/export")
def export(request: Request, principal: guards.SteppedUpPage("/account/export"), form: CheckedForm) -> Response:
    try:
        form.check()
        archive = service.export_archive(web.runtime(request), web.web_origin(request), principal.account_id,
                                         code=form.get("code", ""))
    except errors.DomainError as exc:
        return export_page(request, principal, web.failed_form(request, exc, {}, EXPORT_FIELDS))
    day = archive["generated_at"][:10]
    return Response(json.dumps(archive, ensure_ascii=False, indent=1), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="passport-export-{day}.json"',
                             "Cache-Control": "no-store"})


# --- correction: the mobile number -----------------------------------------------------------------
