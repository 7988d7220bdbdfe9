"""In-site inbox, notice preferences, unsubscribe, announcements and maintenance pages (issue 5), the
admin pages for announcements, maintenance and the outbox, and the maintenance gate (ASGI)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from passport import __version__, errors, guards
from passport.agreements import marketing
from passport.notify import announcements as announcements_service
from passport.notify import board
from passport.notify import inbox as inbox_service
from passport.notify import maintenance as maintenance_service
from passport.notify import outbox as outbox_service
from passport.runtime import Runtime
from passport.sessions import service as sessions
from passport.web import html as web
from passport.web import http
from passport.web.html import ButtonForm, CheckedForm, FormState
from passport.web.i18n import LANGUAGES

router = APIRouter(include_in_schema=False)
log = structlog.get_logger("passport.notify")

ANNOUNCEMENT_FIELDS = ("title", "body", "audience", "starts_at", "ends_at")
MAINTENANCE_FIELDS = ("starts_at", "ends_at", "message")
DONE = {"read_all": "All messages are marked as read.", "deleted": "The message was deleted.",
        "saved": "Your notification settings are saved.", "published": "The announcement is published.",
        "ended": "The announcement has ended.", "scheduled": "The maintenance window is scheduled.",
        "cancelled": "The maintenance window is cancelled.", "retried": "Failed notices are queued again."}


def _done(request: Request, done: str | None) -> str | None:
    return web.translate(request, DONE[done]) if done in DONE else None




# The announcement and maintenance forms, read with the service's own limits (``CheckedForm`` caps every
# field at ``FIELD_CAP``, shorter than a body): a longer text is refused, never cut.
AnnouncementStaff = guards.StaffPage("announcements.manage")
MaintenanceStaff = guards.StaffPage("maintenance.manage")

LongForm = Annotated[web.Form, Depends(web.form_reader(announcements_service.BODY_MAX + 1))]


def _kind(principal: sessions.Principal | None) -> str | None:
    return getattr(principal.account, "kind", None) if principal and principal.account is not None else None


# --- inbox -----------------------------------------------------------------------------------------

def inbox_page(request: Request, principal: sessions.Principal, state: FormState, page: int = 1) -> Response:
    listing = inbox_service.list_messages(web.runtime(request), principal.account_id, language=http.language(request),
                                    page=page)
    return web.render(request, "notices_inbox.html", state.status, page_path="/messages", form=state,
                      listing=listing)


@router.get("/messages")
def inbox(request: Request, principal: guards.PageUser, page: int = 1, done: str | None = None) -> Response:
    return inbox_page(request, principal, FormState(notice=_done(request, done)), max(1, min(page, 10_000)))


@router.get("/messages/{message_id}")
def message(message_id: str, request: Request, principal: guards.PageUser) -> Response:
    """Shows a message; a GET changes nothing (a link from another site cannot mark a security notice
    read): the page's "Mark as read" button POSTs, with the CSRF token."""
    try:
        shown = inbox_service.get_message(web.runtime(request), principal.account_id, message_id,
                                    language=http.language(request))
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    return web.render(request, "notices_message.html", message=shown)


