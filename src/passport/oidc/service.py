"""Single sign-on (issue 19): the app registry, the user's grants and the consent ledger of sharing,
the claims an app receives, and what happens to apps when sessions end (token revocation and
back-channel logouts, sent by the worker).

The protocol itself (codes, tokens, ID tokens, PKCE, revocation, introspection) is Authlib's, wired in
``provider.py``; this module holds the rules that are passport's own."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from passport import errors
from passport.accounts import public as profiles
from passport.accounts import service as accounts
from passport.accounts.models import REAL_NAME
from passport.audit import service as audit
from passport.cancellation import service as cancellation
from passport.clock import rfc3339
from passport.db import new_id
from passport.identity.email import mask_email
from passport.identity.phone import mask_phone
from passport.identity.resident_id import mask_person_name
from passport.ipregion import resolver as ip_regions
from passport.oidc import keys
from passport.oidc.models import OidcApp, OidcCode, OidcConsent, OidcGrant, OidcLogout, OidcToken
from passport.realname.models import Organization, OrganizationAdmin
from passport.runtime import Runtime
from passport.security.tokens import b64, same, token_digest
from passport.sessions import service as sessions
from passport.work import SYSTEM, Work, unit_of_work

log = structlog.get_logger("passport.oidc")

SCOPES = ("openid", "profile", "phone", "email", "realname", "organizations", "status", "moderation")
USER_SCOPES = frozenset(SCOPES) - {"moderation"}
# Personal information beyond the profile: never shared without the user's consent, first party or not.
SENSITIVE_SCOPES = frozenset({"phone", "email", "realname", "organizations"})
# Claims an operator may allow an app on top of the defaults (then still only with the user's consent).
ALLOWABLE_CLAIMS = ("phone_number", "name")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
ALGORITHMS = ("RS256", "ES256")
# Account states that may sign in to an app (frozen, suspended, terminated and cancelled ones have no
# session; one cancelling gets no code either).
SIGN_IN_STATUSES = frozenset({"active", "restricted"})


def _invalid(code: str, title: str, field: str) -> errors.DomainError:
    return errors.invalid(code, title, field)


def app_not_found() -> errors.DomainError:
    return errors.DomainError("app_not_found", "No such app.", 404)


# --- pairwise subjects --------------------------------------------------------------------------------

def subject(rt: Runtime, sector: str, account_id: str) -> str:
    """The account's ``sub`` for apps of ``sector``: apps of different sectors cannot join users by it."""
    override = rt.settings.secret("oidc_subject_key")
    key = override.encode() if override else keys.subject_key(rt)
    return b64(hmac.digest(key, f"{sector}\x1f{account_id}".encode(), "sha256"))


# --- the app registry ---------------------------------------------------------------------------------

def _check_uri(rt: Runtime, uri: str, field: str) -> str:
    uri = (uri or "").strip()
    parts = urlsplit(uri)
    loopback = False
    try:
        loopback = parts.hostname in ("localhost",) or ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        loopback = parts.hostname == "localhost"
    ok = (parts.scheme == "https" or (parts.scheme == "http" and (loopback or rt.settings.is_dev))) and \
        bool(parts.hostname) and not parts.fragment and len(uri) <= 500
    if not ok:
        raise _invalid("invalid_redirect_uri", "A redirect URI is an absolute https:// URI without a fragment "
                                               "(http:// only for the loopback address).", field)
    return uri


def _check_scopes(scopes: list[str] | None) -> list[str]:
    chosen = list(dict.fromkeys(scopes or ["openid", "profile"]))
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown:
        raise _invalid("invalid_scope", "Unknown scope.", "scope")
    return chosen


