"""The ID-token and logout-token signing keys (RS256 by default, ES256 for apps that ask for it).

Private keys are sealed with the field cipher (``PASSPORT_ENCRYPTION_KEYS``), bound to their row; the
JWKS publishes the public halves of the active keys and of retired ones until the last token they
signed has expired. ``passport oidc keys rotate`` makes new active keys and retires the old ones.
Keys are read once a minute per process (a rotation on another node shows within that time): signing
costs no database read."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from passport.db import new_id
from passport.oidc.models import SIGNING_KEY, OidcSigningKey
from passport.runtime import Runtime
from passport.security.tokens import b64

ALGORITHMS = ("RS256", "ES256")
# The pairwise-subject HMAC key lives in the same table, sealed the same way, under one fixed kid (of two
# processes that make it at once, the second insert fails and reads the first's).
SUBJECT_KID, SUBJECT_STATE = "pairwise-subject", "subject"
DEFAULT_ALG = "RS256"
CACHE_SECONDS = 60.0
# A retired key stays in the JWKS this long after the longest-lived token it signed could expire.
PUBLISH_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class Loaded:
    signing: dict[str, RSAKey | ECKey]  # alg → the newest active private key
    public: KeySet  # what the JWKS publishes (and what verifies our own tokens)
    subject: bytes  # the pairwise-subject HMAC key
    at: float


_cache: dict[int, Loaded] = {}
_lock = threading.Lock()


def _generate(alg: str):
    kid = new_id()[:16]
    params = {"alg": alg, "use": "sig", "kid": kid}
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=params, private=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=params, private=True)
    raise ValueError(f"unsupported algorithm {alg!r}")


def _add_key(rt: Runtime, db: Session, alg: str, now: datetime) -> OidcSigningKey:
    key = _generate(alg)
    row_id = new_id()
    private = json.dumps(key.as_dict(private=True))
    row = OidcSigningKey(id=row_id, kid=key.kid, alg=alg, state="active", created_at=now,
                         private_enc=rt.keys.cipher.encrypt(private, SIGNING_KEY, row_id),
                         public_jwk=key.as_dict(private=False))
    db.add(row)
    return row


def rotate(rt: Runtime, db: Session, now: datetime, algs: tuple[str, ...] = ALGORITHMS) -> list[OidcSigningKey]:
    """New active keys for ``algs``; the keys they replace are retired and stay published until every
    token they signed has expired (ID tokens, logout tokens)."""
    publish_until = now + timedelta(seconds=rt.settings.oidc_id_token_seconds) + PUBLISH_MARGIN
    old = db.scalars(select(OidcSigningKey).where(OidcSigningKey.state == "active",
                                                  OidcSigningKey.alg.in_(algs))).all()
    for row in old:
        row.state, row.retired_at, row.publish_until = "retired", now, publish_until
    added = [_add_key(rt, db, alg, now) for alg in algs]
    db.flush()
    forget(rt)
    return added


def ensure(rt: Runtime, db: Session, now: datetime) -> list[OidcSigningKey]:
    """An active key for every algorithm and the subject key (the provider's first start makes them)."""
    have = set(db.scalars(select(OidcSigningKey.alg).where(OidcSigningKey.state == "active")).all())
    added = [_add_key(rt, db, alg, now) for alg in ALGORITHMS if alg not in have]
    if db.scalar(select(OidcSigningKey.id).where(OidcSigningKey.kid == SUBJECT_KID)) is None:
        row_id = new_id()
        db.add(OidcSigningKey(id=row_id, kid=SUBJECT_KID, alg="HS256", state=SUBJECT_STATE, created_at=now,
                              private_enc=rt.keys.cipher.encrypt(b64(os.urandom(32)), SIGNING_KEY, row_id),
                              public_jwk={}))
    db.flush()
    forget(rt)
    return added


def listing(rt: Runtime, db: Session) -> list[dict]:
    rows = db.scalars(select(OidcSigningKey).where(OidcSigningKey.state != SUBJECT_STATE)
                      .order_by(OidcSigningKey.created_at.desc())).all()
    now = rt.clock.now()
    return [{"kid": r.kid, "alg": r.alg, "state": r.state, "created_at": r.created_at.isoformat(),
             "retired_at": r.retired_at.isoformat() if r.retired_at else None,
             "published": r.state == "active" or (r.publish_until is not None and r.publish_until > now)}
            for r in rows]


def forget(rt: Runtime) -> None:
    _cache.pop(id(rt), None)


def loaded(rt: Runtime) -> Loaded:
    """The keys, from the process cache (read again after CACHE_SECONDS); made on first use."""
    cached = _cache.get(id(rt))
    if cached is not None and time.monotonic() - cached.at < CACHE_SECONDS:
        return cached
    with _lock:
        cached = _cache.get(id(rt))
        if cached is not None and time.monotonic() - cached.at < CACHE_SECONDS:
            return cached
        now = rt.clock.now()
        with rt.db.read() as db:
            rows, subject = _published(db, now), _subject(db)
        if subject is None or not {r.alg for r in rows if r.state == "active"} >= set(ALGORITHMS):
            try:
                with rt.db.write() as db:
                    ensure(rt, db, now)
            except IntegrityError:
                pass  # another process made them first
            with rt.db.read() as db:
                rows, subject = _published(db, now), _subject(db)
        signing: dict[str, RSAKey | ECKey] = {}
        for row in rows:  # newest first: the first active key of an algorithm signs
            if row.state == "active" and row.alg not in signing:
                private = rt.keys.cipher.decrypt(row.private_enc, SIGNING_KEY, row.id)
                signing[row.alg] = (RSAKey if row.alg == "RS256" else ECKey).import_key(json.loads(private))
        public = KeySet.import_key_set({"keys": [dict(r.public_jwk) for r in rows]})
        subject_key = rt.keys.cipher.decrypt(subject.private_enc, SIGNING_KEY, subject.id).encode()
        result = Loaded(signing, public, subject_key, time.monotonic())
        _cache[id(rt)] = result
        return result


def _subject(db: Session) -> OidcSigningKey | None:
    return db.scalars(select(OidcSigningKey).where(OidcSigningKey.kid == SUBJECT_KID)).first()


def _published(db: Session, now: datetime) -> list[OidcSigningKey]:
    return list(db.scalars(select(OidcSigningKey).where(
        OidcSigningKey.state != SUBJECT_STATE,
        (OidcSigningKey.state == "active") | (OidcSigningKey.publish_until > now))
        .order_by(OidcSigningKey.created_at.desc(), OidcSigningKey.id)).all())


def subject_key(rt: Runtime) -> bytes:
    return loaded(rt).subject


def jwks(rt: Runtime) -> dict:
    return loaded(rt).public.as_dict(private=False)


def signing_key(rt: Runtime, alg: str) -> RSAKey | ECKey:
    return loaded(rt).signing[alg if alg in ALGORITHMS else DEFAULT_ALG]


def sign(rt: Runtime, claims: dict, alg: str = DEFAULT_ALG, typ: str = "JWT") -> str:
    key = signing_key(rt, alg)
    return jwt.encode({"alg": key.alg, "kid": key.kid, "typ": typ}, claims, key, [key.alg])


def verify(rt: Runtime, token: str) -> dict:
    """The claims of a JWT this provider signed (signature only: RS256 or ES256 with a published key;
    ``alg: none`` and anything else is refused by joserfc). Raises joserfc's errors."""
    return dict(jwt.decode(token, loaded(rt).public, algorithms=list(ALGORITHMS)).claims)
