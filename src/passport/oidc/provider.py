"""The OpenID Connect provider: Authlib's framework-agnostic authorization server, fed from passport's
tables. Authlib does the protocol (the authorization code grant with PKCE, refresh tokens, client
credentials, client authentication, ID tokens, revocation RFC 7009, introspection RFC 7662,
RP-initiated logout); this module answers its questions (which client, which code, save this token)
and keeps passport's rules: exact redirect URIs, S256 PKCE for public clients, single-use codes whose
reuse revokes what the first use got, refresh rotation whose reuse revokes the family, disabled apps
stopping at once, accounts that may not sign in getting nothing.

Handlers build a ``HttpRequest`` from what they received and get ``(status, body, headers)`` back: no
web framework here. Every call runs inside one unit of work (``Provider.run``), so a token request is
one transaction with its audit events; nothing secret is ever written to the log or the audit trail."""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, InvalidRequestError, TokenMixin, grants
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import AuthorizationCodeMixin
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.rpinitiated import EndSessionEndpoint
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import select, update

from passport.accounts.models import Account
from passport.audit import service as audit
from passport.db import new_id
from passport.oidc import keys, service
from passport.oidc.models import OidcApp, OidcCode, OidcGrant, OidcToken
from passport.runtime import Runtime
from passport.security.tokens import token_digest
from passport.sessions.models import LoginSession
from passport.work import ANONYMOUS, Work, unit_of_work

CLIENT_AUTH = ["client_secret_basic", "client_secret_post"]
# Authlib logs whole token responses and codes at DEBUG ("Issue token %r …"): never, whatever the level.
logging.getLogger("authlib").setLevel(logging.INFO)
_work: ContextVar[Work] = ContextVar("oidc_work")


def _now() -> datetime:
    return _work.get().at


def _db():
    return _work.get().db


# --- what Authlib asks about -------------------------------------------------------------------------------