def create_app(rt: Runtime, origin: audit.Origin, *, name: str, redirect_uris: list[str], public: bool = False,
               scopes: list[str] | None = None, first_party: bool = False, backchannel_logout_uri: str | None = None,
               grants: list[str] | None = None, owner: str | None = None,
               post_logout_redirect_uris: list[str] | None = None, allowed_claims: list[str] | None = None,
               resource_server: bool = False, id_token_alg: str = "RS256",  # noqa: S107 - an algorithm name
               sector: str | None = None,
               actor: tuple[str, str | None] = ("cli", None)) -> dict[str, Any]:
    """Register an app. The answer holds ``client_secret`` (confidential apps) once: only its digest is
    kept."""
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise _invalid("invalid_name", "The app name has 1 to 100 characters.", "name")
    uris = [_check_uri(rt, u, "redirect_uri") for u in dict.fromkeys(redirect_uris or [])]
    logout_uris = [_check_uri(rt, u, "post_logout_redirect_uri")
                   for u in dict.fromkeys(post_logout_redirect_uris or [])]
    chosen = _check_scopes(scopes)
    grant_types = ["authorization_code", "refresh_token"] if uris else []
    for extra in grants or []:
        if extra not in GRANT_TYPES:
            raise _invalid("invalid_grant_type", "Unknown grant type.", "grant")
        if extra not in grant_types:
            grant_types.append(extra)
    if not grant_types:
        raise _invalid("invalid_redirect_uri", "An app that signs users in needs a redirect URI.", "redirect_uri")
    if public and "client_credentials" in grant_types:
        raise _invalid("invalid_grant_type", "A public app cannot use client credentials.", "grant")
    if "moderation" in chosen and "client_credentials" not in grant_types:
        raise _invalid("invalid_scope", "The moderation scope is for service apps (client credentials).", "scope")
    claims = list(dict.fromkeys(allowed_claims or []))
    if any(c not in ALLOWABLE_CLAIMS for c in claims):
        raise _invalid("invalid_claim", "Allowed claims are phone_number and name.", "claim")
    if id_token_alg not in ALGORITHMS:
        raise _invalid("invalid_alg", "ID tokens are signed RS256 or ES256.", "id_token_alg")
    backchannel = _check_uri(rt, backchannel_logout_uri, "backchannel_logout_uri") if backchannel_logout_uri else None
    client_id = secrets.token_urlsafe(18)
    secret = None if public else secrets.token_urlsafe(32)
    sector = (sector or (urlsplit(uris[0]).hostname if uris else None) or client_id).strip().lower()[:255]
    now = rt.clock.now()
    app = OidcApp(id=new_id(), client_id=client_id, name=name, owner=(owner or "").strip()[:200] or None,
                  secret_hash=token_digest(secret) if secret else None, public=public, redirect_uris=uris,
                  post_logout_redirect_uris=logout_uris, scopes=chosen, grant_types=grant_types,
                  first_party=first_party, allowed_claims=claims, resource_server=resource_server,
                  backchannel_logout_uri=backchannel, id_token_alg=id_token_alg, sector=sector, status="active",
                  created_at=now, updated_at=now)
    with unit_of_work(rt, origin, actor=actor, at=now) as work:
        work.db.add(app)
        work.db.flush()
        work.audit("oidc.app.created", subject=("oidc_app", app.id),
                   details={"client_id": client_id, "name": name, "public": public, "scopes": chosen,
                            "grant_types": grant_types, "first_party": first_party, "allowed_claims": claims})
    shown = app_view(app)
    if secret:
        shown["client_secret"] = secret
    return shown


def app_view(app: OidcApp) -> dict[str, Any]:
    return {"client_id": app.client_id, "name": app.name, "owner": app.owner, "status": app.status,
            "public": app.public, "redirect_uris": list(app.redirect_uris),
            "post_logout_redirect_uris": list(app.post_logout_redirect_uris or []), "scopes": list(app.scopes),
            "grant_types": list(app.grant_types), "first_party": app.first_party,
            "allowed_claims": list(app.allowed_claims or []), "resource_server": app.resource_server,
            "backchannel_logout_uri": app.backchannel_logout_uri, "id_token_alg": app.id_token_alg,
            "sector": app.sector, "created_at": rfc3339(app.created_at)}


def list_apps(rt: Runtime) -> list[dict[str, Any]]:
    with rt.db.read() as db:
        return [app_view(a) for a in db.scalars(select(OidcApp).order_by(OidcApp.created_at.desc(), OidcApp.id))]


def find_app(db: Session, client_id: str | None) -> OidcApp | None:
    if not client_id or len(client_id) > 64:
        return None
    return db.scalars(select(OidcApp).where(OidcApp.client_id == client_id)).first()


