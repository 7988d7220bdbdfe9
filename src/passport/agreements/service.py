"""Agreement versions and the consent ledger (COMPLIANCE A1, A2)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from passport import errors
from passport.agreements.models import AgreementVersion, Consent
from passport.audit import service as audit
from passport.runtime import Runtime

REQUIRED_AT_REGISTRATION = ("user-agreement", "privacy-policy")
_KIND_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True)
class Version:
    kind: str
    version: str
    title: str
    digest: str
    effective_at: datetime
    requires_reconsent: bool
    body: str | None = None


def _plain(row: AgreementVersion, with_body: bool = False) -> Version:
    return Version(row.kind, row.version, row.title, row.digest, row.effective_at, row.requires_reconsent,
                   row.body if with_body else None)


def digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def publish(rt: Runtime, origin: audit.Origin, *, kind: str, version: str, title: str, body: str,
            effective_at: datetime | None = None, requires_reconsent: bool = False,
            actor_type: str = "system", actor_id: str | None = None) -> Version:
    if not kind or set(kind) - _KIND_CHARS or len(kind) > 32:
        raise errors.invalid("invalid_kind", "Kind is lower-case letters, digits and hyphens.", "kind")
    if not version or len(version) > 32 or not version.replace(".", "").replace("-", "").isalnum():
        raise errors.invalid("invalid_version", "Version is letters, digits, dots and hyphens.", "version")
    if not body.strip():
        raise errors.invalid("empty_body", "The document body is empty.", "body")
    now = rt.clock.now()
    row = AgreementVersion(kind=kind, version=version, title=title.strip()[:200] or kind, body=body,
                           digest=digest(body), effective_at=effective_at or now,
                           requires_reconsent=requires_reconsent, published_at=now)
    try:
        with rt.db.write() as db:
            db.add(row)
            db.flush()
            audit.record(db, at=now, action="agreement.published", origin=origin, actor_type=actor_type,
                         actor_id=actor_id, subject_type="agreement", subject_id=f"{kind}/{version}",
                         details={"digest": row.digest, "requires_reconsent": requires_reconsent})
    except IntegrityError:
        raise errors.DomainError("version_exists", "That version is already published.", 409) from None
    _versions_cache.clear()
    return _plain(row)


# Published versions change rarely; each process keeps them briefly. Publishing on this node
# clears the cache, other nodes see a new version within _CACHE_SECONDS.
_versions_cache: dict[str, tuple[float, list[Version]]] = {}
_CACHE_SECONDS = 10.0


def _all_versions(rt: Runtime, db: Session) -> list[Version]:
    key = rt.settings.resolved_database_url
    cached = _versions_cache.get(key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    rows = db.scalars(select(AgreementVersion).order_by(
        AgreementVersion.kind, AgreementVersion.effective_at.desc(), AgreementVersion.id.desc())).all()
    versions = [_plain(r) for r in rows]
    _versions_cache[key] = (time.monotonic() + _CACHE_SECONDS, versions)
    return versions


def _in_force(versions: list[Version], now: datetime) -> list[Version]:
    """The version in force for each kind: the newest whose effective time has come."""
    current: dict[str, Version] = {}
    for v in versions:
        if v.effective_at <= now:
            current.setdefault(v.kind, v)
    return list(current.values())


def current_versions(rt: Runtime, db: Session) -> list[Version]:
    return _in_force(_all_versions(rt, db), rt.clock.now())


def get_version(db: Session, kind: str, version: str | None, rt: Runtime) -> Version:
    if version is None:
        for v in current_versions(rt, db):
            if v.kind == kind:
                return get_version(db, kind, v.version, rt)
        raise errors.not_found("agreement")
    row = db.scalar(select(AgreementVersion).where(AgreementVersion.kind == kind,
                                                   AgreementVersion.version == version))
    if row is None:
        raise errors.not_found("agreement")
    return _plain(row, with_body=True)


def history(db: Session, kind: str) -> list[Version]:
    rows = db.scalars(select(AgreementVersion).where(AgreementVersion.kind == kind)
                      .order_by(AgreementVersion.effective_at.desc())).all()
    return [_plain(r) for r in rows]


def check_registration_acceptance(rt: Runtime, db: Session, accepted: dict[str, str] | None) -> list[Version]:
    """A1: the user must name the current user agreement and privacy policy versions."""
    current = {v.kind: v for v in current_versions(rt, db)}
    missing = [k for k in REQUIRED_AT_REGISTRATION
               if k not in current or (accepted or {}).get(k) != current[k].version]
    if missing:
        raise errors.DomainError(
            "agreements_required",
            "Please read and accept the current user agreement and privacy policy.",
            422,
            [errors.FieldError(f"agreements.{k}", "agreements_required",
                               f"current version: {current[k].version}" if k in current else "not published")
             for k in missing],
            extra={"required": [{"kind": k, "version": current[k].version} for k in REQUIRED_AT_REGISTRATION
                                if k in current]},
        )
    return [current[k] for k in REQUIRED_AT_REGISTRATION]


def record_consents(db: Session, account_id: str, versions: list[Version], origin: audit.Origin,
                    at: datetime) -> None:
    for v in versions:
        db.add(Consent(account_id=account_id, kind=v.kind, version=v.version, digest=v.digest, accepted_at=at,
                       ip=origin.ip, user_agent=(origin.user_agent or "")[:512] or None, channel=origin.channel))
        audit.record(db, at=at, action="consent.given", origin=origin, actor_type="user", actor_id=account_id,
                     subject_type="agreement", subject_id=f"{v.kind}/{v.version}", details={"digest": v.digest})


def pending_for(rt: Runtime, db: Session, account_id: str) -> list[dict]:
    """Current versions that require re-consent and that this account has not accepted (A3)."""
    needing = [v for v in current_versions(rt, db) if v.requires_reconsent]
    if not needing:
        return []
    accepted = set(db.execute(select(Consent.kind, Consent.version).where(
        Consent.account_id == account_id, Consent.kind.in_([v.kind for v in needing]))).tuples())
    return [{"kind": v.kind, "version": v.version} for v in needing if (v.kind, v.version) not in accepted]


def pending_cached(rt: Runtime, account_id: str) -> list[dict] | None:
    """[] when no current version asks for re-consent (known from the version cache, without I/O);
    None when the ledger must be read (``pending_of``)."""
    cached = _versions_cache.get(rt.settings.resolved_database_url)
    if not cached or cached[0] <= time.monotonic():
        return None
    return None if any(v.requires_reconsent for v in _in_force(cached[1], rt.clock.now())) else []


def pending_of(rt: Runtime, account_id: str) -> list[dict]:
    with rt.db.read() as db:
        return pending_for(rt, db, account_id)


def consents_of(db: Session, account_id: str) -> list[Consent]:
    return list(db.scalars(select(Consent).where(Consent.account_id == account_id)
                           .order_by(Consent.accepted_at.desc())))


# Optional purposes (A4), e.g. "marketing": issue 6 keeps them in the consent ledger.
OPTIONAL_PURPOSES = ("marketing",)


def purpose_granted(db: Session, account_id: str, purpose: str) -> bool:
    """Whether the account currently grants the optional ``purpose`` (notices ask before marketing)."""
    return False


def set_purpose(rt: Runtime, db: Session, account_id: str, purpose: str, granted: bool, origin: audit.Origin) -> None:
    """Grant or withdraw ``purpose`` in the caller's unit of work (ledger row + audit event)."""
    raise NotImplementedError("issue 6")
