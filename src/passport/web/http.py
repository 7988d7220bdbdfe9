"""Request plumbing shared by the JSON API and the pages: runtime, origin, language, auth, CSRF,
problem+json."""

from __future__ import annotations

import ipaddress
import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response

from passport import errors
from passport.origin import Origin
from passport.runtime import Runtime
from passport.security.tokens import same
from passport.web.i18n import gettext, pick_language

SESSION_COOKIE = "passport_session"
ADMIN_COOKIE = "passport_admin"
CSRF_COOKIE = "passport_csrf"
DEVICE_COOKIE = "passport_device"
DEVICE_COOKIE_DAYS = 400  # the longest lifetime browsers keep a cookie for (RFC 6265bis)
CSRF_HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def device_id(request: Request) -> str:
    """This browser's (or API client's) long-lived random device cookie, or a new one that
    ``keep_device`` sets on the answer. Only a keyed hash of it is ever stored (sessions.devices)."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if raw and 22 <= len(raw) <= 64 and all(c.isalnum() or c in "-_" for c in raw):
        return raw
    made = getattr(request.state, "new_device", None) or secrets.token_urlsafe(24)
    request.state.new_device = made
    return made


def keep_device(request: Request, response: Response) -> None:
    """Set the device cookie made for this request, if one was (HttpOnly; Secure outside dev)."""
    made = getattr(request.state, "new_device", None)
    if made:
        response.set_cookie(DEVICE_COOKIE, made, max_age=DEVICE_COOKIE_DAYS * 24 * 3600, path="/", samesite="lax",
                            secure=not runtime(request).settings.is_dev, httponly=True)


# Dependencies that do no I/O are ``async def``: a plain ``def`` dependency costs a thread-pool hop.
async def runtime_dependency(request: Request) -> Runtime:
    return request.app.state.runtime


def client_ip(request: Request) -> str | None:
    """The peer address, or the last untrusted hop of X-Forwarded-For behind a trusted proxy."""
    peer = request.client.host if request.client else None
    trusted = request.app.state.trusted_proxies
    if not peer or not trusted or not in_networks(peer, trusted):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not in_networks(hop, trusted):
            return hop
    return peer


def in_networks(address: str, networks: list) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def origin(request: Request, channel: str = "api") -> Origin:
    return Origin(ip=client_ip(request), user_agent=request.headers.get("user-agent"), channel=channel)


async def api_origin(request: Request) -> Origin:
    return origin(request, "api")


def language(request: Request) -> str:
    return pick_language(request.query_params.get("lang"), request.cookies.get("lang"),
                         request.headers.get("accept-language"))


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token else None


def session_token(request: Request) -> str | None:
    """Bearer token, or the session cookie, which needs the CSRF token on unsafe requests."""
    token = bearer_token(request)
    return _cookie_token(request, SESSION_COOKIE) if token is None else token


def staff_token(request: Request) -> str | None:
    """A staff member's bearer token or ``passport_admin`` cookie (CSRF as for users)."""
    token = bearer_token(request)
    return _cookie_token(request, ADMIN_COOKIE) if token is None else token


def _cookie_token(request: Request, cookie: str) -> str | None:
    token = request.cookies.get(cookie)
    if token and request.method in UNSAFE and not csrf_ok(request, request.headers.get(CSRF_HEADER)):
        raise errors.DomainError("csrf_failed", "The form has expired. Please reload the page and try again.", 403)
    return token


Rt = Annotated[Runtime, Depends(runtime_dependency)]
ApiOrigin = Annotated[Origin, Depends(api_origin)]


def csrf_token(request: Request) -> str:
    """The double-submit token: read from its cookie, or made now (the response sets the cookie)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(24)
        request.state.new_csrf = token
    return token


def csrf_ok(request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    return bool(cookie and submitted and same(cookie, submitted))


def wants_page(request: Request) -> bool:
    """A browser asking for a page (an error answers with one), not an API client."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def problem_type(code: str) -> str:
    return f"https://passport.orginone.cn/problems/{code.replace('_', '-')}"


def problem(request: Request, exc: errors.DomainError) -> JSONResponse:
    lang = language(request)
    body = {
        "type": problem_type(exc.code),
        "title": gettext(lang, exc.title),
        "status": exc.status,
        "detail": gettext(lang, exc.title),
        "code": exc.code,
    }
    if exc.errors:
        body["errors"] = [{"field": e.field, "code": e.code, "message": gettext(lang, e.message)}
                          | ({"category": e.category} if e.category else {}) for e in exc.errors]
    body.update(exc.extra)
    return JSONResponse(body, status_code=exc.status, headers=exc.headers or None,
                        media_type="application/problem+json")


def avatar_response(data: bytes, kind: str, *, public: bool) -> Response:
    """An avatar: a public one is cached (its address changes with the avatar), a held one seen by staff
    never; ``nosniff`` comes with every answer."""
    cache = "public, max-age=3600" if public else "no-store"
    return Response(data, media_type=kind, headers={"Cache-Control": cache,
                                                    "Content-Disposition": 'inline; filename="avatar.jpg"'})


def document_response(data: bytes, kind: str) -> Response:
    """An uploaded document (licence, ID photo) for staff: never cached, a PDF downloaded, an image shown."""
    disposition = "attachment" if kind == "application/pdf" else "inline"
    extension = {"image/png": "png", "image/jpeg": "jpg", "application/pdf": "pdf"}[kind]
    return Response(data, media_type=kind, headers={
        "Cache-Control": "no-store", "Content-Disposition": f'{disposition}; filename="document.{extension}"'})
