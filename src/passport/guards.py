"""Who is asking: the guards every handler depends on, and the page context they give the templates.

The JSON API's guards are FastAPI dependencies (``Authenticated``, ``staff_permission``); the pages'
are the same idea for HTML (``PageUser``, ``StaffPage``). Both apply the re-consent gate
(COMPLIANCE A3). ``web/`` is plumbing and knows no domain: ``app.py`` registers ``page_context`` with
it, as Starlette's context processors are registered.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from passport import errors
from passport.accounts import service as accounts
from passport.admin import service as admin
from passport.agreements import gate
from passport.agreements import service as agreements
from passport.credentials import stepup
from passport.identity.phone import mask_phone
from passport.notify import announcements, inbox
from passport.sessions import service as sessions
from passport.web import html as web
from passport.web import http
from passport.web import openapi as web_openapi

_NOT_LOOKED_UP = object()


# --- the JSON API -----------------------------------------------------------------------------------

async def require_principal(request: Request) -> sessions.Principal:
    rt = http.runtime(request)
    token = http.session_token(request)
    if not token:
        raise errors.not_authenticated()
    if rt.db.is_sqlite:
        # A WAL-mode read never waits for a writer and costs less than the thread hop it would
        # take to move it off the event loop.
        principal, stale = sessions.lookup(rt, token)
    else:
        principal, stale = await sessions.lookup_async(rt, token)  # the loop's own connections
    if stale:  # the rare write (last-seen touch) goes to a thread
        await run_in_threadpool(sessions.touch, rt, principal)
    if principal is None:
        raise errors.not_authenticated()
    request.state.principal = principal
    await _check_consent_api(request, principal)  # A3: no I/O unless a re-consent version is in force
    return principal


web_openapi.guard(require_principal, bearer="bearer", cookie="session_cookie", not_authenticated=401,
                  consent_required=403)
Authenticated = Annotated[sessions.Principal, Depends(require_principal)]


async def require_step_up(request: Request, principal: Authenticated) -> sessions.Principal:
    """A session that proved the password (or an authenticator code) within ``PASSPORT_STEP_UP_MINUTES``;
    403 ``step_up_required`` otherwise (``POST /me/step-up``, then try again). Routes whose request
    carries the current password need no step-up: that check is one."""
    if not stepup.is_stepped_up(http.runtime(request), principal):
        raise stepup.step_up_required(stepup.methods(principal.account))
    return principal


web_openapi.guard(require_step_up, bearer="bearer", cookie="session_cookie", not_authenticated=401,
                  consent_required=403, step_up_required=403)
SteppedUp = Annotated[sessions.Principal, Depends(require_step_up)]


def staff_permission(permission: str):
    """Dependency: the signed-in staff member, who must hold ``permission`` (403 otherwise).
    Staff use a bearer token or the ``passport_admin`` cookie (CSRF as for users)."""
    if permission not in admin.PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    async def dependency(request: Request) -> admin.StaffPrincipal:
        token = http.staff_token(request)
        principal = await run_in_threadpool(admin.authenticate_staff, http.runtime(request), token)
        if principal is None:
            raise errors.not_authenticated()
        admin.require(principal, permission)
        request.state.staff = principal
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]  # read by the role tests and docs
    return web_openapi.guard(dependency, bearer="staff_bearer", cookie="staff_cookie",
                             note=f"Staff only, with the permission `{permission}`.", not_authenticated=401,
                             forbidden=403)


async def _check_consent_api(request: Request, principal: sessions.Principal) -> None:
    """403 ``consent_required`` while the account has a re-consent version to accept."""
    rt = http.runtime(request)
    if agreements.gate_is_clear(rt, principal.account_id, principal.account):
        return
    gated = not gate.api_open(request.method, request.url.path)
    pending = await run_in_threadpool(agreements.enforce, rt, http.origin(request, "api"), principal.account_id,
                                      principal.account, gated=gated)
    if pending:
        raise gate.consent_required(pending)


# --- pages --------------------------------------------------------------------------------------------

def current_principal(request: Request, *, gate_applies: bool = True) -> sessions.Principal | None:
    """The signed-in account of this browser, from the session cookie (looked up once a request).
    ``gate_applies=False`` (error pages, rendered from exception handlers and middleware where the
    consent gate's 303 would go uncaught) names the account without asking the gate."""
    principal = getattr(request.state, "page_principal", _NOT_LOOKED_UP)
    if principal is _NOT_LOOKED_UP:
        principal = sessions.authenticate(http.runtime(request), request.cookies.get(http.SESSION_COOKIE))
        request.state.page_principal = principal
    if gate_applies and principal is not None and not getattr(request.state, "page_gate_checked", False):
        request.state.page_gate_checked = True  # once: the error page of the gate's 303 renders with it
        _check_consent_page(request, principal)  # A3: 303 to the interstitial
    return principal  # type: ignore[return-value]


def _check_consent_page(request: Request, principal: sessions.Principal) -> None:
    """For a signed-in page: a 303 to the interstitial while a re-consent version waits."""
    rt = http.runtime(request)
    if agreements.gate_is_clear(rt, principal.account_id, principal.account):
        return
    path = request.url.path
    pending = agreements.enforce(rt, http.origin(request, "web"), principal.account_id, principal.account,
                                 gated=not gate.page_open(path, request.method))
    if pending:
        back = path + (f"?{request.url.query}" if request.url.query else "") if request.method == "GET" else "/account"
        exc = gate.consent_required(pending)
        exc.status = 303
        exc.headers = {"Location": f"{gate.INTERSTITIAL}?next={quote(back, safe='/')}", "Cache-Control": "no-store"}
        raise exc


def page_user(request: Request) -> sessions.Principal:
    """Dependency of a signed-in page (``me: PageUser``): the account, past the consent gate, or off to
    the login page (cookie dropped). Pages for visitors too call ``current_principal`` and branch."""
    principal = current_principal(request)
    if principal is None:
        if sessions.ended_by_status(http.runtime(request), request.cookies.get(http.SESSION_COOKIE)) is not None:
            # Frozen, suspended or terminated meanwhile: the login page says why (and drops the cookie).
            raise web.Redirected(web.redirect(request, "/login?ended=1"))
        raise web.Redirected(web.to_login(request))
    return principal


PageUser = Annotated[sessions.Principal, Depends(page_user)]

STEP_UP_PAGE = "/account/step-up"


def local_path(value: str | None, default: str = "/account") -> str:
    """``value`` if it is a path on this site ("//host" or "/\\host" would leave it), else ``default``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


@cache
def stepped_up_page(back: str | None):
    """Dependency of a page that makes a sensitive change: the signed-in account, stepped up, or off to
    the "confirm your password" page, which returns to the page asked for (a GET) or to ``back`` (the
    page of the form that was posted: a POST cannot be replayed)."""

    def dependency(request: Request, principal: PageUser) -> sessions.Principal:
        if stepup.is_stepped_up(http.runtime(request), principal):
            return principal
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = local_path(here if request.method == "GET" or back is None else back)
        raise web.Redirected(web.redirect(request, f"{STEP_UP_PAGE}?next={quote(target, safe='/')}"))

    return dependency


def SteppedUpPage(back: str | None = None) -> Any:  # noqa: N802 - used as a type: ``me: guards.SteppedUpPage("/x")``
    """``me: guards.SteppedUpPage("/account/totp")``: the signed-in account, stepped up (see ``stepped_up_page``)."""
    return Annotated[sessions.Principal, Depends(stepped_up_page(back))]


def start_browser_session(request: Request, response: Response, issued: sessions.Issued) -> None:
    """Log this browser in. Token rotation at login: the session the browser held before ends."""
    rt = http.runtime(request)
    previous = current_principal(request)
    if previous is not None and previous.session_id != issued.id:
        try:
            sessions.revoke(rt, web.web_origin(request), previous, previous.session_id)
        except errors.DomainError:
            pass  # it ended meanwhile
    web.set_session_cookie(request, response, issued.token, issued.expires_at - rt.clock.now())


def masked_phone(request: Request, principal: sessions.Principal) -> str | None:
    """From the account row read with the session (a phone change drops it from the session cache)."""
    phone_enc = principal.account.phone_enc
    cipher = http.runtime(request).keys.cipher
    return mask_phone(cipher.decrypt(phone_enc, accounts.PHONE_FIELD, principal.account_id)) if phone_enc else None


def page_context(request: Request, gate_applies: bool) -> dict[str, Any]:
    """What every page's layout shows: the account, its nickname, banners and the unread count."""
    rt = http.runtime(request)
    principal = current_principal(request, gate_applies=gate_applies)
    return {
        "principal": principal,
        "viewer": _viewer(request, principal),
        "agreement_changes": agreements.announcements(rt),
        "banners": announcements.page_banners(rt, principal),
        "unread": inbox.page_unread(rt, principal),
    }


def _viewer(request: Request, principal: sessions.Principal | None) -> dict | None:
    if principal is None:
        return None
    try:
        with http.runtime(request).db.read() as db:
            return {"nickname": accounts.get(db, principal.account_id).nickname}
    except errors.DomainError:
        return None


# --- admin pages --------------------------------------------------------------------------------------

def current_staff(request: Request) -> admin.StaffPrincipal | None:
    """The signed-in staff member of this browser, from the ``passport_admin`` cookie (once a request)."""
    if not hasattr(request.state, "page_staff"):
        token = request.cookies.get(http.ADMIN_COOKIE)
        request.state.page_staff = admin.authenticate_staff(http.runtime(request), token)
    return request.state.page_staff


@cache
def staff_page(permission: str):
    """Dependency of an admin page: the staff member holding ``permission``; else the answer instead,
    the login page when signed out, the 403 page for a role without it."""
    if permission not in admin.PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def dependency(request: Request) -> admin.StaffPrincipal:
        principal = current_staff(request)
        if principal is None:
            raise web.Redirected(web.redirect(request, "/admin/login?next=" + quote(request.url.path, safe="/")))
        if not principal.may(permission):
            raise web.Answered(web.error_page(request, admin.forbidden()))
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def StaffPage(permission: str) -> Any:  # noqa: N802 - used as a type: ``staff: StaffPage("audit.read")``
    """``staff: guards.StaffPage("audit.read")``: the signed-in staff member, who may ``permission``."""
    return Annotated[admin.StaffPrincipal, Depends(staff_page(permission))]


def admin_render(request: Request, template: str, status: int = 200, **context) -> Response:
    """An admin page: ``staff`` (for the layout) is the signed-in staff member or None."""
    context.setdefault("staff", current_staff(request))
    return web.render(request, template, status, **context)
