"""The OpenID Connect protocol endpoints an app's library talks to (found through discovery):
``/.well-known/openid-configuration``, the JWKS, token, userinfo, revocation and introspection.
Their answers and errors are the ones RFC 6749, 7009, 7662 and OpenID Connect define (``{"error": …}``,
not problem+json), so they stay out of the OpenAPI document; the discovery document describes them.
The authorization and logout endpoints, which the user's browser visits, are pages (``pages.py``)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from passport.oidc import keys, provider, service
from passport.web import http

router = APIRouter(include_in_schema=False)

INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"', "Cache-Control": "no-store"}


def metadata(issuer: str) -> dict:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "jwks_uri": f"{issuer}/oauth/jwks",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "end_session_endpoint": f"{issuer}/oauth/logout",
        "scopes_supported": list(service.SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(service.GRANT_TYPES),
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": list(keys.ALGORITHMS),
        "token_endpoint_auth_methods_supported": [*provider.CLIENT_AUTH, "none"],
        "revocation_endpoint_auth_methods_supported": [*provider.CLIENT_AUTH, "none"],
        "introspection_endpoint_auth_methods_supported": provider.CLIENT_AUTH,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "ui_locales_supported": ["zh-CN", "en"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid",
                             "nickname", "preferred_username", "picture", "ip_region", "phone_number",
                             "phone_number_verified",
                             "phone_number_masked", "email", "email_verified", "realname_verified", "realname_level",
                             "name", "organizations", "account_status"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }


async def incoming(request: Request) -> provider.HttpRequest:
    """The request as Authlib's adaptation takes it (the form only of a form POST), once the client IP
    is within PASSPORT_OIDC_PER_IP_MINUTE (429 ``rate_limited`` otherwise)."""
    rt = http.runtime(request)
    await rt.limiter.hit_async(f"{rt.settings.oidc_per_ip_minute}/minute", "oidc-ip", http.client_ip(request) or "-")
    form: list[tuple[str, str]] = []
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        form = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
    return provider.HttpRequest(request.method, public_url(request), request.headers,
                                list(request.query_params.multi_items()), form)


def public_url(request: Request) -> str:
    """The request's URL under the issuer (PASSPORT_BASE_URL, https in prod): what Authlib checks the
    transport of, whatever the proxy in front forwarded."""
    return provider.provider(http.runtime(request)).issuer + request.url.path


def answer(result: provider.Answer | None) -> Response:
    status, body, headers = result if result is not None else (200, {}, [])
    headers = dict(headers)
    headers.setdefault("Cache-Control", "no-store")
    if isinstance(body, dict):
        headers.pop("Content-Type", None)
        return JSONResponse(body, status_code=status, headers=headers)
    return Response(body, status_code=status, headers=headers)


@router.get("/.well-known/openid-configuration")
async def discovery(request: Request) -> JSONResponse:
    rt = http.runtime(request)
    return JSONResponse(metadata(provider.provider(rt).issuer))


@router.get("/oauth/jwks")
def jwks(request: Request) -> JSONResponse:
    """The public signing keys: the active ones and retired ones still verifying unexpired tokens."""
    return JSONResponse(keys.jwks(http.runtime(request)))


def _protocol(request: Request, received: provider.HttpRequest, endpoint: str) -> Response:
    server = provider.provider(http.runtime(request))
    origin = http.origin(request, "api")
    if endpoint == "token":
        return answer(server.call(origin, lambda: server.create_token_response(received)))
    return answer(server.call(origin, lambda: server.create_endpoint_response(endpoint, received)))


@router.post("/oauth/token")
async def token(request: Request) -> Response:
    """authorization_code (with PKCE), refresh_token (rotated), client_credentials."""
    received = await incoming(request)
    return await run_in_threadpool(_protocol, request, received, "token")


@router.post("/oauth/revoke")
async def revoke(request: Request) -> Response:
    received = await incoming(request)
    return await run_in_threadpool(_protocol, request, received, "revocation")


@router.post("/oauth/introspect")
async def introspect(request: Request) -> Response:
    received = await incoming(request)
    return await run_in_threadpool(_protocol, request, received, "introspection")


@router.api_route("/oauth/userinfo", methods=["GET", "POST"])
def userinfo(request: Request) -> Response:
    """The claims of the token's scopes (OpenID Connect Core §5.3); 401 ``invalid_token`` otherwise."""
    info = service.userinfo(http.runtime(request), http.bearer_token(request))
    if info is None:
        return Response(json.dumps({"error": "invalid_token"}), status_code=401, headers=INVALID_TOKEN,
                        media_type="application/json")
    return JSONResponse(info, headers={"Cache-Control": "no-store"})
