"""Agreement versions and the consent ledger (COMPLIANCE A1, A2)."""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, defer

from passport import errors
from passport.agreements.models import AgreementVersion, Consent, PurposeConsent
from passport.audit import service as audit
from passport.clock import as_utc, rfc3339
from passport.notify import outbox
from passport.runtime import Runtime
from passport.work import Work, unit_of_work

REQUIRED_AT_REGISTRATION = ("user-agreement", "privacy-policy")
_KIND_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*", re.ASCII)
log = structlog.get_logger("passport.agreements")


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


MAX_BODY_CHARS = 200_000
# C0 controls other than TAB, LF and CR, and DEL: never part of a document a person reads.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def check_markdown(body: str) -> None:
    """Refuse a body that cannot be a readable document: empty, too long, control characters,
    or a code fence that is never closed (everything after it would render as code)."""
    if not body.strip():
        raise errors.invalid("empty_body", "The document body is empty.", "body")
    if len(body) > MAX_BODY_CHARS:
        raise errors.invalid("body_too_long", "The document body is too long.", "body")
    bad = _CONTROL.search(body)
    if bad:
        line = body.count("\n", 0, bad.start()) + 1
        raise errors.DomainError("invalid_markdown", "The Markdown is malformed.", 422,
                                 [errors.FieldError("body", "control_character", f"line {line}")])
    opened: tuple[str, int] | None = None
    for number, line in enumerate(body.splitlines(), 1):
        fence = _FENCE.match(line)
        if not fence:
            continue
        mark = fence.group(1)
        if opened is None:
            if mark[0] == "`" and "`" in line.strip()[len(mark):]:
                continue  # CommonMark: a backtick fence's info string has no backtick; this is inline code
            opened = (mark, number)
        elif mark[0] == opened[0][0] and len(mark) >= len(opened[0]) and not line.strip()[len(mark):].strip():
            opened = None
    if opened is not None:
        raise errors.DomainError("invalid_markdown", "The Markdown is malformed.", 422,
                                 [errors.FieldError("body", "unclosed_code_fence", f"line {opened[1]}")])


def check_names(kind: str, version: str) -> None:
    """A kind is a lower-case slug that starts with a letter; a version starts with a letter or digit
    and goes on with letters, digits, dots and hyphens. Both at most 32 characters (they are URL parts)."""
    if not kind or set(kind) - _KIND_CHARS or len(kind) > 32 or not kind[0].isalpha():
        raise errors.invalid("invalid_kind", "Kind is lower-case letters, digits and hyphens.", "kind")
    if not version or len(version) > 32 or not _VERSION.fullmatch(version):
        raise errors.invalid("invalid_version", "Version is letters, digits, dots and hyphens.", "version")


def publish(rt: Runtime, origin: audit.Origin, *, kind: str, version: str, title: str, body: str,
            effective_at: datetime | None = None, requires_reconsent: bool = False, immediate: bool = False,
            actor_type: str = "system", actor_id: str | None = None) -> Version:
    """Publish an immutable version. A version that requires re-consent blocks every user who has not
    accepted it once it takes effect, so it needs a future ``effective_at`` (notice before it bites,
    §二(三)) unless the publisher says ``immediate``."""
    check_names(kind, version)
    title = " ".join(title.split())
    if len(title) > 200:
        raise errors.invalid("title_too_long", "The title is longer than 200 characters.", "title")
    check_markdown(body)
    now = rt.clock.now()
    if effective_at is not None and effective_at.tzinfo is None:
        raise errors.invalid("invalid_effective_at", "The effective time needs a time zone.", "effective_at")
    when = as_utc(effective_at) if effective_at is not None else now
    if requires_reconsent and when <= now and not immediate:
        raise errors.invalid("effective_at_not_future",
                             "A version that requires re-consent needs a future effective time, or the "
                             "immediate flag.", "effective_at")
    title = title or next((line[2:].strip() for line in body.splitlines() if line.startswith("# ")), "")[:200]
    row = AgreementVersion(kind=kind, version=version, title=title or kind, body=body, digest=digest(body),
                           effective_at=when, requires_reconsent=requires_reconsent, published_at=now)
    try:
        with unit_of_work(rt, origin, actor=(actor_type, actor_id), at=now) as work:
            if work.db.scalar(select(AgreementVersion.id).where(AgreementVersion.kind == kind,
                                                                AgreementVersion.version == version)):
                raise IntegrityError("version exists", None, Exception())
            work.db.add(row)
            work.db.flush()
            work.audit("agreement.published", subject=("agreement", f"{kind}/{version}"),
                       details={"digest": row.digest, "requires_reconsent": requires_reconsent,
                                "effective_at": rfc3339(when), "immediate": immediate})
    except IntegrityError:
        raise errors.DomainError("version_exists", "That version is already published.", 409) from None
    _versions_cache.clear()
    log.info("agreement.published", kind=kind, version=version, requires_reconsent=requires_reconsent,
             effective_at=rfc3339(when))
    return _plain(row, with_body=True)


