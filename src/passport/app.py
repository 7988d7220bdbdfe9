"""ASGI application factory: routers, middleware, error mapping."""

from __future__ import annotations

import gc
import ipaddress
import time
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from passport import __version__, errors, guards
from passport.accounts import api as accounts_api
from passport.accounts import pages as accounts_pages
from passport.admin import api as admin_api
from passport.admin import pages as admin_pages
from passport.agreements import api as agreements_api
from passport.agreements import pages as agreements_pages
from passport.audit import api as audit_api
from passport.audit import pages as audit_pages
from passport.cancellation import api as cancellation_api
from passport.cancellation import pages as cancellation_pages
from passport.credentials import api as credentials_api
from passport.credentials import pages as credentials_pages
from passport.moderation import api as moderation_api
from passport.notify import api as notify_api
from passport.notify import pages as notify_pages
from passport.notify.pages import MaintenanceGate
from passport.oidc import api as oidc_api
from passport.oidc import endpoints as oidc_endpoints
from passport.oidc import pages as oidc_pages
from passport.passwordless import api as passwordless_api
from passport.passwordless import pages as passwordless_pages
from passport.realname import api as realname_api
from passport.realname import pages as realname_pages
from passport.registration import api as registration_api
from passport.registration import pages as registration_pages
from passport.reports import api as reports_api
from passport.reports import pages as reports_pages
from passport.runtime import Runtime, build_runtime
from passport.security.tokens import same
from passport.sessions import api as sessions_api
from passport.sessions import pages as sessions_pages
from passport.settings import Settings
from passport.web import html as web
from passport.web import http
from passport.web import openapi as web_openapi
from passport.web.failures import Failures
from passport.web.http import problem
from passport.web.inputs import InputGuard

log = structlog.get_logger("passport.http")
STATIC_DIR = Path(__file__).parent / "web" / "static"
STATIC_PREFIX = "/static/"
# Routes that take a file (licence, ID document): their bodies may reach PASSPORT_UPLOAD_MAX_BYTES.
UPLOAD_PATHS = frozenset({"/api/v1/organizations", "/api/v1/me/real-name/manual", "/account/real-name",
                          "/api/v1/me/avatar", "/account/avatar", "/api/v1/admin/moderation/images",
                          "/admin/moderation/images",
                          "/organizations/new"})

# The one list of routers, in the order FastAPI tries them (the hottest first). No module registers
# routes as a side effect of being imported.
API_ROUTERS = tuple(m.router for m in (
    accounts_api, sessions_api, registration_api, credentials_api, agreements_api, audit_api, admin_api, notify_api,
    realname_api, cancellation_api, moderation_api, passwordless_api, oidc_api, reports_api))
PAGE_ROUTERS = tuple(m.router for m in (
    agreements_pages, notify_pages, realname_pages, cancellation_pages, accounts_pages, registration_pages,
    admin_pages, audit_pages, credentials_pages, sessions_pages, passwordless_pages, oidc_endpoints, oidc_pages,
    reports_pages))
# What every page's layout shows of the signed-in account (web/ asks, the domains answer).
PAGE_CONTEXT: tuple[web.ContextProcessor, ...] = (guards.page_context,)
# Page modules whose forms hold a "send code" button (the no-JavaScript /send-code re-renders them).
CODE_FORM_PAGES = (registration_pages, sessions_pages, credentials_pages)

# What FastAPI and Starlette raise themselves, with the stable code and the text the API answers: a body
# that cannot be read (bytes that are not UTF-8 JSON, a broken multipart form) is 400 ``malformed_body``.
FRAMEWORK_ERRORS = {400: ("malformed_body", "The request body could not be read."),
                    404: ("not_found", "Not found."), 405: ("method_not_allowed", "Method not allowed."),
                    413: ("body_too_large", "Request body too large.")}