def disable_app(rt: Runtime, origin: audit.Origin, client_id: str, *,
                actor: tuple[str, str | None] = ("cli", None)) -> dict[str, Any]:
    """The app stops at once: no code, no token, no userinfo; every token it holds is revoked."""
    now = rt.clock.now()
    with unit_of_work(rt, origin, actor=actor, at=now) as work:
        app = find_app(work.db, client_id)
        if app is None:
            raise app_not_found()
        app.status, app.updated_at = "disabled", now
        revoked = work.db.execute(update(OidcToken).where(OidcToken.app_id == app.id, OidcToken.revoked_at.is_(None))
                                  .values(revoked_at=now)).rowcount
        work.db.execute(update(OidcCode).where(OidcCode.app_id == app.id, OidcCode.used_at.is_(None))
                        .values(used_at=now))
        work.audit("oidc.app.disabled", subject=("oidc_app", app.id),
                   details={"client_id": client_id, "tokens_revoked": revoked})
        return app_view(app)


def rotate_secret(rt: Runtime, origin: audit.Origin, client_id: str, *,
                  actor: tuple[str, str | None] = ("cli", None)) -> dict[str, Any]:
    """A new client secret (shown once); the old one stops working at once."""
    now = rt.clock.now()
    secret = secrets.token_urlsafe(32)
    with unit_of_work(rt, origin, actor=actor, at=now) as work:
        app = find_app(work.db, client_id)
        if app is None:
            raise app_not_found()
        if app.public:
            raise errors.DomainError("public_app", "A public app has no client secret.", 409)
        app.secret_hash, app.updated_at = token_digest(secret), now
        work.audit("oidc.app.secret_rotated", subject=("oidc_app", app.id), details={"client_id": client_id})
        return app_view(app) | {"client_secret": secret}


def secret_matches(app: OidcApp, secret: str | None) -> bool:
    return bool(app.secret_hash and secret and len(secret) <= 128 and same(token_digest(secret), app.secret_hash))


# --- grants and the consent ledger -----------------------------------------------------------------------

def needs_consent(app: OidcApp, grant: OidcGrant | None, scopes: list[str], force: bool) -> bool:
    """Whether the user must be asked: always on ``prompt=consent``; never again for scopes already
    granted; a first-party app skips the screen for scopes that are not sensitive."""
    wanted = set(scopes) & USER_SCOPES
    if force:
        return True
    if grant is not None and wanted <= set(grant.scopes):
        return False
    return not (app.first_party and not (wanted & SENSITIVE_SCOPES))


def grant_of(db: Session, account_id: str, app_id: str) -> OidcGrant | None:
    return db.scalars(select(OidcGrant).where(OidcGrant.account_id == account_id, OidcGrant.app_id == app_id)).first()


def record_grant(work: Work, account_id: str, app: OidcApp, scopes: list[str], basis: str) -> None:
    """The user's decision to share (``explicit``: on the consent screen; ``first_party``: an app of
    the platform itself, non-sensitive scopes): the grant, a ledger row and the audit event."""
    given = sorted(set(scopes) & USER_SCOPES)
    grant = grant_of(work.db, account_id, app.id)
    if grant is None:
        work.db.add(OidcGrant(id=new_id(), account_id=account_id, app_id=app.id, scopes=given, granted_at=work.at))
    else:
        grant.scopes, grant.granted_at = sorted(set(grant.scopes) | set(given)), work.at
    _ledger(work, account_id, app, given, granted=True, basis=basis)
    work.audit("oidc.consent.granted", actor=("user", account_id), subject=("oidc_app", app.id),
               details={"client_id": app.client_id, "scopes": given, "basis": basis})


def record_refusal(work: Work, account_id: str, app: OidcApp, scopes: list[str]) -> None:
    given = sorted(set(scopes) & USER_SCOPES)
    _ledger(work, account_id, app, given, granted=False, basis="refused")
    work.audit("oidc.consent.refused", actor=("user", account_id), subject=("oidc_app", app.id),
               details={"client_id": app.client_id, "scopes": given})


def _ledger(work: Work, account_id: str, app: OidcApp, scopes: list[str], *, granted: bool, basis: str) -> None:
    origin = work.origin
    work.db.add(OidcConsent(account_id=account_id, app_id=app.id, granted=granted, scopes=scopes, basis=basis,
                            at=work.at, ip=origin.ip, user_agent=(origin.user_agent or "")[:512] or None,
                            channel=origin.channel))


