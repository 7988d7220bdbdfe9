"""The re-consent gate (COMPLIANCE A3, API.md "Agreements and consent"), called for every
authenticated API request and every signed-in page. With no re-consent version in force and no
continued-use acceptance due, it answers from the process's versions cache without I/O."""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from passport import errors
from passport.agreements import service
from passport.runtime import Runtime

# What a user who has not accepted yet may still do: read, accept, log out, take their data, apply
# for cancellation (with the code it needs) and withdraw optional consent (A3, A4).
_API_OPEN = ("/api/v1/me/consents", "/api/v1/me/purposes", "/api/v1/me/cancellation", "/api/v1/me/export",
             "/api/v1/me/verification-codes", "/api/v1/agreements")
_PAGE_OPEN = ("/consent", "/agreements", "/account/consents", "/account/cancellation", "/account/export",
              "/notices/unsubscribe", "/announcements", "/login", "/logout", "/static", "/admin", "/dev")
INTERSTITIAL = "/consent"
# Ending a session (a stolen one, say) never waits for acceptance: the pages of DELETE /sessions/….
_PAGE_REVOKE = re.compile(r"/account/(?:sessions|devices)/[^/]+/revoke|/account/devices/revoke-others")
# The public page of an organisation (GET /organizations/{id} is public in the API too).
_PAGE_ORGANIZATION = re.compile(r"/organizations/(?!new$)[^/]+")


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def api_open(method: str, path: str) -> bool:
    if path == "/api/v1/me":
        return method == "GET"
    if path.startswith("/api/v1/sessions") and method == "DELETE":
        return True
    return _under(path, _API_OPEN)


def page_open(path: str, method: str = "GET") -> bool:
    if method == "POST" and _PAGE_REVOKE.fullmatch(path):
        return True
    if method in ("GET", "HEAD") and _PAGE_ORGANIZATION.fullmatch(path):
        return True
    return _under(path, _PAGE_OPEN)


def consent_required(pending: list[dict]) -> errors.DomainError:
    return errors.DomainError("consent_required", "Please read and accept the updated agreements first.", 403,
                              extra={"pending": pending})


async def check_api(request: Request, rt: Runtime, principal) -> None:
    """403 ``consent_required`` while the account has a re-consent version to accept."""
    if service.gate_is_clear(rt, principal.account_id, principal.account):
        return
    from passport.web.http import origin

    gated = not api_open(request.method, request.url.path)
    pending = await run_in_threadpool(service.enforce, rt, origin(request, "api"), principal.account_id,
                                      principal.account, gated=gated)
    if pending:
        raise consent_required(pending)


def check_page(request: Request, rt: Runtime, principal) -> None:
    """For a signed-in page: a 303 to the interstitial while a re-consent version waits."""
    if service.gate_is_clear(rt, principal.account_id, principal.account):
        return
    from passport.web.http import origin

    path = request.url.path
    pending = service.enforce(rt, origin(request, "web"), principal.account_id, principal.account,
                              gated=not page_open(path, request.method))
    if pending:
        back = path + (f"?{request.url.query}" if request.url.query else "") if request.method == "GET" else "/account"
        exc = consent_required(pending)
        exc.status = 303
        exc.headers = {"Location": f"{INTERSTITIAL}?next={quote(back, safe='/')}", "Cache-Control": "no-store"}
        raise exc
