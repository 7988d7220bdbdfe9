"""Pages of single sign-on: the authorization endpoint the apps send users to (login, then the consent
screen), RP-initiated logout, the user's "authorised apps" page and the operators' app registry."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AccessDeniedError
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from passport import errors, guards
from passport.admin.service import StaffPrincipal
from passport.oidc import provider, service
from passport.sessions import service as sessions
from passport.web import html as web
from passport.web.html import CheckedForm, FormState

router = APIRouter(include_in_schema=False)

AUTHORIZE = "/oauth/authorize"
# The authorization request's own parameters: kept through the login steps and the consent form.
REQUEST_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
                  "code_challenge_method", "prompt", "max_age", "login_hint", "ui_locales", "login_after")
AppsStaff = Annotated[StaffPrincipal, Depends(guards.staff_page("apps.manage"))]


def invalid_request() -> errors.DomainError:
    return errors.DomainError("invalid_authorization_request",
                              "This sign-in request from an app is not valid. Go back to the app and try again.", 400)


def _to_app(request: Request, answer: provider.Answer) -> Response:
    """Back to the app (the code or the error on its redirect URI): a 302, except after a form of ours
    (the consent screen, the login steps that redirected here): browsers apply the page's CSP
    ``form-action 'self'`` to every redirect a form submission leads to, so those get a page that
    moves on by itself (a meta refresh, no script) with a link as well."""
    _status, _body, headers = answer
    location = dict(headers).get("Location")
    if request.method == "POST" or request.headers.get("sec-fetch-site") == "same-origin":
        return web.render(request, "oidc_continue.html", location=location, plain=True)
    return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})


def _error(request: Request, server: provider.Provider, received, error: OAuth2Error) -> Response:
    """An error the app may hear about goes to its (validated) redirect URI; one about the app itself
    (unknown client, unregistered redirect URI) is shown here and never redirected."""
    answer = server.handle_error_response(received, error)
    if any(name == "Location" for name, _ in answer[2]):
        return _to_app(request, answer)
    return web.error_page(request, invalid_request())


def _ui_language(request: Request) -> str | None:
    for tag in request.query_params.get("ui_locales", "").split():
        if tag.lower().startswith("en"):
            return "en"
        if tag.lower().startswith("zh"):
            return "zh-CN"
    return None


def _login_redirect(request: Request, params: dict[str, str], *, fresh: bool) -> Response:
    """To the login page, which comes back here after the password, SMS code and authenticator steps.
    ``fresh`` (prompt=login, max_age passed): the sign-in must be newer than now."""
    kept = {k: v for k, v in params.items() if k in REQUEST_PARAMS and k != "prompt"}
    if params.get("prompt") and "login" not in params["prompt"].split():
        kept["prompt"] = params["prompt"]
    if fresh:
        kept["login_after"] = str(int(web.runtime(request).clock.now().timestamp() * 1000))  # ms
    target = {"next": f"{AUTHORIZE}?{urlencode(kept)}"}
    if params.get("login_hint"):
        target["login_hint"] = params["login_hint"][:254]
    if lang := _ui_language(request):
        target["lang"] = lang
    return web.redirect(request, f"/login?{urlencode(target)}")


def _wants_fresh_login(params: dict[str, str], user: provider.EndUser, now: float) -> bool:
    """prompt=login sent the user to sign in after ``login_after`` (ms); ``max_age`` (s) has passed."""
    auth = user.auth_time.timestamp()
    after = params.get("login_after", "")
    if after.isdigit() and auth * 1000 < int(after):
        return True
    max_age = params.get("max_age", "")
    return max_age.isdigit() and auth + int(max_age) < now


def _received(request: Request, items: list[tuple[str, str]], user=None) -> provider.HttpRequest:
    issuer = provider.provider(web.runtime(request)).issuer  # https in prod: what Authlib checks the transport of
    return provider.HttpRequest("GET", issuer + request.url.path, request.headers, items, [], user)


def _authorize(request: Request, items: list[tuple[str, str]], decision: str | None) -> Response:
    rt = web.runtime(request)
    server = provider.provider(rt)
    params = dict(items)
    principal = guards.current_principal(request)  # the re-consent gate first (a 303 to it)
    if decision is None and (lang := _ui_language(request)) and request.query_params.get("lang") != lang:
        return web.redirect(request, f"{AUTHORIZE}?{urlencode(items + [('lang', lang)])}")
    consent = None
    actor = ("user", principal.account_id) if principal else ("anonymous", None)
    with server.run(web.web_origin(request), actor=actor) as work:
        user = provider.end_user(rt, work.db, principal.account_id, principal.session_id) if principal else None
        received = _received(request, items, user)
        try:
            grant = server.get_consent_grant(received, end_user=user)
        except OAuth2Error as error:
            return _error(request, server, received, error)
        oauth_request = grant.request
        app = oauth_request.client.app
        prompts = (params.get("prompt") or "").split()
        state = params.get("state")
        fresh = decision is None and user is not None and (
            "login" in prompts or _wants_fresh_login(params, user, work.at.timestamp()))
        if principal is None or fresh:
            if "none" in prompts:
                return _error(request, server, oauth_request, _redirected(LoginRequiredError, grant, state))
            return _login_redirect(request, params, fresh=principal is not None)
        if user is None:  # signed in, but the account may not sign in to apps (e.g. a cancellation pending)
            return _error(request, server, oauth_request, _redirected(AccessDeniedError, grant, state))
        scopes = oauth_request.scope.split()
        if decision == "deny":
            service.record_refusal(work, user.id, app, scopes)
            return _error(request, server, oauth_request, _redirected(AccessDeniedError, grant, state))
        if decision != "allow":
            existing = service.grant_of(work.db, user.id, app.id)
            if service.needs_consent(app, existing, scopes, force="consent" in prompts):
                if "none" in prompts:
                    return _error(request, server, oauth_request, _redirected(ConsentRequiredError, grant, state))
                consent = {"app": service.app_view(app), "params": [(k, v) for k, v in items if k in REQUEST_PARAMS],
                           "items": service.consent_items(rt, app, user.account, scopes),
                           "nickname": user.account.nickname}
            elif existing is None or not set(scopes) <= set(existing.scopes):
                service.record_grant(work, user.id, app, scopes, "first_party")
        else:
            service.record_grant(work, user.id, app, scopes, "explicit")
        if consent is None:
            answer = server.create_authorization_response(oauth_request, grant_user=user, grant=grant)
    if consent is not None:  # rendered once the transaction is over
        return web.render(request, "oidc_consent.html", page_path=AUTHORIZE, **consent)
    return _to_app(request, answer)


def _redirected(error_class, grant, state: str | None) -> OAuth2Error:
    return error_class(redirect_uri=grant.redirect_uri or grant.request.payload.redirect_uri, state=state)


@router.get(AUTHORIZE)
def authorize(request: Request) -> Response:
    """The authorization endpoint (code flow): sign in first if needed, then the consent screen unless
    the user granted these scopes before (or a first-party app asks only for non-sensitive ones)."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return _authorize(request, items, None)