@router.post("/messages/{message_id}/read")
def read(message_id: str, request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    try:
        form.check()
        inbox_service.mark_read(web.runtime(request), web.web_origin(request), principal.account_id, message_id)
    except errors.DomainError as exc:
        return inbox_page(request, principal, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, f"/messages/{message_id}")


@router.post("/messages/read-all")
def read_all(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    if form.expired:
        return inbox_page(request, principal, web.failed_form(request, web.csrf_error(), {}, ()))
    inbox_service.mark_all_read(web.runtime(request), web.web_origin(request), principal.account_id)
    return web.redirect(request, "/messages?done=read_all")


@router.post("/messages/{message_id}/delete")
def delete(message_id: str, request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    try:
        form.check()
        inbox_service.delete_message(web.runtime(request), web.web_origin(request), principal.account_id, message_id)
    except errors.DomainError as exc:
        return inbox_page(request, principal, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, "/messages?done=deleted")


# --- preferences and unsubscribe -------------------------------------------------------------------

def preferences_page(request: Request, principal: sessions.Principal, state: FormState) -> Response:
    prefs = marketing.preferences(web.runtime(request), principal.account_id)
    return web.render(request, "notices_preferences.html", state.status, page_path="/account/notifications",
                      form=state, prefs=prefs)


@router.get("/account/notifications")
def preferences(request: Request, principal: guards.PageUser, done: str | None = None) -> Response:
    return preferences_page(request, principal, FormState(notice=_done(request, done)))


@router.post("/account/notifications")
def save_preferences(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    if form.expired:
        return preferences_page(request, principal, web.failed_form(request, web.csrf_error(), {}, ()))
    marketing.set_marketing(web.runtime(request), web.web_origin(request), principal.account_id,
                          form.get("marketing") == "on")
    return web.redirect(request, "/account/notifications?done=saved")


@router.get("/notices/unsubscribe")
def unsubscribe_form(request: Request, token: str = "") -> Response:
    """The link in a marketing message: one button, no login (a GET never changes anything, so link
    scanners in mail systems cannot unsubscribe anyone)."""
    try:
        outbox_service.account_of_unsubscribe_token(web.runtime(request), token[:200])
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    return web.render(request, "notices_unsubscribe.html", token=token[:200], done=False,
                      page_path="/notices/unsubscribe?" + urlencode({"token": token[:200]}))


@router.post("/notices/unsubscribe")
def unsubscribe(request: Request, form: ButtonForm) -> Response:
    token = form.get("token", "")
    try:
        marketing.unsubscribe(web.runtime(request), web.web_origin(request), token)
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    return web.render(request, "notices_unsubscribe.html", token="", done=True, page_path="/")


@router.post("/notices/unsubscribe/one-click")
def unsubscribe_one_click(request: Request, token: str = "") -> Response:
    """RFC 8058 one-click unsubscribe: the mail client POSTs ``List-Unsubscribe=One-Click`` to the
    address in the List-Unsubscribe header. The signed token is the authority (no session, no CSRF)."""
    try:
        marketing.unsubscribe(web.runtime(request), web.web_origin(request), token[:200])
    except errors.DomainError as exc:
        return PlainTextResponse(exc.code, status_code=exc.status)
    return PlainTextResponse("unsubscribed")


# --- announcements ---------------------------------------------------------------------------------

@router.get("/announcements")
def announcements(request: Request) -> Response:
    kind = _kind(guards.current_principal(request))
    shown = announcements_service.list_announcements(web.runtime(request), kind=kind)
    return web.render(request, "announcements_list.html", announcements=shown)


@router.get("/announcements/{announcement_id}")
def announcement(announcement_id: str, request: Request) -> Response:
    try:
        shown = announcements_service.get_announcement(web.runtime(request), announcement_id,
                                                       kind=_kind(guards.current_principal(request)))
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    return web.render(request, "announcements_detail.html", announcement=shown, body=web.render_markdown(shown["body"]))


# --- admin: announcements --------------------------------------------------------------------------

def _local_time(raw: str | None, field: str) -> datetime | None:
    return web.local_time(raw, errors.invalid("invalid_time", "Enter a date and time.", field))


def admin_announcements_page(request: Request, staff, state: FormState) -> Response:
    shown = announcements_service.list_announcements(web.runtime(request), everything=True)
    return guards.admin_render(request, "admin_announcements.html", state.status, page_path="/admin/announcements",
                              staff=staff, form=state, announcements=shown)


@router.get("/admin/announcements")
def admin_announcements(request: Request, staff: AnnouncementStaff, done: str | None = None) -> Response:
    return admin_announcements_page(request, staff, FormState(notice=_done(request, done)))


@router.post("/admin/announcements")
def admin_publish(request: Request, staff: AnnouncementStaff, form: LongForm) -> Response:
    values = {name: form.get(name, "") for name in ANNOUNCEMENT_FIELDS}
    try:
        form.check()
        announcements_service.publish_announcement(
            web.runtime(request), web.web_origin(request), title=values["title"], body=values["body"],
            audience=values["audience"] or "all", starts_at=_local_time(values["starts_at"], "starts_at"),
            ends_at=_local_time(values["ends_at"], "ends_at"), staff_id=staff.staff_id)
    except errors.DomainError as exc:
        return admin_announcements_page(request, staff, web.failed_form(request, exc, values, ANNOUNCEMENT_FIELDS))
    return web.redirect(request, "/admin/announcements?done=published")


@router.post("/admin/announcements/{announcement_id}/end")
def admin_end(announcement_id: str, request: Request, staff: AnnouncementStaff, form: CheckedForm) -> Response:
    try:
        form.check()
        announcements_service.end_announcement(web.runtime(request), web.web_origin(request), announcement_id,
                                 staff_id=staff.staff_id)
    except errors.DomainError as exc:
        return admin_announcements_page(request, staff, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, "/admin/announcements?done=ended")


# --- admin: maintenance and outbox -----------------------------------------------------------------

def admin_maintenance_page(request: Request, staff, state: FormState) -> Response:
    rt = web.runtime(request)
    outbox = ({"counts": outbox_service.outbox_stats(rt),
               "failed": outbox_service.list_outbox(rt, status="failed", limit=20)}
              if staff.may("notices.manage") else None)
    return guards.admin_render(request, "admin_maintenance.html", state.status, page_path="/admin/maintenance",
                         staff=staff, form=state, windows=maintenance_service.list_maintenance(rt), outbox=outbox,
                         notice_hours=rt.settings.maintenance_notice_hours)


@router.get("/admin/maintenance")
def admin_maintenance(request: Request, staff: MaintenanceStaff, done: str | None = None) -> Response:
    return admin_maintenance_page(request, staff, FormState(notice=_done(request, done)))


@router.post("/admin/maintenance")
def admin_schedule(request: Request, staff: MaintenanceStaff, form: LongForm) -> Response:
    values = {name: form.get(name, "") for name in MAINTENANCE_FIELDS}
    try:
        form.check()
        starts_at = _local_time(values["starts_at"], "starts_at")
        ends_at = _local_time(values["ends_at"], "ends_at")
        if starts_at is None or ends_at is None:
            raise errors.invalid("invalid_time", "Enter a date and time.", "starts_at" if starts_at is None
                                 else "ends_at")
        maintenance_service.schedule_maintenance(web.runtime(request), web.web_origin(request), starts_at=starts_at,
                                     ends_at=ends_at, message=values["message"], staff_id=staff.staff_id)
    except errors.DomainError as exc:
        return admin_maintenance_page(request, staff, web.failed_form(request, exc, values, MAINTENANCE_FIELDS))
    return web.redirect(request, "/admin/maintenance?done=scheduled")


@router.post("/admin/maintenance/{window_id}/cancel")
def admin_cancel(window_id: str, request: Request, staff: MaintenanceStaff, form: CheckedForm) -> Response:
    try:
        form.check()
        maintenance_service.cancel_maintenance(web.runtime(request), web.web_origin(request), window_id,
                                               staff_id=staff.staff_id)
    except errors.DomainError as exc:
        return admin_maintenance_page(request, staff, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, "/admin/maintenance?done=cancelled")


@router.post("/admin/notices/retry-failed")
def admin_retry(request: Request, staff: guards.StaffPage("notices.manage"), _form: ButtonForm) -> Response:
    outbox_service.retry_failed(web.runtime(request), web.web_origin(request), staff_id=staff.staff_id)
    return web.redirect(request, "/admin/maintenance?done=retried")


# --- the maintenance gate --------------------------------------------------------------------------

# Health checks, metrics, static files and the admin console stay up, so operators can watch the
# service and end the window; apps can still read the schedule.
EXEMPT_PREFIXES = ("/healthz", "/readyz", "/metrics", "/static/", "/admin", "/api/v1/admin", "/api/v1/maintenance",
                   "/api/docs", "/api/v1/openapi.json")


def exempt(path: str) -> bool:
    return any(path == prefix.rstrip("/") or path.startswith(prefix.rstrip("/") + "/") for prefix in EXEMPT_PREFIXES)


class MaintenanceGate:
    """During a maintenance window the API answers 503 ``maintenance`` (problem+json) and the pages a
    503 maintenance page, both with ``Retry-After``. The window comes from the per-process cache
    (``notice_cache_seconds``), so a request costs no query; the page needs no database either."""

    def __init__(self, app, runtime: Runtime) -> None:
        self.app = app
        self.rt = runtime

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or exempt(scope.get("path", "")):
            return await self.app(scope, receive, send)
        window = await self._window()
        if window is None:
            return await self.app(scope, receive, send)
        ends_at = datetime.fromisoformat(window["ends_at"].replace("Z", "+00:00"))
        retry_after = str(max(1, int((ends_at - self.rt.clock.now()).total_seconds()) + 1))
        request = Request(scope)
        if scope["path"].startswith("/api/"):
            exc = errors.DomainError("maintenance", "The service is under maintenance. Please try again later.", 503,
                                     extra={"ends_at": window["ends_at"], "message": window["message"]},
                                     headers={"Retry-After": retry_after})
            response = http.problem(request, exc)
        else:
            response = maintenance_page(request, window)
            response.headers["Retry-After"] = retry_after
        await response(scope, receive, send)

    async def _window(self) -> dict | None:
        try:
            if not board.state_is_fresh(self.rt):
                return await run_in_threadpool(maintenance_service.active_maintenance, self.rt)
            return maintenance_service.active_maintenance(self.rt)
        except Exception as exc:  # noqa: BLE001 - the gate never takes the service down itself
            log.warning("maintenance.check_failed", error=type(exc).__name__)
            return None


def maintenance_page(request: Request, window: dict) -> HTMLResponse:
    """Rendered without the session or the database (both may be what the maintenance is about)."""
    lang = http.language(request)
    values = {"request": request, "lang": lang, "csrf_token": "", "principal": None, "viewer": None,
              "version": __version__, "is_dev": False, "banners": [],
              "lang_urls": {code: f"/?{urlencode({'lang': code})}" for code in LANGUAGES}, "window": window,
              "message": window["message"], "site": web.site(request)}
    html = web.environment(lang).get_template("maintenance.html").render(values)
    return HTMLResponse(html, status_code=503, headers={"Cache-Control": "no-store"})
