"""Page plumbing: templates, language, CSRF and session cookies, form errors, the error page.

It knows no domain: what every page's layout shows of the signed-in account (nickname, banners,
unread count) comes from the context processors that app.py registers (``app.state.page_context``).
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import segno
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from passport import __version__, errors
from passport.clock import china_time, in_china_time
from passport.origin import Origin
from passport.runtime import Runtime
from passport.senders.sms import OutboxSms
from passport.web import http
from passport.web.i18n import LANGUAGES, gettext, pgettext

TEMPLATES_DIR = Path(__file__).parent / "templates"
LANG_COOKIE = "lang"
FIELD_CAP = 1024  # longer than any field a page reads; services apply the real limits

dev_router = APIRouter(include_in_schema=False)

# A context processor: (request, whether the consent gate applies) → names for the templates.
ContextProcessor = Callable[[Request, bool], dict[str, Any]]

# Markdown from operators (agreements, announcements), rendered without raw HTML; markdown-it drops
# javascript: links itself.
_markdown = MarkdownIt("commonmark", {"html": False})


_LINK = re.compile(r"https?://[^\s<>\"'，。；、！？）)]+|(?<![\w/.:])/[a-z][a-z0-9\-/]*[a-z0-9]")


def linkify(text: str | None) -> Markup:
    """Plain text (a message) with its web addresses and this site's paths ("/account-stolen") made
    links; everything else escaped."""
    out, last = [], 0
    source = text or ""
    for match in _LINK.finditer(source):
        out.append(escape(source[last:match.start()]))
        url = match.group(0)
        out.append(Markup('<a href="{0}">{0}</a>').format(url))
        last = match.end()
    out.append(escape(source[last:]))
    return Markup("").join(out)


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
        pgettext=lambda context, message: pgettext(lang, context, message),
        npgettext=lambda context, singular, plural, n: pgettext(lang, context, singular if n == 1 else plural),
    )
    env.filters["localtime"] = china_time
    env.filters["linkify"] = linkify
    return env


def translate(request: Request, message: str, **values: Any) -> str:
    """``message`` (an English msgid) in the request's language, with ``%(name)s`` values filled."""
    text = gettext(http.language(request), message)
    return text % values if values else text


def render(request: Request, template: str, status: int = 200, *, page_path: str | None = None,
           gate: bool = True, plain: bool = False, **context: Any) -> HTMLResponse:
    """Render a page in the request's language; sets the CSRF cookie and, on ``?lang=``, the
    language cookie. ``page_path`` is the GET page a POST re-renders (for the language links);
    ``gate=False`` renders without the consent gate (see ``guards.current_principal``);
    ``plain=True`` without any page context (no session, no database: a page about an outage)."""
    lang = http.language(request)
    values = {
        "request": request,
        "lang": lang,
        "lang_urls": _language_urls(request, page_path),
        "csrf_token": http.csrf_token(request),
        "version": __version__,
        "is_dev": runtime(request).settings.dev_tools,  # the dev banner and its outbox link
        "customer_service": customer_service(request),
        "site": site(request),
    }
    for processor in () if plain else request.app.state.page_context:
        values.update(processor(request, gate))
    if context.get("viewer") is None:
        context.pop("viewer", None)
    html = environment(lang).get_template(template).render(values | context)
    response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
    response.set_cookie(http.CSRF_COOKIE, http.csrf_token(request), path="/", samesite="lax",
                        secure=_secure(request), httponly=False)  # the page script sends it as X-CSRF-Token
    _remember_language(request, response)
    return response


def site(request: Request) -> dict[str, str | None]:
    """The operator's name and ICP filing number, for every page's footer (its customer-service contact
    is ``customer_service``)."""
    settings = runtime(request).settings
    return {"operator_name": settings.operator_name, "icp_number": settings.icp_number}


def local_time(raw: str | None, invalid: errors.DomainError) -> datetime | None:
    """A form's ``datetime-local`` value, read as Beijing time (the pages show every time that way);
    None when empty, ``invalid`` raised when it is not a date and time."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise invalid from None
    return in_china_time(value)


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


# --- request plumbing ------------------------------------------------------------------------------

def runtime(request: Request) -> Runtime:
    return http.runtime(request)


def web_origin(request: Request) -> Origin:
    return http.origin(request, "web")


class Form(dict[str, str]):
    """A posted form's text fields, read by a form dependency that has checked its CSRF token."""

    expired = False  # the token did not match the cookie's: a stale page, or a forged post

    def check(self) -> None:
        """Refuse a stale form with the same error as any other (403 ``csrf_failed``): the handler's
        ``except errors.DomainError`` shows it on the form again, values kept."""
        if self.expired:
            raise csrf_error()