REQUESTS = Counter("passport_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("passport_http_request_seconds", "HTTP request latency", ["route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


def create_app(settings: Settings | None = None, runtime: Runtime | None = None, *,
               freeze_gc: bool = False) -> FastAPI:
    settings = settings or (runtime.settings if runtime else Settings())
    owns_runtime = runtime is None
    rt = runtime or build_runtime(settings, pool_size=settings.database_pool_size, serving=True)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Sync routes run on AnyIO's thread pool (40 threads by default). As many threads as pooled
        # connections: past the pool, SQLAlchemy opens an overflow connection per checkout and
        # closes it at checkin — on PostgreSQL a new backend process for one request.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.database_pool_size
        if freeze_gc:
            # What the process holds once it has started (modules, routes, mappers, compiled statements:
            # ≈ 170,000 objects) lives as long as it does. Out of the collector's sight, a full collection
            # walks what requests left instead of all of it: ≈ 90 ms → 6 ms each, and /me's p99 under
            # load 83 → 20 ms (bench/README.md).
            gc.collect()
            gc.freeze()
        yield
        await rt.db.close_async()
        await rt.limiter.close_async()
        if owns_runtime:
            rt.close()

    # The docs are served only where PASSPORT_API_DOCS allows (off in prod by default); ``passport openapi``
    # builds the document from the routes either way.
    docs = settings.api_docs_enabled
    app = FastAPI(title="passport", version=__version__, lifespan=lifespan,
                  description="Account service of the Orginone platform (奥集能). Contract: API.md.",
                  docs_url="/api/docs" if docs else None, redoc_url=None,
                  openapi_url="/api/v1/openapi.json" if docs else None)
    app.state.runtime = rt
    app.state.trusted_proxies = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]

    _install_errors(app)
    _install_routes(app, settings)
    web_openapi.install(app)  # problem+json answers, codes and security in the document (issue 16)
    app.add_middleware(MaintenanceGate, runtime=rt)  # 503 during a maintenance window (notify/pages.py)
    # No control character in any string a client sends, before any route reads it (web/inputs.py).
    app.add_middleware(InputGuard)
    # The last added runs first: every answer, a 413 included, gets the security headers.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, upload_bytes=settings.upload_max_bytes,
                       upload_paths=UPLOAD_PATHS)
    # A request id for the logs; 503 when a dependency is down, 500 otherwise, as whole answers (web/failures.py).
    app.add_middleware(Failures, retry_after=settings.unavailable_retry_after_seconds)
    app.add_middleware(SecurityHeaders, hsts=not settings.is_dev)
    app.add_middleware(Metrics)
    return app


def serving_app() -> FastAPI:
    """The app of ``passport serve``: uvicorn's factory, called in each server process."""
    return create_app(freeze_gc=True)


def _install_routes(app: FastAPI, settings: Settings) -> None:
    # FastAPI tries routes in the order they were added, at a few microseconds each (≈ 200 routes):
    # the operations endpoints and the hottest API paths (login, the session's account) go first.
    _install_operations(app, settings)
    for router in API_ROUTERS:
        app.include_router(router, prefix="/api/v1")
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.state.dev_tools = settings.dev_tools
    if settings.dev_tools:  # PASSPORT_ENV=dev only: the outbox page shows every code in full
        app.include_router(web.dev_router)
    app.mount(STATIC_PREFIX.rstrip("/"), StaticFiles(directory=STATIC_DIR), name="static")
    app.state.page_context = PAGE_CONTEXT
    app.state.code_forms = {purpose: page for module in CODE_FORM_PAGES for purpose, page in module.CODE_FORMS.items()}


def _install_operations(app: FastAPI, settings: Settings) -> None:
    metrics_networks = [ipaddress.ip_network(n, strict=False) for n in settings.metrics_allow]
    metrics_token = (settings.secret("metrics_token") or "").encode()

    @app.get("/healthz", tags=["operations"], include_in_schema=True)
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {
        "description": "A dependency is down: the same body, `status` `unavailable` and the failing check.",
        "content": {"application/json": {}}}})
    def readyz(request: Request) -> JSONResponse:
        rt: Runtime = request.app.state.runtime
        checks = {}
        try:
            with rt.db.read() as db:
                db.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
            # The reason goes to the log, not to whoever asks (no driver or exception names).
            log.warning("readyz.unavailable", check="database", error=type(exc).__name__)
            checks["database"] = "unavailable"
        if rt.settings.redis_url:
            try:
                checks["redis"] = "ok" if rt.limiter.ping() else "unavailable"
            except Exception as exc:  # noqa: BLE001
                log.warning("readyz.unavailable", check="redis", error=type(exc).__name__)
                checks["redis"] = "unavailable"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse,
             responses={404: web_openapi.problems(not_found=404)[404] | {"content": {"text/html": {}}}})
    async def metrics(request: Request) -> PlainTextResponse:
        """Prometheus metrics: for clients in PASSPORT_METRICS_ALLOW (default loopback) or with
        ``Authorization: Bearer`` PASSPORT_METRICS_TOKEN; 404 for anyone else, as for an unknown path."""
        if not _may_read_metrics(request, metrics_networks, metrics_token):
            raise StarletteHTTPException(404)
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)