def apps_of(rt: Runtime, account_id: str) -> list[dict[str, Any]]:
    """The apps the user granted: what each may receive, when it was granted and last received it."""
    with rt.db.read() as db:
        rows = db.execute(select(OidcGrant, OidcApp).join(OidcApp, OidcApp.id == OidcGrant.app_id)
                          .where(OidcGrant.account_id == account_id)
                          .order_by(OidcGrant.granted_at.desc(), OidcGrant.id)).all()
        return [{"client_id": app.client_id, "name": app.name, "owner": app.owner, "scopes": list(grant.scopes),
                 "claims": shared_claims(app, grant.scopes), "first_party": app.first_party,
                 "status": app.status, "granted_at": rfc3339(grant.granted_at),
                 "last_issued_at": rfc3339(grant.last_issued_at)} for grant, app in rows]


def shared_claims(app: OidcApp, scopes) -> list[str]:
    """What the app receives under ``scopes``, named as the consent screen and the apps page list it."""
    allowed = set(app.allowed_claims or [])
    names: list[str] = []
    for scope in scopes:
        names += {"openid": ["sub"], "profile": ["nickname", "picture", "ip_region"], "email": ["email"],
                  "status": ["account_status"],
                  "phone": ["phone_number" if "phone_number" in allowed else "phone_number_masked"],
                  "realname": ["realname_verified"] + (["name"] if "name" in allowed else []),
                  "organizations": ["organizations"]}.get(scope, [])
    return names


def revoke_grant(rt: Runtime, origin: audit.Origin, account_id: str, client_id: str) -> None:
    """The user withdraws an app's access: the grant goes, every token the app holds for the user is
    revoked, the app is sent a back-channel logout, and the ledger records the withdrawal."""
    now = rt.clock.now()
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        app = find_app(work.db, client_id)
        grant = grant_of(work.db, account_id, app.id) if app is not None else None
        if grant is None:
            raise app_not_found()
        work.db.delete(grant)
        revoked = _revoke_tokens(work.db, now, OidcToken.app_id == app.id, OidcToken.account_id == account_id)
        _queue_logout(rt, work.db, app, account_id, None, "grant_revoked", now)
        _ledger(work, account_id, app, list(grant.scopes), granted=False, basis="withdrawn")
        work.audit("oidc.grant.revoked", subject=("oidc_app", app.id),
                   details={"client_id": client_id, "tokens_revoked": revoked})


def ledger_of(db: Session, account_id: str) -> list[dict[str, Any]]:
    rows = db.execute(select(OidcConsent, OidcApp.client_id, OidcApp.name).join(OidcApp, OidcApp.id ==
                                                                                  OidcConsent.app_id)
                      .where(OidcConsent.account_id == account_id).order_by(OidcConsent.id)).all()
    return [{"client_id": client_id, "app": name, "granted": c.granted, "scopes": list(c.scopes), "basis": c.basis,
             "at": rfc3339(c.at), "ip": c.ip, "user_agent": c.user_agent, "channel": c.channel}
            for c, client_id, name in rows]


# --- claims --------------------------------------------------------------------------------------------

def claims(rt: Runtime, db: Session | None, app: OidcApp, account, scopes: list[str] | str) -> dict[str, Any]:
    """What the app receives about the account under ``scopes`` (the userinfo answer). Reads nothing
    but the organisations (with that scope only): the account row comes with the token."""
    scopes = scopes.split() if isinstance(scopes, str) else list(scopes)
    allowed = set(app.allowed_claims or [])
    cipher = rt.keys.cipher
    out: dict[str, Any] = {"sub": subject(rt, app.sector, account.id)}
    if "profile" in scopes:
        out["nickname"] = account.nickname
        out["preferred_username"] = account.nickname
        avatar = profiles.avatar_url(account)
        if avatar:
            out["picture"] = rt.settings.base_url.rstrip("/") + avatar
        if db is not None:  # the IP region of the last login (Art. 12), as the public profile shows it
            out["ip_region"] = ip_regions(rt.settings.ip_region_file).resolve(profiles.last_login_ip(db, account.id))
    if "phone" in scopes and account.phone_enc:
        phone = cipher.decrypt(account.phone_enc, accounts.PHONE_FIELD, account.id)
        if "phone_number" in allowed:
            out["phone_number"], out["phone_number_verified"] = phone, True
        else:
            out["phone_number_masked"] = mask_phone(phone)
    if "email" in scopes and account.email_enc:
        out["email"] = cipher.decrypt(account.email_enc, accounts.EMAIL_FIELD, account.id)
        out["email_verified"] = True
    if "realname" in scopes:
        out["realname_verified"] = account.real_name_status == "verified"
        out["realname_level"] = "person" if account.real_name_status == "verified" else "none"
        if "name" in allowed and account.real_name_status == "verified" and account.real_name_enc:
            out["name"] = cipher.decrypt(account.real_name_enc, REAL_NAME, account.id)
    if "organizations" in scopes and db is not None:
        rows = db.execute(select(Organization.id, Organization.name).join(
            OrganizationAdmin, OrganizationAdmin.organization_id == Organization.id)
            .where(OrganizationAdmin.account_id == account.id, OrganizationAdmin.accepted_at.is_not(None),
                   Organization.status == "verified").order_by(Organization.created_at)).all()
        out["organizations"] = [{"id": r.id, "name": r.name, "role": "administrator"} for r in rows]
    if "status" in scopes:
        out["account_status"] = "restricted" if account.status == "restricted" else "active"
    return out