class Client(ClientMixin):
    def __init__(self, app: OidcApp) -> None:
        self.app = app
        self.client_id = app.client_id
        self.id_token_signed_response_alg = app.id_token_alg
        self.client_metadata = {"post_logout_redirect_uris": list(app.post_logout_redirect_uris or [])}

    def get_client_id(self) -> str:
        return self.app.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # the request must name one, matched exactly

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """Every scope asked for must be registered for the app (no silent narrowing: asking for more
        is ``invalid_scope``); none asked: the app's scopes."""
        allowed = list(self.app.scopes)
        if not scope:
            return " ".join(allowed)
        wanted = list(dict.fromkeys(scope.split()))
        if any(s not in allowed for s in wanted):
            return None
        return " ".join(wanted)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.app.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return service.secret_matches(self.app, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.app.public:
            return method == "none"
        return method in CLIENT_AUTH

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.app.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.app.grant_types


@dataclass
class EndUser:
    """The signed-in account an authorization is for, with how and when it signed in."""

    account: Any
    session_id: str | None
    auth_time: datetime
    amr: list[str]
    acr: str
    app: Any = None  # the app an ID token is being made for

    @property
    def id(self) -> str:
        return self.account.id


class Code(AuthorizationCodeMixin):
    def __init__(self, row: OidcCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return int(self.row.auth_time.timestamp())

    def get_acr(self) -> str | None:
        return self.row.acr

    def get_amr(self) -> list[str] | None:
        return self.row.amr.split() if self.row.amr else None


class Token(TokenMixin):
    def __init__(self, row: OidcToken, app: OidcApp) -> None:
        self.row = row
        self.app = app

    def check_client(self, client: Client) -> bool:
        return client.app.id == self.row.app_id

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return int((self.row.expires_at - self.row.issued_at).total_seconds())

    def is_expired(self) -> bool:
        return self.row.expires_at <= _now()

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None

    def get_user(self):
        return self.row.account_id

    def get_client(self) -> Client:
        return Client(self.app)


def amr_of(method: str | None, account) -> tuple[list[str], str]:
    """RFC 8176 method references and our assurance level of a session: a password or SMS code, and
    the authenticator code an account with two-step verification always passes as well."""
    amr = {"password": ["pwd"], "sms_code": ["sms"], "register": ["sms", "pwd"]}.get(method or "", ["pwd"])
    if getattr(account, "totp_enabled_at", None) is not None and method in ("password", "sms_code"):
        return [*amr, "otp", "mfa"], "urn:orginone:passport:loa:2"
    return amr, "urn:orginone:passport:loa:1"


def end_user(rt: Runtime, db, account_id: str, session_id: str | None) -> EndUser | None:
    """The account (if it may still sign in to apps) with its session's sign-in time and methods."""
    account = db.get(Account, account_id)
    if account is None or account.status not in service.SIGN_IN_STATUSES:
        return None
    session = db.get(LoginSession, session_id) if session_id else None
    auth_time = session.created_at if session is not None else rt.clock.now()
    amr, acr = amr_of(session.method if session is not None else None, account)
    return EndUser(account, session_id, auth_time, amr, acr)


# --- grants -----------------------------------------------------------------------------------------------

class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [*CLIENT_AUTH, "none"]

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        user: EndUser = request.user
        data = request.payload.data
        now = _now()
        rt = self.server.rt
        _db().add(OidcCode(code_hash=token_digest(code), app_id=request.client.app.id, account_id=user.id,
                           session_id=user.session_id, redirect_uri=request.payload.redirect_uri,
                           scope=request.scope, nonce=data.get("nonce"), code_challenge=data.get("code_challenge"),
                           code_challenge_method=data.get("code_challenge_method") or (
                               "S256" if data.get("code_challenge") else None),
                           auth_time=user.auth_time, amr=" ".join(user.amr), acr=user.acr, created_at=now,
                           expires_at=now + timedelta(seconds=rt.settings.oidc_code_seconds)))

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        """Claim the code (one UPDATE: of two exchanges at once, one wins). A code used before is
        refused and everything its first use got is revoked (RFC 6749 §4.1.2)."""
        db, now = _db(), _now()
        if not code or len(code) > 128:
            return None
        digest = token_digest(code)
        claimed = db.execute(update(OidcCode).where(
            OidcCode.code_hash == digest, OidcCode.app_id == client.app.id, OidcCode.used_at.is_(None),
            OidcCode.expires_at > now).values(used_at=now)).rowcount
        row = db.scalars(select(OidcCode).where(OidcCode.code_hash == digest,
                                                OidcCode.app_id == client.app.id)).first()
        if claimed == 1:
            return Code(row)
        if row is not None and row.used_at is not None and row.used_at < now:
            families = db.scalars(select(OidcToken.family_id).where(OidcToken.code_id == row.id).distinct()).all()
            revoked = sum(service.revoke_family(db, f, now) for f in families)
            _work.get().audit("oidc.code.reused", result="refused", subject=("oidc_app", client.app.id),
                              details={"client_id": client.app.client_id, "account": row.account_id,
                                       "tokens_revoked": revoked})
        return None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        """Kept, marked used, until the sweep: a second use must be recognised."""

    def authenticate_user(self, authorization_code: Code) -> EndUser | None:
        row = authorization_code.row
        user = end_user(self.server.rt, _db(), row.account_id, row.session_id)
        if user is not None:
            user.auth_time = row.auth_time
        return user


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [*CLIENT_AUTH, "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every refresh gives a new refresh token

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        """The refresh token's row, claimed for this one refresh. A token already used (rotated away)
        is a sign it was copied: its whole family is revoked, the legitimate holder's too."""
        db, now = _db(), _now()
        client: Client = self.request.client
        if not refresh_token or len(refresh_token) > 128:
            return None
        row = db.scalars(select(OidcToken).where(OidcToken.refresh_hash == token_digest(refresh_token),
                                                 OidcToken.app_id == client.app.id)).first()
        if row is None:
            return None
        claimed = 0
        if row.refresh_used_at is None and row.revoked_at is None:
            claimed = db.execute(update(OidcToken).where(OidcToken.id == row.id, OidcToken.refresh_used_at.is_(None))
                                 .values(refresh_used_at=now)).rowcount
        if claimed != 1 and (row.refresh_used_at is not None or row.revoked_at is None):
            revoked = service.revoke_family(db, row.family_id, now)
            _work.get().audit("oidc.refresh.reused", result="refused", subject=("oidc_app", client.app.id),
                              details={"client_id": client.app.client_id, "account": row.account_id,
                                       "family": row.family_id, "tokens_revoked": revoked})
            return None
        if claimed != 1 or (row.refresh_expires_at is not None and row.refresh_expires_at <= now):
            return None
        db.refresh(row)
        return Token(row, client.app)

    def authenticate_user(self, refresh_token: Token) -> EndUser | None:
        row = refresh_token.row
        user = end_user(self.server.rt, _db(), row.account_id, row.session_id) if row.account_id else None
        if user is not None and row.auth_time is not None:
            user.auth_time = row.auth_time
        return user

    def revoke_old_credential(self, refresh_token: Token) -> None:
        _db().execute(update(OidcToken).where(OidcToken.id == refresh_token.row.id, OidcToken.revoked_at.is_(None))
                      .values(revoked_at=_now()))


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH


class PKCE(CodeChallenge):
    """S256 only; required of public clients at the authorization endpoint already."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri) -> None:
        request = grant.request
        if request.client.app.public and not request.payload.data.get("code_challenge"):
            raise InvalidRequestError("A public client must send 'code_challenge' (PKCE, S256).")
        super().validate_code_challenge(grant, redirect_uri)


class OpenID(OpenIDCode):
    def __init__(self, server: Provider) -> None:
        super().__init__(require_nonce=False)
        self.server = server

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        if len(nonce) > 255:
            return True  # refused as a replay: longer than we keep
        return _db().scalar(select(OidcCode.id).join(OidcApp, OidcApp.id == OidcCode.app_id).where(
            OidcApp.client_id == request.payload.client_id, OidcCode.nonce == nonce).limit(1)) is not None

    def resolve_client_private_key(self, client: Client):
        return keys.signing_key(self.server.rt, client.app.id_token_alg)

    def get_client_algorithm(self, client: Client) -> str:
        return client.app.id_token_alg

    def get_encode_header(self, client: Client) -> dict:
        key = keys.signing_key(self.server.rt, client.app.id_token_alg)
        return {"alg": key.alg, "kid": key.kid}

    def get_client_claims(self, client: Client) -> dict:
        now = int(self.server.rt.clock.now().timestamp())  # the clock auth_time was read from
        return {"iss": self.server.issuer, "aud": [client.app.client_id], "iat": now,
                "exp": now + self.server.rt.settings.oidc_id_token_seconds}

    def generate_user_info(self, user: EndUser, scope: str) -> dict:
        """The ID token carries who (the pairwise ``sub``) and the session (``sid``); what the app may
        know about the account comes from the userinfo endpoint."""
        info = {"sub": self.server.subject(user.app, user.id)}
        if user.session_id:
            info["sid"] = user.session_id
        return info

    def encode_id_token(self, token, request: OAuth2Request):
        request.user.app = request.client.app
        return super().encode_id_token(token, request)


# --- endpoints ----------------------------------------------------------------------------------------------

class _TokenLookup:
    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        if not token_string or len(token_string) > 128:
            return None
        digest = token_digest(token_string)
        column = {"access_token": (OidcToken.access_hash,), "refresh_token": (OidcToken.refresh_hash,)}.get(
            token_type_hint or "", (OidcToken.access_hash, OidcToken.refresh_hash))
        for col in column:
            found = _db().execute(select(OidcToken, OidcApp).join(OidcApp, OidcApp.id == OidcToken.app_id)
                                  .where(col == digest)).first()
            if found is not None:
                return Token(*found)
        return None


class Revocation(_TokenLookup, RevocationEndpoint):
    CLIENT_AUTH_METHODS = [*CLIENT_AUTH, "none"]

    def revoke_token(self, token: Token, request: OAuth2Request) -> None:
        """Revoking either token of a pair revokes its family (the refresh tokens it rotated into too)."""
        revoked = service.revoke_family(_db(), token.row.family_id, _now())
        _work.get().audit("oidc.token.revoked", subject=("oidc_app", token.app.id),
                          details={"client_id": token.app.client_id, "account": token.row.account_id,
                                   "tokens_revoked": revoked})


class Introspection(_TokenLookup, IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CLIENT_AUTH

    def check_permission(self, token: Token, client: Client, request: OAuth2Request) -> bool:
        """A token is introspected by its own app, or by a resource server; to anyone else it is inactive."""
        return client.app.id == token.row.app_id or client.app.resource_server

    def introspect_token(self, token: Token) -> dict:
        if token.app.status != "active":
            return {"active": False}
        row, app = token.row, token.app
        if row.account_id is not None:
            account = _db().get(Account, row.account_id)
            if account is None or account.status not in service.SIGN_IN_STATUSES:
                return {"active": False}
        answer = {"active": True, "client_id": app.client_id, "token_type": "Bearer", "scope": row.scope,
                  "iss": self.server.issuer, "exp": int(row.expires_at.timestamp()),
                  "iat": int(row.issued_at.timestamp())}
        if row.account_id is not None:
            answer["sub"] = self.server.subject(app, row.account_id)
            answer["aud"] = app.client_id
        return answer


class EndSession(EndSessionEndpoint):
    def get_server_jwks(self):
        return keys.loaded(self.server.rt).public

    def get_algorithms(self) -> list[str]:
        return list(keys.ALGORITHMS)  # never "none"

    def _validate_id_token_hint(self, id_token_hint: str) -> dict:
        """Signed by one of our published keys (RS256 or ES256; ``alg: none`` or a foreign key is
        refused), issued by us; an expired hint is still accepted (RP-Initiated Logout §2), with a
        little leeway for the clocks of the nodes."""
        try:
            claims = keys.verify(self.server.rt, id_token_hint)
            _HintClaims(leeway=120, iss={"essential": True, "value": self.server.issuer}).validate(claims)
        except JoseError as exc:
            raise InvalidRequestError(exc.description) from exc
        return claims

    def resolve_client_from_id_token_claims(self, id_token_claims: dict):
        aud = id_token_claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else list(aud or [])
        return self.server.query_client(audiences[0]) if len(audiences) == 1 else None

    def end_session(self, end_session_request) -> None:
        """The handler ends the browser's session itself (it knows the cookie)."""


class _HintClaims(JWTClaimsRegistry):
    def validate_exp(self, value: int) -> None:
        """An expired ID token still names the session to end."""


# --- the server ---------------------------------------------------------------------------------------------

class Payload(OAuth2Payload):
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._data: dict[str, str] = {}
        self._datalist: defaultdict[str, list] = defaultdict(list)
        for key, value in items:
            self._data.setdefault(key, value)
            self._datalist[key].append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list]:
        return self._datalist


@dataclass
class HttpRequest:
    """What a handler received: the method, the full URL, the headers, the query and the form."""

    method: str
    url: str
    headers: Any  # a case-insensitive mapping (Starlette's Headers)
    query: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] = field(default_factory=list)
    user: Any = None


class Request(OAuth2Request):
    def __init__(self, http: HttpRequest) -> None:
        super().__init__(method=http.method, uri=http.url, headers=http.headers)
        self.payload = Payload(http.query + http.form)
        self._args = dict(http.query)
        self._form = dict(http.form)
        self.user = http.user

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


Answer = tuple[int, Any, list[tuple[str, str]]]


class Provider(AuthorizationServer):
    def __init__(self, rt: Runtime) -> None:
        super().__init__(scopes_supported=list(service.SCOPES))
        self.rt = rt
        settings = rt.settings

        def expires_in(client: Client, grant_type: str) -> int:
            return settings.oidc_access_token_seconds

        self.register_token_generator("default", BearerTokenGenerator(
            lambda **_: secrets.token_urlsafe(32), lambda **_: secrets.token_urlsafe(32), expires_in))
        self.register_grant(AuthorizationCodeGrant, [PKCE(required=True), OpenID(self)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)
        self.register_endpoint(EndSession)

    @property
    def issuer(self) -> str:
        """PASSPORT_BASE_URL: the issuer, and the base of every endpoint in the discovery document."""
        return self.rt.settings.base_url.rstrip("/")

    # Authlib's questions
    def query_client(self, client_id: str) -> Client | None:
        app = service.find_app(_db(), client_id)
        return Client(app) if app is not None and app.status == "active" else None

    def save_token(self, token: dict, request: OAuth2Request) -> None:
        """A new token row; the family is the code's (a new one) or the refreshed token's."""
        db, now, rt = _db(), _now(), self.rt
        app: OidcApp = request.client.app
        user: EndUser | None = request.user
        previous: Token | None = getattr(request, "refresh_token", None)
        code: Code | None = getattr(request, "authorization_code", None)
        refresh = token.get("refresh_token")
        row = OidcToken(
            app_id=app.id, account_id=user.id if user else None, session_id=user.session_id if user else None,
            sid=previous.row.sid if previous else (user.session_id if user else None),
            family_id=previous.row.family_id if previous else new_id(),
            code_id=code.row.id if code else (previous.row.code_id if previous else None),
            access_hash=token_digest(token["access_token"]), refresh_hash=token_digest(refresh) if refresh else None,
            scope=token.get("scope") or "", issued_at=now, expires_at=now + timedelta(seconds=token["expires_in"]),
            refresh_expires_at=now + timedelta(days=rt.settings.oidc_refresh_token_days) if refresh else None,
            auth_time=user.auth_time if user else None, amr=" ".join(user.amr) if user else None,
            acr=user.acr if user else None)
        db.add(row)
        grant_type = request.payload.grant_type
        if user is not None:
            db.execute(update(OidcGrant).where(OidcGrant.account_id == user.id, OidcGrant.app_id == app.id)
                       .values(last_issued_at=now))
        _work.get().audit("oidc.token.issued", actor=("oidc_app", app.id),
                          subject=("account", user.id) if user else ("oidc_app", app.id),
                          details={"client_id": app.client_id, "grant_type": grant_type, "scope": row.scope,
                                   "family": row.family_id, "refresh": bool(refresh)})

    def subject(self, app: OidcApp, account_id: str) -> str:
        return service.subject(self.rt, app.sector, account_id)

    # the framework adaptation: our own request and answer types
    def create_oauth2_request(self, request: HttpRequest | Request) -> Request:
        return request if isinstance(request, Request) else Request(request)

    def create_json_request(self, request: HttpRequest) -> Request:
        return Request(request)

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Answer:
        return status, body, list(headers)

    def send_signal(self, name: str, *args, **kwargs) -> None:
        """Authlib's signals (client authenticated, token revoked): the audit events say it already."""

    @contextmanager
    def run(self, origin: audit.Origin, actor=ANONYMOUS) -> Iterator[Work]:
        """One unit of work for one protocol call; Authlib's callbacks find it through a context variable."""
        keys.loaded(self.rt)  # made (a write of its own) before the unit of work opens, if need be
        with unit_of_work(self.rt, origin, actor=actor) as work:
            reset = _work.set(work)
            try:
                yield work
            finally:
                _work.reset(reset)

    def call(self, origin: audit.Origin, action: Callable[[], Answer]) -> Answer:
        with self.run(origin):
            return action()


_providers: dict[int, Provider] = {}


def provider(rt: Runtime) -> Provider:
    """The runtime's provider (built once: the grants and endpoints are registered at start)."""
    found = _providers.get(id(rt))
    if found is None or found.rt is not rt:
        found = _providers[id(rt)] = Provider(rt)
    return found
