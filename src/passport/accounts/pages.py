"""Pages: the account overview, profile, email, devices and activity (API.md "Accounts")."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from passport import errors, guards
from passport.accounts import profile, public, service
from passport.agreements import service as agreements
from passport.credentials import email as email_binding
from passport.passwordless import passkeys
from passport.sessions import service as sessions
from passport.web import html as web
from passport.web import http
from passport.web.html import FIELD_CAP, CheckedForm, FormState

router = APIRouter(include_in_schema=False)

PROFILE_FIELDS = ("nickname", "bio")
DONE_NOTICES = {"profile": "Your profile has been saved.",
                "profile_held": "Your change has been sent for review. It will show once a reviewer approves it.",
                "revoked": "That device has been logged out.",
                "revoked_others": "Every other device has been logged out.",
                "email_bound": "Your email address has been bound. You can log in with it.",
                "email_unbound": "Your email address has been removed.",
                "avatar": "Your avatar has been saved.",
                "avatar_held": "Your avatar has been sent for review. Others see it once a reviewer approves it.",
                "avatar_removed": "Your avatar has been removed."}
EMAIL_FIELDS = ("email", "code")
ACTIVITY_PAGE = 20


def account_page(request: Request, principal: sessions.Principal, state: FormState) -> Response:
    rt = web.runtime(request)
    with rt.db.read() as db:
        record = service.get(db, principal.account_id)
        account = service.view(rt, record, agreements.pending_for(rt, db, record.id))
        security = service.security_overview(db, record)
        consents = [{"kind": c.kind, "version": c.version, "accepted_at": c.accepted_at}
                    for c in agreements.consents_of(db, record.id)]
    security["passkeys"] = passkeys.has_passkeys(rt, record.id)
    devices = [d | {"device": device_name(request, d["user_agent"])}
               for d in sessions.list_sessions(rt, principal)]
    if not state.values:
        saved = {"nickname": account["nickname"], "bio": account["bio"] or ""}
        state = dataclasses.replace(state, values=saved)
    return web.render(request, "account.html", state.status, page_path="/account", form=state,
                      account=account, consents=consents, devices=devices, security=security,
                      viewer={"nickname": account["nickname"]},
                      avatar_max_mb=format(round(rt.settings.avatar_max_bytes / (1024 * 1024), 1), "g"))


@router.get("/account")
def account(request: Request, principal: guards.PageUser, done: str | None = None) -> Response:
    notice = DONE_NOTICES.get(done or "")
    state = FormState(notice=web.translate(request, notice) if notice else None)
    return account_page(request, principal, state)


@router.post("/account/profile")
def update_profile(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    values = {"nickname": form.get("nickname", ""), "bio": form.get("bio", "")}
    try:
        form.check()
        change = profile.update_profile(web.runtime(request), web.web_origin(request), principal.account_id,
                                        nickname=values["nickname"], bio=values["bio"], bio_given=True)
    except errors.DomainError as exc:
        return account_page(request, principal, web.failed_form(request, exc, values, PROFILE_FIELDS))
    return web.redirect(request, "/account?done=profile_held" if change.held else "/account?done=profile")


@router.post("/account/sessions/{session_id}/revoke")
def revoke_session(session_id: str, request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    try:
        form.check()
        sessions.revoke(web.runtime(request), web.web_origin(request), principal, session_id)
    except errors.DomainError as exc:
        return account_page(request, principal, web.failed_form(request, exc, {}, ()))
    if session_id == principal.session_id:
        return web.to_login(request)
    return web.redirect(request, "/account?done=revoked")


def _notice(request: Request, done: str | None) -> str | None:
    notice = DONE_NOTICES.get(done or "")
    return web.translate(request, notice) if notice else None


# --- email -----------------------------------------------------------------------------------------

def email_page(request: Request, principal: sessions.Principal, state: FormState,
               sent_to: str | None = None) -> Response:
    """``sent_to``: the address just typed, shown as typed on this answer only (its owner typed it a
    moment ago, so a typo is seen; nothing keeps it but its code record, and the page is no-store)."""
    rt = web.runtime(request)
    email = email_binding.email_of(rt, principal.account_id)
    return web.render(request, "account_email.html", state.status, page_path="/account/email", form=state,
                      email=email, sent_to=sent_to, code_minutes=rt.settings.code_ttl_seconds // 60)


@router.get("/account/email")
def email_form(request: Request, principal: guards.SteppedUpPage(), done: str | None = None) -> Response:
    return email_page(request, principal, FormState(notice=_notice(request, done)))


@router.post("/account/email")
def request_email(request: Request, principal: guards.SteppedUpPage("/account/email"), form: CheckedForm) -> Response:
    values = {"email": form.get("email", "")}
    rt = web.runtime(request)
    try:
        form.check()
        email_binding.request_email(rt, web.web_origin(request), principal.account_id, email=values["email"])
    except errors.DomainError as exc:
        return email_page(request, principal, web.failed_form(request, exc, values, ("email",)))
    return email_page(request, principal, FormState(), sent_to=values["email"].strip())


@router.post("/account/email/verify")
def verify_email(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    try:
        form.check()
        email_binding.verify_email(web.runtime(request), web.web_origin(request), principal.account_id,
                             code=form.get("code", ""))
    except errors.DomainError as exc:
        return email_page(request, principal, web.failed_form(request, exc, {}, EMAIL_FIELDS))
    return web.redirect(request, "/account/email?done=email_bound")


@router.post("/account/email/unbind")
def unbind_email(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    if form.expired:
        return email_page(request, principal, web.failed_form(request, web.csrf_error(), {}, ()))
    email_binding.unbind_email(web.runtime(request), web.web_origin(request), principal.account_id)
    return web.redirect(request, "/account/email?done=email_unbound")


# --- devices ---------------------------------------------------------------------------------------

def devices_page(request: Request, principal: sessions.Principal, state: FormState) -> Response:
    devices = [d | {"device": device_name(request, d["user_agent"])}
               for d in sessions.list_sessions(web.runtime(request), principal)]
    return web.render(request, "account_devices.html", state.status, page_path="/account/devices", form=state,
                      devices=devices, others=sum(not d["current"] for d in devices))


@router.get("/account/devices")
def devices(request: Request, principal: guards.PageUser, done: str | None = None) -> Response:
    return devices_page(request, principal, FormState(notice=_notice(request, done)))


@router.post("/account/devices/{session_id}/revoke")
def revoke_device(session_id: str, request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    try:
        form.check()
        sessions.revoke(web.runtime(request), web.web_origin(request), principal, session_id)
    except errors.DomainError as exc:
        return devices_page(request, principal, web.failed_form(request, exc, {}, ()))
    if session_id == principal.session_id:
        return web.to_login(request)
    return web.redirect(request, "/account/devices?done=revoked")


@router.post("/account/devices/revoke-others")
def revoke_other_devices(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    if form.expired:
        return devices_page(request, principal, web.failed_form(request, web.csrf_error(), {}, ()))
    sessions.revoke_others(web.runtime(request), web.web_origin(request), principal)
    return web.redirect(request, "/account/devices?done=revoked_others")


# --- activity --------------------------------------------------------------------------------------

@router.get("/account/activity")
def activity(request: Request, principal: guards.PageUser, before: str | None = None) -> Response:
    # A hand-edited ?before= that is not a positive number starts from the newest entry.
    start = int(before) if before and before.isascii() and before.isdigit() and len(before) < 19 else None
    start = start or None
    page = service.activity(web.runtime(request), principal.account_id, before=start, limit=ACTIVITY_PAGE)
    items = [item | {"device": device_name(request, item.get("user_agent"))} for item in page["items"]]
    return web.render(request, "account_activity.html", page_path="/account/activity", items=items,
                      next_before=page["next_before"], first_page=start is None)


_BROWSERS = (("MicroMessenger", "WeChat"), ("DingTalk", "DingTalk"), ("Edg/", "Edge"),
             ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Chromium/", "Chromium"), ("Safari/", "Safari"))
_SYSTEMS = (("HarmonyOS", "HarmonyOS"), ("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"),
            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def device_name(request: Request, user_agent: str | None) -> str | None:
    """``Chrome · Android`` (``微信 · iOS``) from a User-Agent header, or None when it names nothing
    we know."""
    agent = user_agent or ""
    browser = next((name for marker, name in _BROWSERS if marker in agent), None)
    system = next((name for marker, name in _SYSTEMS if marker in agent), None)
    parts = [web.translate(request, browser) if browser else None, system]
    return " · ".join(part for part in parts if part) or None



@router.get("/")
def home(request: Request) -> Response:
    if guards.current_principal(request) is not None:
        return web.redirect(request, "/account")
    return web.render(request, "home.html")


@router.get("/u/{account_id}")
def public_profile(account_id: str, request: Request, principal: guards.PageUser) -> Response:
    """The public profile page (Art. 12): for signed-in visitors, as the API."""
    try:
        shown = public.public_profile(web.runtime(request), account_id)
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    return web.render(request, "profile_public.html", page_path=f"/u/{account_id}", profile=shown,
                      own=shown["id"] == principal.account_id)


# --- avatars ---------------------------------------------------------------------------------------------

@router.get("/u/{account_id}/avatar/{avatar_id}")
def avatar(account_id: str, avatar_id: str, request: Request) -> Response:
    """The approved avatar, for anyone holding its address (it changes with the avatar: cached an hour)."""
    try:
        row = public.avatar_image(web.runtime(request), account_id, avatar_id)
    except errors.DomainError as exc:
        return web.error_page(request, exc, plain=True)
    return http.avatar_response(row.image, row.content_type, public=True)


@router.get("/admin/avatars/{avatar_id}")
def staff_avatar(avatar_id: str, request: Request, staff: guards.StaffPage("reviews.decide")) -> Response:
    """A held avatar for the reviewer's page (the ``passport_admin`` cookie); never cached."""
    try:
        row = public.staff_avatar_image(web.runtime(request), avatar_id)
    except errors.DomainError as exc:
        return web.error_page(request, exc, plain=True)
    return http.avatar_response(row.image, row.content_type, public=False)


@router.post("/account/avatar")
async def upload_avatar(request: Request, principal: guards.PageUser) -> Response:
    rt = web.runtime(request)
    fields, data = web.Form(), b""
    form = await request.form()
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields[key] = value[:FIELD_CAP]
        elif key == "avatar":
            data = await value.read(rt.settings.avatar_max_bytes + 1)
    web.checked(request, fields)
    try:
        fields.check()
        change = await run_in_threadpool(profile.set_avatar, rt, web.web_origin(request), principal.account_id, data)
    except errors.DomainError as exc:
        return await run_in_threadpool(account_page, request, principal, web.failed_form(request, exc, {}, ("avatar",)))
    return web.redirect(request, "/account?done=avatar_held" if change.held else "/account?done=avatar")


@router.post("/account/avatar/remove")
def remove_avatar(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    try:
        form.check()
        profile.remove_avatar(web.runtime(request), web.web_origin(request), principal.account_id)
    except errors.DomainError as exc:
        return account_page(request, principal, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, "/account?done=avatar_removed")