def consent_items(rt: Runtime, app: OidcApp, account, scopes: list[str]) -> list[dict[str, Any]]:
    """The consent screen's list: each scope with exactly what the app will get, shown masked."""
    allowed = set(app.allowed_claims or [])
    cipher = rt.keys.cipher
    items = []
    for scope in scopes:
        item: dict[str, Any] = {"scope": scope, "sensitive": scope in SENSITIVE_SCOPES, "value": None, "full": False}
        if scope == "profile":
            item["value"] = account.nickname
        elif scope == "phone" and account.phone_enc:
            item["value"] = mask_phone(cipher.decrypt(account.phone_enc, accounts.PHONE_FIELD, account.id))
            item["full"] = "phone_number" in allowed
        elif scope == "email" and account.email_enc:
            item["value"] = mask_email(cipher.decrypt(account.email_enc, accounts.EMAIL_FIELD, account.id))
        elif scope == "realname":
            item["full"] = "name" in allowed
            if item["full"] and account.real_name_enc:
                item["value"] = mask_person_name(cipher.decrypt(account.real_name_enc, REAL_NAME,
                                                                account.id))
        items.append(item)
    return items


# --- tokens, sessions and logouts ------------------------------------------------------------------------

def _revoke_tokens(db: Session, now: datetime, *conditions) -> int:
    return db.execute(update(OidcToken).where(*conditions, OidcToken.revoked_at.is_(None))
                      .values(revoked_at=now)).rowcount


def revoke_family(db: Session, family_id: str, now: datetime) -> int:
    return _revoke_tokens(db, now, OidcToken.family_id == family_id)


def _queue_logout(rt: Runtime, db: Session, app: OidcApp, account_id: str, sid: str | None, reason: str,
                  now: datetime) -> bool:
    if not app.backchannel_logout_uri or app.status != "active":
        return False
    waiting = select(OidcLogout.id).where(OidcLogout.app_id == app.id, OidcLogout.account_id == account_id,
                                          OidcLogout.sent_at.is_(None), OidcLogout.failed_at.is_(None),
                                          or_(OidcLogout.sid.is_(None), OidcLogout.sid == sid)
                                          if sid else OidcLogout.sid.is_(None))
    if db.scalar(waiting.limit(1)) is not None:
        return False
    db.add(OidcLogout(id=new_id(), app_id=app.id, account_id=account_id, sub=subject(rt, app.sector, account_id),
                      sid=sid, reason=reason, created_at=now, next_at=now, attempts=0))
    return True


@sessions.on_sessions_ended
def _sessions_ended(rt: Runtime, db: Session, account_id: str, session_ids: tuple[str, ...] | None,
                    now: datetime) -> None:
    """Sessions ended (logout, revocation, a password change, a freeze, a suspension, termination,
    cancellation): the apps' tokens of those sessions are revoked and each app that was signed in under
    them and has a back-channel logout URI is queued a logout (``sid`` per session, or ``sub`` only
    when every session of the account ended)."""
    window = now - timedelta(days=rt.settings.oidc_refresh_token_days)
    where = [OidcToken.account_id == account_id, OidcToken.issued_at > window]
    if session_ids is not None:
        where.append(OidcToken.session_id.in_(session_ids))
    rows = db.execute(select(OidcToken.app_id, OidcToken.sid).where(*where).distinct()).all()
    if not rows:
        return
    _revoke_tokens(db, now, *where)
    apps = {a.id: a for a in db.scalars(select(OidcApp).where(OidcApp.id.in_({r.app_id for r in rows})))}
    targets = {(r.app_id, r.sid if session_ids is not None else None) for r in rows}
    queued = 0
    for app_id, sid in sorted(targets, key=lambda t: (t[0], t[1] or "")):
        queued += _queue_logout(rt, db, apps[app_id], account_id, sid, "session_ended", now)
    if queued:
        audit.record(db, at=now, action="oidc.logout.queued", origin=audit.Origin(channel="worker"),
                     actor_type="system", subject_type="account", subject_id=account_id,
                     details={"apps": queued, "sessions": len(session_ids) if session_ids is not None else "all"})