@router.post(AUTHORIZE)
def decide(request: Request, form: CheckedForm) -> Response:
    """The consent screen's answer (allow or deny), with the request's parameters it carried."""
    form.check()
    items = [(k, v) for k, v in form.items() if k in REQUEST_PARAMS]
    principal = guards.current_principal(request)
    if principal is None:
        return _login_redirect(request, dict(items), fresh=False)
    return _authorize(request, items, "allow" if form.get("decision") == "allow" else "deny")


# --- RP-initiated logout ----------------------------------------------------------------------------------

@router.get("/oauth/logout")
def logout(request: Request) -> Response:
    """RP-initiated logout: with a valid ``id_token_hint`` (signed by us; ``alg: none`` is refused) the
    browser's session ends and the user goes back to a registered ``post_logout_redirect_uri``;
    without one, the user is asked first."""
    rt = web.runtime(request)
    server = provider.provider(rt)
    received = _received(request, list(request.query_params.multi_items()))
    with server.run(web.web_origin(request)):
        try:
            checked = server.validate_endpoint_request("end_session", received)
        except OAuth2Error:
            return web.error_page(request, errors.DomainError(
                "invalid_logout_request", "This sign-out request from an app is not valid.", 400))
    principal = guards.current_principal(request, gate_applies=False)
    if checked.needs_confirmation:
        return web.render(request, "oidc_logout.html", app=checked.client.app if checked.client else None,
                          signed_in=principal is not None, done=False)
    app = checked.client.app if checked.client else None
    claims = checked.id_token_claims or {}
    if principal is not None and (claims.get("sid") in (None, principal.session_id)):
        _end(request, principal, app)
    if checked.redirect_uri:
        response = RedirectResponse(checked.redirect_uri, status_code=302, headers={"Cache-Control": "no-store"})
    else:
        response = web.render(request, "oidc_logout.html", app=app, signed_in=False, done=True)
    web.end_browser_session(request, response)
    return response