def _may_read_metrics(request: Request, networks: list, token: bytes) -> bool:
    given = http.bearer_token(request)
    if token and given is not None and same(given, token):
        return True
    peer = request.client.host if request.client else None
    trusted = request.app.state.trusted_proxies
    # A forwarded request from a proxy not in PASSPORT_TRUSTED_PROXIES (one on this host, say, whose
    # address is loopback) comes from someone else: its address is unknown, so it is not allowed.
    forwarded = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    if forwarded and not (peer and http.in_networks(peer, trusted)):
        return False
    client = http.client_ip(request)
    return client is not None and http.in_networks(client, networks)


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(web.Answered)
    async def answered(_request: Request, exc: web.Answered):
        return exc.response

    @app.exception_handler(errors.DomainError)
    async def domain_error(request: Request, exc: errors.DomainError):
        if http.wants_page(request):
            return web.error_page(request, exc)
        return problem(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        field_errors = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
            field_errors.append(errors.FieldError(".".join(loc) or "body", err.get("type", "invalid"),
                                                  err.get("msg", "invalid")))
        return problem(request, errors.DomainError("validation_failed", "Some fields are not valid.", 422,
                                                   field_errors))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code, title = FRAMEWORK_ERRORS.get(exc.status_code, ("http_error", str(exc.detail)))
        domain = errors.DomainError(code, title, exc.status_code)
        if http.wants_page(request):
            return web.error_page(request, domain)
        return problem(request, domain)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.error("http.unhandled", path=request.url.path, error=type(exc).__name__)
        return problem(request, errors.DomainError("internal_error", "Something went wrong on our side.", 500))


class SecurityHeaders:
    """ARCHITECTURE "Security baseline": strict CSP without inline script, framing denied, and
    ``Cache-Control: no-store`` on every answer that does not set its own (issue 15): API answers carry
    tokens, keys and personal data, pages the signed-in account; refusals, redirects and error pages
    too. Only the static files (no personal data) stay cacheable."""

    CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")

    def __init__(self, app, hsts: bool) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", self.CSP.encode()),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"x-content-type-options", b"nosniff"),
        ]
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        cacheable = scope.get("path", "").startswith(STATIC_PREFIX)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + self.headers
                if not cacheable and not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuse bodies over the limit (413), by Content-Length and while streaming."""

    def __init__(self, app, max_bytes: int, upload_bytes: int = 0, upload_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.default_bytes = max_bytes
        # File uploads (ARCHITECTURE: 5 MiB) plus room for the multipart envelope and the form fields.
        self.upload_bytes = max(max_bytes, upload_bytes + 64 * 1024 if upload_bytes else 0)
        self.upload_paths = upload_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        max_bytes = self.upload_bytes if scope.get("path") in self.upload_paths else self.default_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > max_bytes:
                return await self._refuse(scope, send, max_bytes)
        seen, too_large, started = 0, False, False

        async def counted_receive():
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    too_large = True
                    raise _TooLarge()
            return message

        async def guarded_send(message):
            # FastAPI turns an error while reading the body into its own 400; the 413 replaces it.
            nonlocal started
            if too_large and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not too_large or started:
                raise
        if too_large and not started:
            await self._refuse(scope, send, max_bytes)

    async def _refuse(self, scope, send, max_bytes: int) -> None:
        request = Request(scope)
        if http.wants_page(request):  # a form that posted too big a file gets a page, not JSON
            refused = errors.DomainError("body_too_large", "Request body too large.", 413)
            return await (await run_in_threadpool(web.error_page, request, refused))(scope, None, send)
        response = JSONResponse({"type": "https://passport.orginone.cn/problems/body-too-large",
                                 "title": "Request body too large.", "status": 413,
                                 "detail": f"The limit is {max_bytes} bytes.", "code": "body_too_large"},
                                status_code=413, media_type="application/problem+json")
        await response(scope, None, send)


class _TooLarge(Exception):
    pass


class Metrics:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def record_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(scope["method"], name, str(status)).inc()
            LATENCY.labels(name).observe(time.perf_counter() - started)