@sessions.on_session_moved
def _session_moved(db: Session, old_session_id: str, new_session_id: str) -> None:
    """A step-up or a password change gave the browser a new session token: the apps signed in under
    the old session id now hang on the new one (its later logout reaches them with the right ``sid``)."""
    db.execute(update(OidcToken).where(OidcToken.session_id == old_session_id).values(session_id=new_session_id))


# --- the personal-data export and the cancellation -------------------------------------------------------

@cancellation.export_section("apps")
def _export(rt: Runtime, db: Session, account_id: str) -> dict[str, Any]:
    grants = db.execute(select(OidcGrant, OidcApp).join(OidcApp, OidcApp.id == OidcGrant.app_id)
                        .where(OidcGrant.account_id == account_id)).all()
    return {"grants": [{"client_id": app.client_id, "app": app.name, "owner": app.owner, "scopes": list(g.scopes),
                        "claims": shared_claims(app, g.scopes), "granted_at": rfc3339(g.granted_at),
                        "last_issued_at": rfc3339(g.last_issued_at)} for g, app in grants],
            "consents": ledger_of(db, account_id)}


@cancellation.on_finalise
def _erase(work: Work, account_id: str) -> None:
    """Cancellation finalisation: grants, codes and tokens go (the ledger of decisions stays, naming
    only the account's pseudonymous id, as the agreements ledger does)."""
    db = work.db
    db.execute(delete(OidcGrant).where(OidcGrant.account_id == account_id))
    db.execute(delete(OidcCode).where(OidcCode.account_id == account_id))
    db.execute(delete(OidcToken).where(OidcToken.account_id == account_id))


# --- the worker: back-channel logouts ---------------------------------------------------------------------

def due_logouts(rt: Runtime, limit: int = 50) -> list[tuple[OidcLogout, OidcApp]]:
    now = rt.clock.now()
    with rt.db.read() as db:
        rows = db.execute(select(OidcLogout, OidcApp).join(OidcApp, OidcApp.id == OidcLogout.app_id)
                          .where(OidcLogout.sent_at.is_(None), OidcLogout.failed_at.is_(None),
                                 OidcLogout.next_at <= now).order_by(OidcLogout.next_at).limit(limit)).all()
        db.expunge_all()
        return [(job, app) for job, app in rows]


def logout_sent(rt: Runtime, job: OidcLogout, app: OidcApp, ok: bool, error: str | None) -> None:
    now = rt.clock.now()
    with unit_of_work(rt, audit.Origin(channel="worker"), actor=SYSTEM, at=now) as work:
        row = work.db.get(OidcLogout, job.id)
        if row is None or row.sent_at is not None:
            return
        row.attempts += 1
        if ok:
            row.sent_at = now
            work.audit("oidc.logout.sent", subject=("oidc_app", app.id),
                       details={"client_id": app.client_id, "account": row.account_id, "reason": row.reason,
                                "attempts": row.attempts})
            return
        row.last_error = (error or "failed")[:200]
        if row.attempts >= rt.settings.oidc_logout_attempts:
            row.failed_at = now
            work.audit("oidc.logout.failed", result="failed", subject=("oidc_app", app.id),
                       details={"client_id": app.client_id, "account": row.account_id, "error": row.last_error})
        else:
            row.next_at = now + timedelta(minutes=2 ** (row.attempts - 1))