# Published versions change rarely; each process keeps them briefly. Publishing on this node
# clears the cache, other nodes see a new version within _CACHE_SECONDS.
_versions_cache: dict[str, tuple[float, list[Version]]] = {}
_CACHE_SECONDS = 10.0


def _all_versions(rt: Runtime, db: Session) -> list[Version]:
    key = rt.settings.resolved_database_url
    cached = _versions_cache.get(key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    rows = db.scalars(select(AgreementVersion).options(defer(AgreementVersion.body)).order_by(
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
    rows = db.scalars(select(AgreementVersion).options(defer(AgreementVersion.body))
                      .where(AgreementVersion.kind == kind)
                      .order_by(AgreementVersion.effective_at.desc(), AgreementVersion.id.desc())).all()
    return [_plain(r) for r in rows]


def acceptance_counts(db: Session) -> dict[tuple[str, str], int]:
    """How many accounts accepted each version (the admin console's list)."""
    rows = db.execute(select(Consent.kind, Consent.version, func.count()).group_by(Consent.kind, Consent.version))
    return {(kind, version): count for kind, version, count in rows}


def all_versions(db: Session) -> list[Version]:
    """Every published version, by kind, newest first (the admin console's list)."""
    rows = db.scalars(select(AgreementVersion).options(defer(AgreementVersion.body)).order_by(
        AgreementVersion.kind, AgreementVersion.effective_at.desc(), AgreementVersion.id.desc())).all()
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


def _consent_row(account_id: str, v: Version, origin: audit.Origin, at: datetime, basis: str = "explicit") -> Consent:
    return Consent(account_id=account_id, kind=v.kind, version=v.version, digest=v.digest, accepted_at=at,
                   ip=origin.ip, user_agent=(origin.user_agent or "")[:512] or None, channel=origin.channel,
                   basis=basis)


def record_consents(work: Work, account_id: str, versions: list[Version]) -> None:
    """The account's explicit acceptance of ``versions``, in the caller's unit of work (registration)."""
    for v in versions:
        work.db.add(_consent_row(account_id, v, work.origin, work.at))
        work.audit("consent.given", actor=("user", account_id), subject=("agreement", f"{v.kind}/{v.version}"),
                   details={"digest": v.digest})


def consent_view(c: Consent) -> dict:
    return {"kind": c.kind, "version": c.version, "digest": c.digest, "accepted_at": c.accepted_at, "ip": c.ip,
            "channel": c.channel, "basis": c.basis}


ACCEPTANCES = "60/hour"  # per account


def accept(rt: Runtime, origin: audit.Origin, account_id: str, kind: str, version: str) -> tuple[dict, bool]:
    """Record that the account accepts ``kind``/``version``, which must be the version in force.
    Returns (ledger entry, whether it was recorded now); accepting again, or twice at once, records
    once: the unique (account, kind, version) constraint decides the race."""
    rt.limiter.hit(ACCEPTANCES, "consent-accept", account_id)
    with rt.db.read() as db:
        target = get_version(db, kind, version, rt)
        current = next((v for v in current_versions(rt, db) if v.kind == kind), None)
    if current is None or current.version != target.version:
        raise errors.DomainError("version_not_current", "Only the version in force can be accepted.", 409,
                                 [errors.FieldError("version", "version_not_current",
                                                    f"current version: {current.version}" if current else
                                                    "not in force yet")],
                                 extra={"current": current.version if current else None})
    now = rt.clock.now()
    try:
        with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
            db = work.db
            existing = db.scalar(select(Consent).where(Consent.account_id == account_id, Consent.kind == kind,
                                                       Consent.version == version))
            if existing is not None:
                return consent_view(existing), False
            row = _consent_row(account_id, target, origin, now)
            db.add(row)
            db.flush()
            work.audit("consent.given", subject=("agreement", f"{kind}/{version}"), details={"digest": target.digest})
            return consent_view(row), True
    except IntegrityError:
        with rt.db.read() as db:
            existing = db.scalar(select(Consent).where(Consent.account_id == account_id, Consent.kind == kind,
                                                       Consent.version == version))
        if existing is None:
            raise
        return consent_view(existing), False


def accepted_versions(db: Session, account_id: str, kinds: list[str]) -> dict[str, list[str]]:
    """The versions of each kind the account accepted, newest acceptance first."""
    out: dict[str, list[str]] = {}
    rows = db.execute(select(Consent.kind, Consent.version).where(
        Consent.account_id == account_id, Consent.kind.in_(kinds)).order_by(Consent.accepted_at.desc(),
                                                                             Consent.id.desc()))
    for kind, version in rows:
        out.setdefault(kind, []).append(version)
    return out


# --- the re-consent gate (A3) ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Summary:
    """What the versions cache says for a span of time in which no version takes effect."""

    valid_from: datetime | None
    valid_until: datetime | None
    reconsent: tuple[Version, ...]  # in force, requires re-consent
    successors: tuple[Version, ...]  # in force, no re-consent asked, replacing an earlier version
    # Every version that has taken effect and required re-consent, current or since replaced: a later
    # version that asks for none does not let an account skip it (A3).
    required: tuple[Version, ...] = ()
    # Every version that has taken effect, by kind, newest first (the order of ``_in_force``).
    history: tuple[Version, ...] = ()


_summaries: dict[str, tuple[float, _Summary]] = {}


def _summarise(versions: list[Version], now: datetime) -> _Summary:
    in_force = _in_force(versions, now)
    started = [v.effective_at for v in versions if v.effective_at <= now]
    upcoming = [v.effective_at for v in versions if v.effective_at > now]
    kinds_with_history = {v.kind for v in versions if v.effective_at <= now and v not in in_force}
    history = tuple(v for v in versions if v.effective_at <= now)
    return _Summary(max(started) if started else None, min(upcoming) if upcoming else None,
                    tuple(v for v in in_force if v.requires_reconsent),
                    tuple(v for v in in_force if not v.requires_reconsent and v.kind in kinds_with_history),
                    tuple(v for v in history if v.requires_reconsent), history)


def _summary(rt: Runtime) -> _Summary | None:
    """The summary for now, from memory only; None when the cache must be refreshed first."""
    key = rt.settings.resolved_database_url
    cached = _versions_cache.get(key)
    if not cached or cached[0] <= time.monotonic():
        return None
    now = rt.clock.now()
    held = _summaries.get(key)
    if held is not None and held[0] == cached[0]:
        summary = held[1]
        if (summary.valid_from is None or summary.valid_from <= now) and (
                summary.valid_until is None or now < summary.valid_until):
            return summary
    summary = _summarise(cached[1], now)
    _summaries[key] = (cached[0], summary)
    return summary


def _load_summary(rt: Runtime, db: Session) -> _Summary:
    _all_versions(rt, db)
    summary = _summary(rt)
    return summary if summary is not None else _summarise(_all_versions(rt, db), rt.clock.now())


def _pending(summary: _Summary, accepted: set[tuple[str, str]]) -> list[dict]:
    """A3: for each kind, the version in force is pending when the account has not accepted it and a
    version that requires re-consent took effect after the newest version of that kind the account
    accepted (or the account accepted none). A later version that asks for no re-consent does not
    excuse the account from the one before it."""
    pending = []
    kinds = list(dict.fromkeys(v.kind for v in summary.required))
    current = {v.kind: v for v in summary.history[::-1]}  # the first of each kind in history wins
    for kind in kinds:
        in_force = current[kind]
        if (kind, in_force.version) in accepted:
            continue
        newer: list[Version] = []  # versions of this kind newer than the newest accepted one
        for v in summary.history:
            if v.kind != kind:
                continue
            if (kind, v.version) in accepted:
                break
            newer.append(v)
        if any(v.requires_reconsent for v in newer):
            pending.append({"kind": kind, "version": in_force.version})
    return pending


def pending_for(rt: Runtime, db: Session, account_id: str) -> list[dict]:
    """Versions in force this account must accept before going on (A3, ``_pending``)."""
    summary = _load_summary(rt, db)
    if not summary.required:
        return []
    key = (rt.settings.resolved_database_url, account_id)
    if _settled.get(key) == summary.required:
        return []
    accepted = {(kind, version) for kind, version in db.execute(select(Consent.kind, Consent.version).where(
        Consent.account_id == account_id, Consent.kind.in_({v.kind for v in summary.required})))}
    pending = _pending(summary, accepted)
    if not pending:  # acceptances are never taken back: clear until another version requires re-consent
        if len(_settled) >= _CONTINUED_MAX:
            _settled.clear()
        _settled[key] = summary.required
    return pending


def pending_cached(rt: Runtime, account_id: str) -> list[dict] | None:
    """[] when no version that took effect asks for re-consent, or this process already found the account
    with nothing to accept for the same such versions (known without I/O); None when the ledger must be
    read (``pending_of``)."""
    summary = _summary(rt)
    if summary is None:
        return None
    clear = not summary.required or _settled.get((rt.settings.resolved_database_url, account_id)) == summary.required
    return [] if clear else None


def pending_of(rt: Runtime, account_id: str) -> list[dict]:
    with rt.db.read() as db:
        return pending_for(rt, db, account_id)


# Accounts whose continued-use acceptance this process has settled, per version set: "once".
_continued: dict[tuple[str, str], tuple[Version, ...]] = {}
_CONTINUED_MAX = 50_000
# Accounts this process found with nothing to accept, per set of re-consent versions in force.
_settled: dict[tuple[str, str], tuple[Version, ...]] = {}


def _continued_candidates(summary: _Summary, account: Any) -> tuple[Version, ...]:
    """Versions the account may accept by continued use. Only asked once ``pending_for`` found nothing
    pending: a kind the account must accept explicitly (A3) never gets here."""
    created = getattr(account, "created_at", None)
    return tuple(v for v in summary.successors if created is None or v.effective_at > created)


def gate_is_clear(rt: Runtime, account_id: str, account: Any) -> bool:
    """True, without I/O, when nothing needs doing for this account: nothing to accept (``pending_cached``)
    and no continued-use acceptance to record. False means ``enforce`` must run."""
    summary = _summary(rt)
    if summary is None or pending_cached(rt, account_id) != []:
        return False
    candidates = _continued_candidates(summary, account)
    return not candidates or _continued.get((rt.settings.resolved_database_url, account_id)) == candidates


def enforce(rt: Runtime, origin: audit.Origin, account_id: str, account: Any, *, gated: bool) -> list[dict]:
    """When ``gated``, return the versions that still need the account's explicit acceptance (A3); when
    none do, record continued-use acceptance where due (§二(三)). A request the gate leaves open (reading
    the ledger, cancelling, exporting) or refuses is not use of the service and records nothing."""
    if not gated:
        return []
    with rt.db.read() as db:
        summary = _load_summary(rt, db)
        pending = pending_for(rt, db, account_id)
    if pending:
        return pending
    candidates = _continued_candidates(summary, account)
    key = (rt.settings.resolved_database_url, account_id)
    if candidates and _continued.get(key) != candidates:
        record_continued_use(rt, origin, account_id, candidates)
        if len(_continued) >= _CONTINUED_MAX:
            _continued.clear()
        _continued[key] = candidates
    return pending


def record_continued_use(rt: Runtime, origin: audit.Origin, account_id: str, versions: tuple[Version, ...]) -> int:
    """A changed version that did not ask for re-consent counts as accepted when the user goes on
    using the service (§二(三)) — recorded once, and only for documents the user accepted before."""

    now = rt.clock.now()
    recorded = 0
    try:
        with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
            db = work.db
            accepted = accepted_versions(db, account_id, [v.kind for v in versions])
            for v in versions:
                if v.kind not in accepted or v.version in accepted[v.kind]:
                    continue
                db.add(_consent_row(account_id, v, origin, now, basis="continued_use"))
                db.flush()
                work.audit("consent.continued_use", subject=("agreement", f"{v.kind}/{v.version}"),
                           details={"digest": v.digest})
                try:  # the in-site message is a courtesy: it never holds up the user's request
                    with db.begin_nested():
                        work.notify(account_id, "consent_terms_updated",
                                    {"kind": v.kind, "version": v.version, "title": v.title,
                                     "url": f"/agreements/{v.kind}/{v.version}"}, channels=("inbox",))
                except Exception as exc:  # noqa: BLE001
                    log.warning("agreement.notice_failed", kind=v.kind, version=v.version, error=type(exc).__name__)
                recorded += 1
    except IntegrityError:
        return 0  # a concurrent request of the same account recorded it
    return recorded


ANNOUNCE_DAYS = 30


def announcements(rt: Runtime) -> list[dict]:
    """Changes to show in the site banner (A3): versions that take effect later, and changed versions
    that took effect in the last ``ANNOUNCE_DAYS`` days. From the versions cache."""
    key = rt.settings.resolved_database_url
    cached = _versions_cache.get(key)
    if cached and cached[0] > time.monotonic():
        versions = cached[1]
    else:
        try:
            with rt.db.read() as db:
                versions = _all_versions(rt, db)
        except SQLAlchemyError as exc:  # a banner never takes a page (an error page, say) down with it
            log.warning("agreement.banner_unavailable", error=type(exc).__name__)
            return []
    now = rt.clock.now()
    firsts: dict[str, Version] = {}
    for v in versions:  # newest first per kind: the last seen is the first version
        firsts[v.kind] = v
    in_force = {v.kind: v for v in _in_force(versions, now)}
    shown = [(v, True) for v in versions if v.effective_at > now and v.kind in in_force]
    shown += [(v, False) for v in in_force.values()
              if firsts[v.kind] is not v and now - v.effective_at < timedelta(days=ANNOUNCE_DAYS)]
    return [{"kind": v.kind, "version": v.version, "title": v.title, "effective_at": v.effective_at,
             "upcoming": upcoming} for v, upcoming in shown]


# --- readable differences (A3: "shows the change") -------------------------------------------------

def diff_lines(old: str, new: str, context: int = 2) -> list[tuple[str, str]]:
    """Line differences of two Markdown texts as (op, line): "=" kept, "-" removed, "+" added,
    "…" for a run of unchanged lines left out. The page escapes the text and marks it up."""
    a, b = old.splitlines(), new.splitlines()
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            run = a[i1:i2]
            if len(run) > 2 * context + 1:
                head = run[:context] if out else []
                tail = run[-context:] if i2 < len(a) or j2 < len(b) else []
                out += [("=", line) for line in head] + [("…", "")] + [("=", line) for line in tail]
            else:
                out += [("=", line) for line in run]
            continue
        out += [("-", line) for line in a[i1:i2]]
        out += [("+", line) for line in b[j1:j2]]
    return out


def _blocks(text: str) -> list[str]:
    """A Markdown text's blocks: runs of lines between blank lines (a paragraph, a heading with its
    text, a list)."""
    blocks, current = [], []
    for line in text.splitlines():
        if line.strip():
            current.append(line)
        elif current:
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return blocks


def diff_blocks(old: str, new: str) -> list[tuple[str, str]]:
    """The new text block by block, each as (op, Markdown): "=" unchanged, "~" changed (followed by
    the old block as "-"), "+" added, "-" removed. The page renders each block, so a reader sees the
    new text as it reads, with what changed marked, not Markdown source."""
    a, b = _blocks(old), _blocks(new)
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out += [("=", block) for block in b[j1:j2]]
        elif tag == "insert":
            out += [("+", block) for block in b[j1:j2]]
        elif tag == "delete":
            out += [("-", block) for block in a[i1:i2]]
        else:  # replace: each new block marked changed, the old ones kept beside them
            out += [("~", block) for block in b[j1:j2]]
            out += [("-", block) for block in a[i1:i2]]
    return out


# --- the ledger export (A2) ------------------------------------------------------------------------

EXPORT_COLUMNS = ("record", "account_id", "kind", "version", "digest", "granted", "at", "ip", "user_agent",
                  "channel", "basis")


def check_export_filters(db: Session, kind: str | None, version: str | None) -> None:
    if version and not kind:
        raise errors.invalid("kind_required", "Name the kind of the version to export.", "kind")
    if kind and kind not in OPTIONAL_PURPOSES and db.scalar(
            select(AgreementVersion.id).where(AgreementVersion.kind == kind).limit(1)) is None:
        raise errors.DomainError("unknown_kind", "There is no such document kind.", 404,
                                 [errors.FieldError("kind", "unknown_kind", kind)])
    if kind and version and db.scalar(select(AgreementVersion.id).where(
            AgreementVersion.kind == kind, AgreementVersion.version == version)) is None:
        raise errors.DomainError("unknown_version", "There is no such version.", 404,
                                 [errors.FieldError("version", "unknown_version", version)])


def export_rows(db: Session, *, kind: str | None = None, version: str | None = None,
                batch: int = 2000) -> Iterator[dict]:
    """Ledger rows, oldest first: agreement acceptances, then optional-purpose grants and withdrawals."""
    if kind is None or kind not in OPTIONAL_PURPOSES:
        query = select(Consent).order_by(Consent.id)
        if kind:
            query = query.where(Consent.kind == kind)
        if version:
            query = query.where(Consent.version == version)
        for c in db.scalars(query.execution_options(yield_per=batch)):
            yield {"record": "agreement", "account_id": c.account_id, "kind": c.kind, "version": c.version,
                   "digest": c.digest, "granted": True, "at": rfc3339(c.accepted_at), "ip": c.ip,
                   "user_agent": c.user_agent, "channel": c.channel, "basis": c.basis}
    if version is None and (kind is None or kind in OPTIONAL_PURPOSES):
        query = select(PurposeConsent).order_by(PurposeConsent.id)
        if kind:
            query = query.where(PurposeConsent.purpose == kind)
        for p in db.scalars(query.execution_options(yield_per=batch)):
            yield {"record": "purpose", "account_id": p.account_id, "kind": p.purpose, "version": None,
                   "digest": None, "granted": p.granted, "at": rfc3339(p.at), "ip": p.ip,
                   "user_agent": p.user_agent, "channel": p.channel, "basis": "explicit"}


def export_lines(records: Iterable[dict], fmt: str) -> Iterator[str]:
    """JSON lines, or CSV with a header row whose cells a spreadsheet will not run as formulas."""
    if fmt == "jsonl":
        for item in records:
            yield json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n"
        return
    if fmt != "csv":
        raise errors.invalid("invalid_format", "The export format is jsonl or csv.", "format")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for item in records:
        writer.writerow(["" if item[c] is None else audit.spreadsheet_safe(
            ("true" if item[c] else "false") if isinstance(item[c], bool) else item[c]) for c in EXPORT_COLUMNS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export(rt: Runtime, origin: audit.Origin, *, fmt: str, kind: str | None = None, version: str | None = None,
           actor_type: str = "system", actor_id: str | None = None) -> Iterator[str]:
    """Record ``consents.exported`` (who, which filters), then return the export as a lazy stream."""
    if fmt not in ("jsonl", "csv"):
        raise errors.invalid("invalid_format", "The export format is jsonl or csv.", "format")
    kind, version = kind or None, version or None
    with unit_of_work(rt, origin, actor=(actor_type, actor_id)) as work:
        check_export_filters(work.db, kind, version)
        work.audit("consents.exported", details=audit.filters_for_record(kind=kind, version=version, format=fmt))

    def stream() -> Iterator[str]:
        with rt.db.read() as db:
            yield from export_lines(export_rows(db, kind=kind, version=version), fmt)

    return stream()


def consents_of(db: Session, account_id: str) -> list[Consent]:
    return list(db.scalars(select(Consent).where(Consent.account_id == account_id)
                           .order_by(Consent.accepted_at.desc(), Consent.id.desc())))


# Optional purposes (A4), e.g. "marketing": issue 6 keeps them in the consent ledger.
OPTIONAL_PURPOSES = ("marketing",)
PURPOSE_GRANTS = "30/hour"  # per account


def _check_purpose(purpose: str) -> None:
    if purpose not in OPTIONAL_PURPOSES:
        known = ", ".join(OPTIONAL_PURPOSES)
        raise errors.DomainError("unknown_purpose", "There is no such optional purpose.", 404,
                                 [errors.FieldError("purpose", "unknown_purpose", f"known: {known}")])


def _latest_purpose(purpose: str):
    return (select(PurposeConsent.granted).where(PurposeConsent.purpose == purpose)
            .order_by(PurposeConsent.id.desc()).limit(1))


def purpose_granted(db: Session, account_id: str, purpose: str) -> bool:
    """Whether the account currently grants the optional ``purpose`` (notices ask before marketing).
    Nothing recorded means not granted: optional purposes are opt-in (PIPL Art. 14)."""
    return bool(db.scalar(_latest_purpose(purpose).where(PurposeConsent.account_id == account_id)))


def purposes_of(db: Session, account_id: str) -> list[dict]:
    """Current state of every optional purpose, with the time of the last change (None if never set)."""
    out = []
    for purpose in OPTIONAL_PURPOSES:
        row = db.execute(select(PurposeConsent.granted, PurposeConsent.at)
                         .where(PurposeConsent.account_id == account_id, PurposeConsent.purpose == purpose)
                         .order_by(PurposeConsent.id.desc()).limit(1)).first()
        out.append({"purpose": purpose, "granted": bool(row and row.granted), "changed_at": row.at if row else None})
    return out


def set_purpose(rt: Runtime, db: Session, account_id: str, purpose: str, granted: bool, origin: audit.Origin) -> None:
    """Grant or withdraw ``purpose`` in the caller's unit of work (ledger row + audit event).
    Setting the state it already has records nothing: the ledger holds changes only."""
    _check_purpose(purpose)
    if granted:  # withdrawing is never limited (A4: as easy as giving)
        rt.limiter.hit(PURPOSE_GRANTS, "purpose-grant", account_id)
    if purpose_granted(db, account_id, purpose) == granted:
        return
    now = rt.clock.now()
    db.add(PurposeConsent(account_id=account_id, purpose=purpose, granted=granted, at=now, ip=origin.ip,
                          user_agent=(origin.user_agent or "")[:512] or None, channel=origin.channel))
    audit.record(db, at=now, action="consent.granted" if granted else "consent.withdrawn", origin=origin,
                 actor_type="user", actor_id=account_id, subject_type="purpose", subject_id=purpose)


# Marketing notices go only with this consent: notify (below this domain) asks through its hook.
outbox.answer_marketing_consent(lambda db, account_id: purpose_granted(db, account_id, "marketing"))
