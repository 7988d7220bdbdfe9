"""Page plumbing: templates, language, CSRF and session cookies, form errors; the public pages.

The domain page modules (``accounts/pages.py``, ``sessions/pages.py``) build on this module and add
their routes to ``router`` when imported; app.py includes ``router`` (and ``dev_router`` in dev/test).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader
from markdown_it import MarkdownIt
from markupsafe import Markup

from passport import __version__, errors
from passport.accounts import service as accounts
from passport.agreements import gate as consent_gate
from passport.agreements import service as agreements
from passport.audit.service import Origin
from passport.clock import china_time
from passport.notify import service as notices
from passport.runtime import Runtime
from passport.senders.sms import OutboxSms
from passport.sessions import service as sessions
from passport.web import http
from passport.web.i18n import LANGUAGES, gettext

TEMPLATES_DIR = Path(__file__).parent / "templates"
LANG_COOKIE = "lang"
FIELD_CAP = 1024  # longer than any field a page reads; services apply the real limits
_NOT_LOOKED_UP = object()

router = APIRouter(include_in_schema=False)
dev_router = APIRouter(include_in_schema=False)

# Markdown from operators, rendered without raw HTML; markdown-it drops javascript: links itself.
# Markdown from operators (agreements, announcements), rendered without raw HTML; markdown-it drops
# javascript: links itself.
_markdown = MarkdownIt("commonmark", {"html": False})


def render_markdown(text: str) -> Markup:
    return Markup(_markdown.render(text or ""))  # noqa: S704 - markdown-it escapes raw HTML ("html": False)


# --- templates -------------------------------------------------------------------------------------

@cache
def environment(lang: str) -> Environment:
    """One environment per language with its translations installed once: a shared environment
    whose gettext is swapped per request would race between concurrent requests."""
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True, extensions=["jinja2.ext.i18n"])
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda message: gettext(lang, message),
        lambda singular, plural, n: gettext(lang, singular if n == 1 else plural),
        newstyle=True,
    )
    env.filters["localtime"] = china_time
    return env


def translate(request: Request, message: str, **values: Any) -> str:
    """``message`` (an English msgid) in the request's language, with ``%(name)s`` values filled."""
    text = gettext(http.language(request), message)
    return text % values if values else text


def render(request: Request, template: str, status: int = 200, *, page_path: str | None = None,
           gate: bool = True, **context: Any) -> HTMLResponse:
    """Render a page in the request's language; sets the CSRF cookie and, on ``?lang=``, the
    language cookie. ``page_path`` is the GET page a POST re-renders (for the language links);
    ``gate=False`` renders without the consent gate (see ``current_principal``)."""
    lang = http.language(request)
    principal = current_principal(request, gate=gate)
    values = {
        "request": request,
        "lang": lang,
        "lang_urls": _language_urls(request, page_path),
        "csrf_token": http.csrf_token(request),
        "principal": principal,
        "viewer": context.pop("viewer", None) or _viewer(request, principal),
        "version": __version__,
        "is_dev": runtime(request).settings.is_dev,
        "agreement_changes": agreements.announcements(runtime(request)),
        "banners": notices.page_banners(runtime(request), principal),
        "unread": notices.page_unread(runtime(request), principal),
    }
    html = environment(lang).get_template(template).render(values | context)
    response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
    response.set_cookie(http.CSRF_COOKIE, http.csrf_token(request), path="/", samesite="lax",
                        secure=_secure(request), httponly=False)  # the page script sends it as X-CSRF-Token
    _remember_language(request, response)
    return response


def redirect(request: Request, url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    _remember_language(request, response)
    return response


def _language_urls(request: Request, page_path: str | None) -> dict[str, str]:
    params = {k: v for k, v in request.query_params.items() if k != "lang"} if request.method == "GET" else {}
    path = page_path or request.url.path
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        path = "/"  # "//host" or "/\\host" would make the link leave the site
    return {lang: f"{path}?{urlencode(params | {'lang': lang})}" for lang in LANGUAGES}


def _remember_language(request: Request, response: Response) -> None:
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES:
        response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 24 * 3600, path="/", samesite="lax",
                            secure=_secure(request), httponly=True)


def _secure(request: Request) -> bool:
    return not runtime(request).settings.is_dev


def _viewer(request: Request, principal: sessions.Principal | None) -> dict | None:
    if principal is None:
        return None
    try:
        with runtime(request).db.read() as db:
            return {"nickname": accounts.get(db, principal.account_id).nickname}
    except errors.DomainError:
        return None


# --- request plumbing ------------------------------------------------------------------------------

def runtime(request: Request) -> Runtime:
    return http.runtime(request)


def web_origin(request: Request) -> Origin:
    return http.origin(request, "web")


def current_principal(request: Request, *, gate: bool = True) -> sessions.Principal | None:
    """The signed-in account of this browser, from the session cookie (looked up once a request).
    ``gate=False`` (error pages, rendered from exception handlers and middleware where the consent
    gate's 303 would go uncaught) names the account without asking the gate."""
    principal = getattr(request.state, "page_principal", _NOT_LOOKED_UP)
    if principal is _NOT_LOOKED_UP:
        principal = sessions.authenticate(runtime(request), request.cookies.get(http.SESSION_COOKIE))
        request.state.page_principal = principal
    if gate and principal is not None and not getattr(request.state, "page_gate_checked", False):
        request.state.page_gate_checked = True  # once: the error page of the gate's 303 renders with it
        consent_gate.check_page(request, runtime(request), principal)  # A3: 303 to the interstitial
    return principal  # type: ignore[return-value]