def form_reader(cap: int):
    """A dependency that reads the form's text fields, each cut at ``cap`` characters, and checks its
    CSRF token. A form with a longer text (a document, an announcement) passes a cap one past its
    service's limit, so the service refuses the text rather than the page cutting it."""

    async def read_form(request: Request) -> Form:
        form = await request.form()
        return checked(request, Form((key, value[:cap]) for key, value in form.multi_items() if isinstance(value, str)))

    return read_form


def checked(request: Request, form: Form) -> Form:
    """``form`` with its CSRF verdict (for a dependency that reads a form of its own, such as an upload)."""
    form.expired = not http.csrf_ok(request, form.get("csrf_token"))
    return form


# Sync handlers run in the thread pool; the async dependency reads the body on the event loop.
CheckedForm = Annotated[Form, Depends(form_reader(FIELD_CAP))]


def button_form(request: Request, form: CheckedForm) -> Form:
    """A form that is only a button (log out, verify, retry): a stale token answers the 403 error page,
    there being no values to keep."""
    if form.expired:
        raise Answered(error_page(request, csrf_error()))
    return form


ButtonForm = Annotated[Form, Depends(button_form)]


def csrf_error() -> errors.DomainError:
    return errors.DomainError("csrf_failed", "The form has expired. Please reload the page and try again.",
                              403)


def set_session_cookie(request: Request, response: Response, token: str, lifetime: timedelta) -> None:
    response.set_cookie(http.SESSION_COOKIE, token, max_age=max(0, int(lifetime.total_seconds())), path="/",
                        samesite="lax", secure=_secure(request), httponly=True)


def end_browser_session(request: Request, response: Response) -> None:
    response.delete_cookie(http.SESSION_COOKIE, path="/", samesite="lax", secure=_secure(request),
                           httponly=True)


class Answered(Exception):  # noqa: N818 - not an error: a guard's answer instead of the page
    """Raised by a page guard (a dependency) whose answer replaces the page (a redirect, the 403 page):
    app.py sends ``response``."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.headers.get("location") or response.status_code)
        self.response = response


class Redirected(Answered):
    """A guard's redirect: to the login page, signed out."""


def to_login(request: Request) -> Response:
    """To the login page, dropping the session cookie (signed out, or a session that no longer works);
    a page asked for by GET is where the login goes back to (``next``, a path on this site)."""
    here = request.url.path
    wanted = here + (f"?{request.url.query}" if request.url.query else "")
    back = request.method == "GET" and here not in ("/", "/login", "/logout") and not here.startswith("//")
    response = redirect(request, "/login?" + urlencode({"next": wanted}) if back else "/login")
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
    code: str | None = None  # the refusal's code, for a page that links to what to do next


# What each broken password rule is called on a page (security.policy's codes): the error names every
# rule the password breaks, not only "too weak".
PASSWORD_RULES = {
    "too_short": "shorter than %(length)s characters",
    "too_long": "too long",
    "too_few_classes": "fewer than %(classes)s of: lower case, upper case, digits, symbols",
    "contains_phone": "contains your mobile number",
    "common_password": "a common password",
    "too_guessable": "too easy to guess",
}


def _password_error(request: Request, problems: list[str]) -> str:
    settings = runtime(request).settings
    named = [translate(request, PASSWORD_RULES[p], length=settings.password_min_length,
                       classes=settings.password_min_classes) for p in problems if p in PASSWORD_RULES]
    return translate(request, "Password not accepted: %(rules)s.",
                     rules=translate(request, "; ").join(named)) if named else ""


# API field names that a page shows under another input.
_FIELD_ALIASES = {"to": "phone"}


def failed_form(request: Request, exc: errors.DomainError, values: dict[str, str],
                fields: Iterable[str]) -> FormState:
    """The form state for a domain error: the translated title next to each field it names that the
    form has, or on top when it names none of them; a 429 says how long to wait."""
    title = translate(request, exc.title)
    shown = set(fields)
    field_errors: dict[str, str] = {}
    if exc.code == "weak_password":
        for name in {err.field for err in exc.errors} & shown:
            text = _password_error(request, [err.message for err in exc.errors if err.field == name])
            if text:
                field_errors[name] = text
    for err in exc.errors:
        name = "accept" if err.field.startswith("agreements.") else _FIELD_ALIASES.get(err.field, err.field)
        if name in shown:
            # A refusal that names its category says which (account-information review), never the words.
            field_errors.setdefault(name, title if not err.category else translate(
                request, "Cannot be used: %(reason)s.", reason=translate(request, err.message)))
    wait = int(exc.extra.get("retry_after", 0) or 0) if exc.status == 429 else 0
    alert = None if field_errors else title
    if wait:
        alert = f"{title}{_space(request)}{wait_message(request, wait, exc.extra.get('limit'))}"
    return FormState(values=values, alert=alert, errors=field_errors, wait=wait, status=exc.status, code=exc.code)