def sweep(rt: Runtime, db: Session) -> int:
    """Codes a day past their expiry, tokens a day past their refresh lifetime, logouts sent a week ago."""
    now = rt.clock.now()
    day = timedelta(days=1)
    removed = db.execute(delete(OidcCode).where(OidcCode.expires_at < now - day)).rowcount
    removed += db.execute(delete(OidcToken).where(
        OidcToken.expires_at < now - day,
        or_(OidcToken.refresh_expires_at.is_(None), OidcToken.refresh_expires_at < now - day))).rowcount
    removed += db.execute(delete(OidcLogout).where(or_(OidcLogout.sent_at < now - 7 * day,
                                                       OidcLogout.failed_at < now - 7 * day))).rowcount
    return removed


def digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


# --- bearer access tokens: userinfo and the service apps' calls ---------------------------------------------

_BEARER = (select(OidcToken, OidcApp, accounts.Account)
           .join(OidcApp, OidcApp.id == OidcToken.app_id)
           .outerjoin(accounts.Account, accounts.Account.id == OidcToken.account_id)
           .where(OidcToken.access_hash == bindparam("digest")))


def _live(rt: Runtime, row, now: datetime) -> bool:
    token, app, account = row
    if token.revoked_at is not None or token.expires_at <= now or app.status != "active":
        return False
    return token.account_id is None or (account is not None and account.status in SIGN_IN_STATUSES)


def userinfo(rt: Runtime, access_token: str | None) -> dict[str, Any] | None:
    """The claims for a live access token with the ``openid`` scope (one indexed read: the token with
    its app and account; the profile scope adds the last login's row for the IP region, the
    organisations scope the organisations); None for any other token."""
    if not access_token or len(access_token) > 128:
        return None
    with rt.db.read() as db:
        row = db.execute(_BEARER, {"digest": token_digest(access_token)}).first()
        if row is None or not _live(rt, row, rt.clock.now()) or row[2] is None:
            return None
        token, app, account = row
        scopes = token.scope.split()
        if "openid" not in scopes:
            return None
        return claims(rt, db, app, account, scopes)


def service_app(rt: Runtime, access_token: str | None, scope: str) -> OidcApp | None:
    """The app holding a live client-credentials token with ``scope`` (e.g. ``moderation``), else None."""
    if not access_token or len(access_token) > 128:
        return None
    with rt.db.read() as db:
        row = db.execute(_BEARER, {"digest": token_digest(access_token)}).first()
        if row is None or not _live(rt, row, rt.clock.now()) or row[0].account_id is not None:
            return None
        return row[1] if scope in row[0].scope.split() else None


def record_logout(rt: Runtime, origin: audit.Origin, account_id: str, app: OidcApp | None) -> None:
    """RP-initiated logout, in the audit trail (the session's end is recorded by the sessions service)."""
    with unit_of_work(rt, origin, actor=("user", account_id)) as work:
        work.audit("oidc.logout", subject=("account", account_id),
                   details={"client_id": app.client_id if app is not None else None})


BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_SECONDS = 120


def logout_token(rt: Runtime, app: OidcApp, job: OidcLogout) -> str:
    """The logout token (OIDC Back-Channel Logout 1.0 §2.4): signed as the app's ID tokens are, with
    ``sub`` and, when one session ended, its ``sid``; never a ``nonce``."""
    now = int(rt.clock.now().timestamp())
    claims: dict[str, Any] = {"iss": rt.settings.base_url.rstrip("/"), "aud": app.client_id, "iat": now,
                              "exp": now + LOGOUT_TOKEN_SECONDS, "jti": secrets.token_urlsafe(16),
                              "sub": job.sub, "events": {BACKCHANNEL_EVENT: {}}}
    if job.sid:
        claims["sid"] = job.sid
    return keys.sign(rt, claims, app.id_token_alg, typ="logout+jwt")


def deliver_logouts(rt: Runtime, client: httpx.Client | None = None) -> int:
    """Send the due back-channel logouts (the worker, every round); returns how many were delivered."""
    jobs = due_logouts(rt)
    if not jobs:
        return 0
    delivered = 0
    with (client or httpx.Client(timeout=rt.settings.oidc_logout_timeout_seconds, follow_redirects=False)) as http:
        for job, app in jobs:
            error = None
            try:
                answer = http.post(app.backchannel_logout_uri, data={"logout_token": logout_token(rt, app, job)},
                                   headers={"Cache-Control": "no-store"})
                ok = answer.status_code in (200, 204)
                error = None if ok else f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                ok, error = False, type(exc).__name__
            logout_sent(rt, job, app, ok, error)
            delivered += ok
            log.info("oidc.logout", client_id=app.client_id, ok=ok, error=error)
    return delivered