@router.post("/oauth/logout")
def confirm_logout(request: Request, form: CheckedForm) -> Response:
    form.check()
    principal = guards.current_principal(request, gate_applies=False)
    if principal is not None:
        _end(request, principal, None)
    response = web.render(request, "oidc_logout.html", app=None, signed_in=False, done=True)
    web.end_browser_session(request, response)
    return response


def _end(request: Request, principal: sessions.Principal, app) -> None:
    rt = web.runtime(request)
    try:
        sessions.revoke(rt, web.web_origin(request), principal, principal.session_id)
    except errors.DomainError:
        return  # ended meanwhile
    service.record_logout(rt, web.web_origin(request), principal.account_id, app)


# --- the user's authorised apps -------------------------------------------------------------------------

def apps_page(request: Request, principal: sessions.Principal, state: FormState) -> Response:
    return web.render(request, "oidc_apps.html", state.status, page_path="/account/apps", form=state,
                      apps=service.apps_of(web.runtime(request), principal.account_id))


@router.get("/account/apps")
def my_apps(request: Request, principal: guards.PageUser, done: str | None = None) -> Response:
    notice = web.translate(request, "Access withdrawn. The app was signed out.") if done == "revoked" else None
    return apps_page(request, principal, FormState(notice=notice))


@router.post("/account/apps/{client_id}/revoke")
def revoke_app(client_id: str, request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    try:
        form.check()
        service.revoke_grant(web.runtime(request), web.web_origin(request), principal.account_id, client_id)
    except errors.DomainError as exc:
        return apps_page(request, principal, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, "/account/apps?done=revoked")


# --- operators: the app registry -------------------------------------------------------------------------

APP_FIELDS = ("name", "owner", "redirect_uris", "backchannel_logout_uri")


def admin_apps_page(request: Request, staff, state: FormState, created: dict | None = None) -> Response:
    return guards.admin_render(request, "admin_apps.html", state.status, page_path="/admin/apps", staff=staff,
                               form=state, apps=service.list_apps(web.runtime(request)), created=created,
                               scopes=service.SCOPES)


@router.get("/admin/apps")
def admin_apps(request: Request, staff: AppsStaff, done: str | None = None) -> Response:
    notice = web.translate(request, "App disabled: its tokens were revoked.") if done == "disabled" else None
    return admin_apps_page(request, staff, FormState(notice=notice))


@router.post("/admin/apps")
def admin_create(request: Request, staff: AppsStaff, form: CheckedForm) -> Response:
    values = {name: form.get(name, "") for name in APP_FIELDS}
    chosen = [s for s in service.SCOPES if form.get(f"scope_{s}")]
    try:
        form.check()
        created = service.create_app(
            web.runtime(request), web.web_origin(request), name=values["name"], owner=values["owner"],
            redirect_uris=[u for u in values["redirect_uris"].split() if u], scopes=chosen or None,
            public=bool(form.get("public")), first_party=bool(form.get("first_party")),
            backchannel_logout_uri=values["backchannel_logout_uri"].strip() or None,
            grants=["client_credentials"] if form.get("client_credentials") else None,
            actor=("staff", staff.staff_id))
    except errors.DomainError as exc:
        return admin_apps_page(request, staff, web.failed_form(request, exc, values, APP_FIELDS))
    state = FormState(notice=web.translate(request, "App registered. Copy the client secret now: it is shown once."))
    return admin_apps_page(request, staff, state, created=created)


@router.post("/admin/apps/{client_id}/disable")
def admin_disable(client_id: str, request: Request, staff: AppsStaff, form: CheckedForm) -> Response:
    try:
        form.check()
        service.disable_app(web.runtime(request), web.web_origin(request), client_id, actor=("staff", staff.staff_id))
    except errors.DomainError as exc:
        return admin_apps_page(request, staff, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, "/admin/apps?done=disabled")