def form_reader(cap: int):
    """A dependency that reads the form's text fields, each cut at ``cap`` characters. A form with a
    longer text (a document, an announcement) passes a cap one past its service's limit, so the service
    refuses the text rather than the page cutting it."""

    async def read_form(request: Request) -> dict[str, str]:
        form = await request.form()
        return {key: value[:cap] for key, value in form.multi_items() if isinstance(value, str)}

    return read_form


# Sync handlers run in the thread pool; the async dependency reads the body on the event loop.
FormData = Annotated[dict[str, str], Depends(form_reader(FIELD_CAP))]


def csrf_passed(request: Request, form: dict[str, str]) -> bool:
    return http.csrf_ok(request, form.get("csrf_token"))


def csrf_error() -> errors.DomainError:
    return errors.DomainError("csrf_failed", "The form has expired. Please reload the page and try again.",
                              403)


def start_browser_session(request: Request, response: Response, issued: sessions.Issued) -> None:
    """Log this browser in. Token rotation at login: the session the browser held before ends."""
    rt = runtime(request)
    previous = current_principal(request)
    if previous is not None and previous.session_id != issued.id:
        try:
            sessions.revoke(rt, web_origin(request), previous, previous.session_id)
        except errors.DomainError:
            pass  # it ended meanwhile
    max_age = max(0, int((issued.expires_at - rt.clock.now()).total_seconds()))
    response.set_cookie(http.SESSION_COOKIE, issued.token, max_age=max_age, path="/", samesite="lax",
                        secure=_secure(request), httponly=True)


def end_browser_session(request: Request, response: Response) -> None:
    response.delete_cookie(http.SESSION_COOKIE, path="/", samesite="lax", secure=_secure(request),
                           httponly=True)


def to_login(request: Request) -> Response:
    """To the login page, dropping the session cookie (signed out, or a session that no longer works)."""
    response = redirect(request, "/login")
    end_browser_session(request, response)
    return response


# --- forms -----------------------------------------------------------------------------------------

@dataclass
class FormState:
    """What a re-rendered form shows: the values kept, messages, and the send-code wait."""

    values: dict[str, str] = field(default_factory=dict)
    alert: str | None = None  # for the whole form
    errors: dict[str, str] = field(default_factory=dict)  # per field name
    notice: str | None = None  # good news
    wait: int = 0  # seconds before the send-code button works again
    status: int = 200


# API field names that a page shows under another input.
_FIELD_ALIASES = {"to": "phone"}


def failed_form(request: Request, exc: errors.DomainError, values: dict[str, str],
                fields: Iterable[str]) -> FormState:
    """The form state for a domain error: the translated title next to each field it names that the
    form has, or on top when it names none of them; a 429 says how long to wait."""
    title = translate(request, exc.title)
    shown = set(fields)
    field_errors: dict[str, str] = {}
    for err in exc.errors:
        name = "accept" if err.field.startswith("agreements.") else _FIELD_ALIASES.get(err.field, err.field)
        if name in shown:
            field_errors.setdefault(name, title)
    wait = int(exc.extra.get("retry_after", 0) or 0) if exc.status == 429 else 0
    alert = None if field_errors else title
    if wait:
        alert = f"{title} {translate(request, 'Please wait %(seconds)s seconds.', seconds=wait)}"
    return FormState(values=values, alert=alert, errors=field_errors, wait=wait, status=exc.status)


def expired_form(request: Request, values: dict[str, str]) -> FormState:
    return FormState(values=values, alert=translate(request, csrf_error().title), status=403)


# Pages holding a "send code" button, by code purpose: the no-JS /send-code handler re-renders the
# page the user came from. Each page module registers its own.
CodeFormPage = Callable[[Request, FormState], Response]
CODE_FORMS: dict[str, CodeFormPage] = {}


# --- public pages ----------------------------------------------------------------------------------

def error_page(request: Request, exc: errors.DomainError) -> HTMLResponse:
    # Any path can end here (a 404): the language links go to the start page, not back to it.
    response = render(request, "error.html", exc.status, page_path="/", gate=False,
                      title=translate(request, exc.title), error_status=exc.status,
                      retry_after=exc.extra.get("retry_after"))
    for name, value in exc.headers.items():
        response.headers[name] = value
    return response


@router.get("/")
def home(request: Request) -> Response:
    if current_principal(request) is not None:
        return redirect(request, "/account")
    return render(request, "home.html")


@dev_router.get("/dev/outbox")
def dev_outbox(request: Request) -> Response:
    """Dev and test only: the SMS messages the outbox sender 'sent', newest first, in full."""
    settings = runtime(request).settings
    if not settings.is_dev:
        return error_page(request, errors.not_found("page"))
    messages = list(reversed(OutboxSms(settings.outbox_dir).read()))
    return render(request, "outbox.html", messages=messages)


# The page modules use the plumbing above and add their routes to ``router`` as they are imported.
import passport.accounts.pages  # noqa: E402, F401, I001
import passport.admin.accounts_pages  # noqa: E402, F401
import passport.admin.pages  # noqa: E402, F401
import passport.audit.admin_pages  # noqa: E402, F401
import passport.credentials.pages  # noqa: E402, F401
import passport.credentials.totp_pages  # noqa: E402, F401
import passport.sessions.pages  # noqa: E402, F401