def _space(request: Request) -> str:
    """Between two sentences: nothing in Chinese (no stray spaces after "。"), a space in English."""
    return "" if http.language(request) == "zh-CN" else " "


def sentences(request: Request, parts: Iterable[str | None]) -> str:
    """Sentences one after another: joined without spaces in Chinese ("已暂停。原因：…"), with in English."""
    return _space(request).join(p for p in parts if p)


def duration(request: Request, seconds: int) -> str:
    """A wait as people say it: seconds under a minute and a half, then minutes, then hours."""
    if seconds < 90:
        return translate(request, "%(count)s seconds", count=max(1, seconds))
    minutes = -(-seconds // 60)
    if minutes < 120:
        return translate(request, "%(count)s minutes", count=minutes)
    return translate(request, "%(count)s hours", count=-(-minutes // 60))


def wait_message(request: Request, seconds: int, limit: dict | None = None) -> str:
    """"Please try again in 53 minutes (at most 5 an hour)." """
    text = translate(request, "Please try again in %(time)s.", time=duration(request, seconds))
    if limit and limit.get("per") in ("hour", "day"):
        rule = (translate(request, "at most %(count)s an hour", count=limit["count"]) if limit["per"] == "hour"
                else translate(request, "at most %(count)s a day", count=limit["count"]))
        text = translate(request, "Please try again in %(time)s (%(rule)s).", time=duration(request, seconds),
                         rule=rule)
    return text


def code_sent_form(request: Request, sent: dict[str, Any], values: dict[str, str] | None = None) -> FormState:
    """The form again after a code went out (``sent``: the code service's answer): how long the code
    holds, and the wait before the button works again."""
    notice = translate(request, "Code sent. It is valid for %(minutes)s minutes.", minutes=sent["expires_in"] // 60)
    return FormState(values=values or {}, notice=notice, wait=sent["resend_after"])


# Pages holding a "send code" button, by code purpose: the no-JS /send-code handler re-renders the
# page the user came from. Each page module lists its own in ``CODE_FORMS``; app.py gathers them
# into ``app.state.code_forms``.
CodeFormPage = Callable[[Request, FormState], Response]


def code_form(request: Request, purpose: str) -> CodeFormPage | None:
    return request.app.state.code_forms.get(purpose)


def qr_image(uri: str) -> str:
    """An otpauth URI as an SVG data URI drawn here (the secret never leaves the service)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=5, border=4, dark="#000", light="#fff",
                                    xmldecl=False)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# --- public pages ----------------------------------------------------------------------------------

def customer_service(request: Request) -> dict[str, str]:
    """The operator's customer-service contact (PASSPORT_CUSTOMER_SERVICE_*, PASSPORT_OPERATOR_ADDRESS):
    the footer, the error and suspension pages and /support show it; empty values are left out."""
    s = runtime(request).settings
    shown = {"phone": s.customer_service_phone, "email": s.customer_service_email,
             "hours": s.customer_service_hours, "address": s.operator_address}
    return {key: value for key, value in shown.items() if value}


def error_page(request: Request, exc: errors.DomainError, *, plain: bool = False) -> HTMLResponse:
    # Any path can end here (a 404): the language links go to the start page, not back to it.
    response = render(request, "error.html", exc.status, page_path="/", gate=False, plain=plain,
                      title=translate(request, exc.title), error_status=exc.status,
                      retry_after=exc.extra.get("retry_after"),
                      retry_text=wait_message(request, int(exc.extra["retry_after"]), exc.extra.get("limit"))
                      if exc.extra.get("retry_after") else None)
    for name, value in exc.headers.items():
        response.headers[name] = value
    return response


@dev_router.get("/dev/outbox")
def dev_outbox(request: Request) -> Response:
    """PASSPORT_ENV=dev only: the SMS messages the outbox sender 'sent', newest first, in full."""
    settings = runtime(request).settings
    if not getattr(request.app.state, "dev_tools", False):  # app.py: only an app made for PASSPORT_ENV=dev
        return error_page(request, errors.not_found("page"))
    messages = list(reversed(OutboxSms(settings.outbox_dir).read()))
    return render(request, "outbox.html", messages=messages)
