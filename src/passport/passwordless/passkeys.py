"""Passkeys (WebAuthn, issue 21) with py_webauthn: registration from the account's security page
(the session stepped up), several per account with names and last-use times, removal (stepped up),
and sign-in — usernameless through the browser's passkey picker (discoverable credentials, the
user handle is the account's random id) or after the phone number is entered (``allowCredentials``).

Rules kept: user verification is required, so a passkey is two factors (something held, unlocked by
a PIN or biometric): the session starts stepped up and no TOTP step follows. A sign count that does
not grow (for an authenticator that keeps one) marks a cloned credential: refused, audited
(``passkey.sign_count_regressed``) and told to the owner. Frozen, suspended and terminated accounts
get the answers of a password login (403 with the reason); a cancelled one the answer of a wrong
password. A proved passkey lifts a password lock, as a proved SMS code does (the owner holds it).

Enumeration: options for a phone number never say whether an account exists. An account with
passkeys gets their ids; a number without an account, or an account without passkeys, gets one or
two made-up ids derived from the number with the service's secret key (the same on every ask, so
asking twice reveals nothing either). Every failure of the sign-in answers 401 ``invalid_credentials``.

The relying party is the host of ``PASSPORT_BASE_URL`` (a loopback address counts as "localhost",
which browsers accept as a secure context) and the expected origin is that URL's origin."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from passport import errors
from passport.accounts import service as accounts
from passport.audit import service as audit
from passport.clock import china_time, rfc3339
from passport.identity.phone import mask_phone
from passport.passwordless.models import Passkey, PasskeyChallenge
from passport.runtime import Runtime
from passport.security.tokens import keyed_digest
from passport.sessions import devices
from passport.sessions import service as sessions
from passport.work import unit_of_work

RP_NAME = "奥集能 passport"
CHALLENGE_SECONDS = 300
TIMEOUT_MS = 120_000
MAX_PER_ACCOUNT = 10
_TRANSPORTS = {t.value for t in AuthenticatorTransport}
_accounts = accounts.Account.__table__
_challenges = PasskeyChallenge.__table__
_passkeys = Passkey.__table__


def rp_id(rt: Runtime) -> str:
    host = urlsplit(rt.settings.base_url).hostname or "localhost"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return "localhost"
    except ValueError:
        pass
    return host


def expected_origin(rt: Runtime) -> str:
    parts = urlsplit(rt.settings.base_url)
    host = "localhost" if rp_id(rt) == "localhost" else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def passkey_exists() -> errors.DomainError:
    return errors.DomainError("passkey_exists", "This passkey is already registered.", 409)


def passkey_limit() -> errors.DomainError:
    return errors.DomainError("passkey_limit", "An account may have at most 10 passkeys.", 409)


def passkey_rejected() -> errors.DomainError:
    return errors.DomainError("passkey_rejected", "The passkey could not be registered. Please try again.", 422)


# --- challenges ------------------------------------------------------------------------------------

def _new_challenge(db: Session, now: datetime, purpose: str, account_id: str | None,
                   staff_id: str | None = None) -> bytes:
    challenge = secrets.token_bytes(32)
    db.execute(delete(PasskeyChallenge).where(PasskeyChallenge.expires_at < now))  # the stale ones go
    db.add(PasskeyChallenge(challenge_hash=hashlib.sha256(challenge).digest(), purpose=purpose,
                            account_id=account_id, staff_id=staff_id,
                            expires_at=now + timedelta(seconds=CHALLENGE_SECONDS)))
    db.flush()
    return challenge


def _challenge_of(credential: dict[str, Any]) -> bytes | None:
    """The challenge the authenticator signed, read from the answer's clientDataJSON."""
    try:
        client_data = json.loads(base64url_to_bytes(credential["response"]["clientDataJSON"]))
        return base64url_to_bytes(client_data["challenge"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _take_challenge(db: Session, challenge: bytes | None, purpose: str, now: datetime):
    """Use the challenge up (once: a DELETE … RETURNING); None when unknown, spent or expired."""
    if challenge is None or len(challenge) != 32:
        return None
    return db.execute(delete(_challenges).where(_challenges.c.challenge_hash == hashlib.sha256(challenge).digest(),
                                                _challenges.c.purpose == purpose, _challenges.c.expires_at > now)
                      .returning(_challenges.c.account_id, _challenges.c.staff_id)).first()


def _raw_id(credential: dict[str, Any]) -> bytes | None:
    try:
        raw = base64url_to_bytes(credential.get("rawId") or credential["id"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return raw if 0 < len(raw) <= 1023 else None


# --- registration ----------------------------------------------------------------------------------

def registration_options(rt: Runtime, origin: audit.Origin, principal: sessions.Principal) -> dict[str, Any]:
    """Creation options for ``navigator.credentials.create``: a discoverable credential, user
    verification required, the account's passkeys excluded."""
    account_id = principal.account_id
    with unit_of_work(rt, origin, actor=("user", account_id)) as work:
        account = accounts.get(work.db, account_id)
        existing = work.db.scalars(select(Passkey.credential_id).where(Passkey.account_id == account_id)).all()
        if len(existing) >= MAX_PER_ACCOUNT:
            raise passkey_limit()
        challenge = _new_challenge(work.db, work.at, "register", account_id)
    phone = accounts.phone_of(rt, account)
    options = generate_registration_options(
        rp_id=rp_id(rt), rp_name=RP_NAME, user_id=account_id.encode(),
        user_name=mask_phone(phone) if phone else account.nickname, user_display_name=account.nickname,
        challenge=challenge, timeout=TIMEOUT_MS, attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(resident_key=ResidentKeyRequirement.REQUIRED,
                                                               user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in existing])
    return {"publicKey": json.loads(options_to_json(options))}


def register(rt: Runtime, origin: audit.Origin, principal: sessions.Principal, credential: dict[str, Any],
             name: str | None = None) -> dict[str, Any]:
    """Verify the authenticator's answer to the options and keep the passkey (audited, the owner
    told). 422 ``passkey_rejected`` for an answer that does not verify (or a spent challenge)."""
    return _register(rt, origin, ("account", principal.account_id), credential, name)


def _register(rt: Runtime, origin: audit.Origin, owner: tuple[str, str], credential: dict[str, Any],
              name: str | None) -> dict[str, Any]:
    kind, owner_id = owner
    staff = kind == "staff"
    now = rt.clock.now()
    actor = ("staff" if staff else "user", owner_id)
    with unit_of_work(rt, origin, actor=actor, at=now) as work:
        taken = _take_challenge(work.db, _challenge_of(credential), "staff_register" if staff else "register", now)
    if taken is None or (taken.staff_id if staff else taken.account_id) != owner_id:
        raise passkey_rejected()
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=_challenge_of(credential), expected_rp_id=rp_id(rt),
            expected_origin=expected_origin(rt), require_user_verification=True)
    except Exception as exc:  # noqa: BLE001 - a malformed answer (any parse error of the library) is a refusal
        with unit_of_work(rt, origin, actor=actor, at=now) as work:
            work.audit("staff.passkey_add" if staff else "passkey.add", result="failed", subject=owner,
                       details={"reason": type(exc).__name__})
        raise passkey_rejected() from None
    hints = (credential.get("response") or {}).get("transports") or []
    transports = ",".join(t for t in hints if isinstance(t, str) and t in _TRANSPORTS)[:128] or None
    label = (name or "").strip()[:64] or _default_name(now)
    column = Passkey.staff_id if staff else Passkey.account_id
    try:
        with unit_of_work(rt, origin, actor=actor, at=now) as work:
            count = work.db.scalar(select(func.count()).select_from(Passkey).where(column == owner_id))
            if count >= MAX_PER_ACCOUNT:
                raise passkey_limit()
            row = Passkey(account_id=None if staff else owner_id, staff_id=owner_id if staff else None,
                          credential_id=verified.credential_id, public_key=verified.credential_public_key,
                          sign_count=verified.sign_count, transports=transports, name=label, created_at=now)
            work.db.add(row)
            work.db.flush()
            work.audit("staff.passkey_added" if staff else "passkey.added", subject=owner,
                       details={"passkey": row.id, "name": label})
            if not staff:
                work.notify(owner_id, "notice_message", _notice("added", label, now), channels=("inbox",))
            return _view(row)
    except IntegrityError:
        raise passkey_exists() from None


def _default_name(now: datetime) -> str:
    return f"Passkey {china_time(now)}"[:64]


NOTICES = {
    "added": {"title": {"zh-CN": "添加了通行密钥", "en": "A passkey was added"},
              "text": {"zh-CN": "您的账号于 {time}（北京时间）添加了通行密钥“{name}”。"
                                 "如果不是您本人操作，请立即删除它并修改密码。",
                       "en": "The passkey \"{name}\" was added to your account at {time} (Beijing time). If this was "
                             "not you, remove it at once and change your password."}},
    "removed": {"title": {"zh-CN": "删除了通行密钥", "en": "A passkey was removed"},
                "text": {"zh-CN": "您的账号于 {time}（北京时间）删除了通行密钥“{name}”。",
                         "en": "The passkey \"{name}\" was removed from your account at {time} (Beijing time)."}},
    "cloned": {"title": {"zh-CN": "通行密钥疑似被复制", "en": "A passkey may have been copied"},
               "text": {"zh-CN": "有人于 {time}（北京时间）使用通行密钥“{name}”登录，但其使用计数异常，登录已被拒绝。"
                                 "请删除该通行密钥并修改密码。",
                        "en": "Someone tried to log in with the passkey \"{name}\" at {time} (Beijing time), but its "
                              "signature counter went backwards, so the login was refused. Remove that passkey and "
                              "change your password."}},
}


def _notice(kind: str, name: str, now: datetime) -> dict[str, Any]:
    notice = NOTICES[kind]
    when = china_time(now)
    return {"title": notice["title"],
            "text": {lang: text.format(time=when, name=name) for lang, text in notice["text"].items()}}


def _view(row: Passkey) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "created_at": rfc3339(row.created_at),
            "last_used_at": rfc3339(row.last_used_at),
            "transports": [t for t in (row.transports or "").split(",") if t]}


def list_passkeys(rt: Runtime, account_id: str) -> list[dict[str, Any]]:
    with rt.db.read() as db:
        rows = db.scalars(select(Passkey).where(Passkey.account_id == account_id).order_by(Passkey.created_at)).all()
    return [_view(r) for r in rows]


def _descriptors(rows) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(
        id=r.credential_id, transports=[AuthenticatorTransport(t) for t in (r.transports or "").split(",")
                                        if t in _TRANSPORTS] or None) for r in rows]


def rename(rt: Runtime, origin: audit.Origin, principal: sessions.Principal, passkey_id: str, name: str) -> dict:
    label = (name or "").strip()[:64]
    if not label:
        raise errors.invalid("invalid_name", "Give the passkey a name.", "name")
    with unit_of_work(rt, origin, actor=("user", principal.account_id)) as work:
        row = work.db.scalars(select(Passkey).where(Passkey.id == passkey_id,
                                                    Passkey.account_id == principal.account_id)).first()
        if row is None:
            raise errors.not_found("passkey")
        row.name = label
        work.audit("passkey.renamed", subject=("account", principal.account_id), details={"passkey": row.id})
        work.db.flush()
        return _view(row)


def remove(rt: Runtime, origin: audit.Origin, principal: sessions.Principal, passkey_id: str) -> None:
    account_id = principal.account_id
    with unit_of_work(rt, origin, actor=("user", account_id)) as work:
        row = work.db.scalars(select(Passkey).where(Passkey.id == passkey_id, Passkey.account_id == account_id)).first()
        if row is None:
            raise errors.not_found("passkey")
        work.db.delete(row)
        work.audit("passkey.removed", subject=("account", account_id), details={"passkey": row.id, "name": row.name})
        work.notify(account_id, "notice_message", _notice("removed", row.name, work.at), channels=("inbox",))


# --- sign-in ---------------------------------------------------------------------------------------

def _fake_ids(rt: Runtime, phone: str, kind: str = "passkey-decoy") -> list[bytes]:
    """Made-up credential ids for a number (or staff login) without passkeys: stable per name,
    unguessable without the service's key, one or two of them (accounts have one or more)."""
    seed = keyed_digest(rt.keys.secret, kind, phone)
    return [keyed_digest(rt.keys.secret, kind, phone, str(i))[:16 + seed[1] % 17]
            for i in range(1 + seed[0] % 2)]


def login_options(rt: Runtime, origin: audit.Origin, phone: str | None = None) -> dict[str, Any]:
    """Request options for ``navigator.credentials.get``. Without ``phone``: empty
    ``allowCredentials`` (the browser offers the passkeys it holds for this site). With it: the ids
    of that number's passkeys, or made-up ones (see the module's text)."""
    rt.limiter.hit(f"{rt.settings.passkey_per_ip_minute}/minute", "passkey-ip", origin.ip or "-")
    allowed: list[PublicKeyCredentialDescriptor] = []
    account_id = None
    target = accounts.sms_target(rt, phone) if phone is not None else None
    with unit_of_work(rt, origin) as work:
        if target is not None:
            account = accounts.find(work.db, target)
            rows = work.db.execute(select(Passkey.credential_id, Passkey.transports)
                                   .where(Passkey.account_id == account.id)).all() if account else []
            account_id = account.id if rows else None
            allowed = _descriptors(rows) or [PublicKeyCredentialDescriptor(id=fake)
                                             for fake in _fake_ids(rt, target.value)]
        challenge = _new_challenge(work.db, work.at, "login", account_id)
    options = generate_authentication_options(rp_id=rp_id(rt), challenge=challenge, timeout=TIMEOUT_MS,
                                              allow_credentials=allowed,
                                              user_verification=UserVerificationRequirement.REQUIRED)
    return {"publicKey": json.loads(options_to_json(options))}


def _failed(rt: Runtime, origin: audit.Origin, reason: str, account_id: str | None = None) -> errors.DomainError:
    with unit_of_work(rt, origin) as work:
        work.audit("login.failed", result="failed", subject=("account", account_id) if account_id else None,
                   details={"reason": reason, "method": "passkey"})
    return errors.invalid_credentials()


def login(rt: Runtime, origin: audit.Origin, credential: dict[str, Any],
          device: str | None = None) -> tuple[sessions.Issued, dict]:
    """Sign in with a passkey's assertion; every failure answers 401 ``invalid_credentials``."""
    rt.limiter.hit(f"{rt.settings.login_per_ip_minute}/minute", "login-ip", origin.ip or "-", when_down="local")
    now = rt.clock.now()
    challenge = _challenge_of(credential)
    raw_id = _raw_id(credential)
    with unit_of_work(rt, origin, at=now) as work:
        taken = _take_challenge(work.db, challenge, "login", now)
        row = work.db.scalars(select(Passkey).where(Passkey.credential_id == raw_id, Passkey.account_id.is_not(None))
                              ).first() if raw_id else None
        if row is not None:
            work.db.expunge(row)
    if taken is None:
        raise _failed(rt, origin, "invalid_challenge")
    if row is None:
        raise _failed(rt, origin, "unknown_passkey")
    if taken.account_id not in (None, row.account_id):
        raise _failed(rt, origin, "other_account", row.account_id)
    response = credential.get("response")
    handle = response.get("userHandle") if isinstance(response, dict) else None
    if handle and handle != bytes_to_base64url(row.account_id.encode()):
        raise _failed(rt, origin, "user_handle_mismatch", row.account_id)
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(rt),
            expected_origin=expected_origin(rt), credential_public_key=row.public_key,
            credential_current_sign_count=row.sign_count, require_user_verification=True)
    except Exception as exc:  # noqa: BLE001 - a malformed answer (any parse error of the library) is a refusal
        if isinstance(exc, InvalidAuthenticationResponse) and "sign count" in str(exc).lower():
            with unit_of_work(rt, origin, at=now) as work:
                work.audit("passkey.sign_count_regressed", result="denied", subject=("account", row.account_id),
                           details={"passkey": row.id, "stored": row.sign_count})
                work.notify(row.account_id, "notice_message", _notice("cloned", row.name, now),
                            channels=("inbox", "sms"))
            raise _failed(rt, origin, "sign_count_regressed", row.account_id) from None
        raise _failed(rt, origin, "invalid_assertion", row.account_id) from None
    return _start(rt, origin, row, verified.new_sign_count, now, device)


def _start(rt: Runtime, origin: audit.Origin, row: Passkey, new_count: int, now: datetime,
           device: str | None) -> tuple[sessions.Issued, dict]:
    account_id = row.account_id
    issued = None
    with rt.db.read() as db:
        account = accounts.get(db, account_id)
    if account.status == "cancelled":
        raise _failed(rt, origin, "cancelled", account_id)
    with unit_of_work(rt, origin, at=now) as work:
        if account.status in sessions.REFUSED_STATUSES:
            work.audit("login.refused", result="denied", subject=("account", account_id),
                       details={"status": account.status, "method": "passkey"})
        elif work.db.execute(update(_passkeys).where(_passkeys.c.id == row.id, _passkeys.c.sign_count == row.sign_count)
                             .values(sign_count=new_count, last_used_at=now)).rowcount != 1:
            # Another sign-in with the same assertion counter won the race: a replay.
            work.audit("login.failed", result="failed", subject=("account", account_id),
                       details={"reason": "passkey_raced", "method": "passkey"})
        elif work.db.execute(update(_accounts).where(_accounts.c.id == account_id,
                                                     _accounts.c.status.not_in(sessions.NO_SESSION_STATUSES))
                             .values(failed_logins=0, locked_until=None)).rowcount != 1:
            account = sessions.status_changed(work.db, account_id) or account
            work.audit("login.refused", result="denied", subject=("account", account_id),
                       details={"status": account.status, "method": "passkey"})
        else:
            # User verification was required: the passkey is two factors, so the session is stepped up.
            issued = sessions.start_session(rt, work.db, account_id, sessions.new_session_token(), "passkey", origin,
                                            stepped_up=True)
            work.audit("login.succeeded", actor=("user", account_id), subject=("account", account_id),
                       details={"method": "passkey", "passkey": row.id})
    if issued is None:
        if account.status in sessions.REFUSED_STATUSES:
            sessions.refuse_status(account)
        raise errors.invalid_credentials()
    devices.note_login(rt, origin, account_id, device, "passkey")
    with rt.db.read() as db:
        return issued, accounts.view(rt, accounts.get(db, account_id))


# --- step-up: a passkey confirms it is you before a sensitive change ----------------------------------

def has_passkeys(rt: Runtime, account_id: str) -> bool:
    with rt.db.read() as db:
        return db.scalar(select(Passkey.id).where(Passkey.account_id == account_id).limit(1)) is not None


def step_up_options(rt: Runtime, origin: audit.Origin, principal: sessions.Principal) -> dict[str, Any]:
    """Request options naming this account's passkeys, for a step-up (404 ``not_found`` without any)."""
    account_id = principal.account_id
    with unit_of_work(rt, origin, actor=("user", account_id)) as work:
        rows = work.db.execute(select(Passkey.credential_id, Passkey.transports)
                               .where(Passkey.account_id == account_id)).all()
        if not rows:
            raise errors.not_found("passkey")
        challenge = _new_challenge(work.db, work.at, "step_up", account_id)
    options = generate_authentication_options(rp_id=rp_id(rt), challenge=challenge, timeout=TIMEOUT_MS,
                                              allow_credentials=_descriptors(rows),
                                              user_verification=UserVerificationRequirement.REQUIRED)
    return {"publicKey": json.loads(options_to_json(options))}


def step_up(rt: Runtime, origin: audit.Origin, principal: sessions.Principal,
            credential: dict[str, Any]) -> sessions.Issued:
    """Step the session up with one of the account's passkeys (user verification: two factors). The
    token is replaced, as by the password step-up; a failure answers 400 ``invalid_passkey`` and
    counts toward the login lock like a wrong password."""
    account_id = principal.account_id
    now = rt.clock.now()
    challenge, raw_id = _challenge_of(credential), _raw_id(credential)
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        taken = _take_challenge(work.db, challenge, "step_up", now)
        row = work.db.scalars(select(Passkey).where(Passkey.credential_id == raw_id, Passkey.account_id == account_id)
                              ).first() if raw_id else None
        if row is not None:
            work.db.expunge(row)
    new_count, reason = None, "invalid_passkey"
    if taken is not None and taken.account_id == account_id and row is not None:
        try:
            new_count = verify_authentication_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(rt),
                expected_origin=expected_origin(rt), credential_public_key=row.public_key,
                credential_current_sign_count=row.sign_count, require_user_verification=True).new_sign_count
        except Exception as exc:  # noqa: BLE001 - a malformed answer (any parse error of the library) is a refusal
            if isinstance(exc, InvalidAuthenticationResponse) and "sign count" in str(exc).lower():
                reason = "sign_count_regressed"
    with rt.db.read() as db:
        account = accounts.get(db, account_id)
    issued = None
    with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
        if new_count is None or sessions.is_locked(account, now):
            if reason == "sign_count_regressed":
                work.audit("passkey.sign_count_regressed", result="denied", subject=("account", account_id),
                           details={"passkey": row.id, "stored": row.sign_count})
            sessions.count_failed_proof(rt, work.db, origin, account, now, action="session.step_up", reason=reason)
        elif work.db.execute(update(_passkeys).where(_passkeys.c.id == row.id, _passkeys.c.sign_count == row.sign_count)
                             .values(sign_count=new_count, last_used_at=now)).rowcount == 1 \
                and sessions.passed_proof(work.db, account_id, now):
            issued = sessions.rotate(rt, work.db, principal, origin)
            if issued is None:  # this session ended meanwhile
                raise errors.not_authenticated()
            work.audit("session.stepped_up", subject=("account", account_id),
                       details={"by": "passkey", "passkey": row.id, "session_rotated": True})
        else:
            work.audit("session.step_up", result="denied", subject=("account", account_id),
                       details={"by": "passkey", "reason": "changed"})
    if issued is None:
        raise invalid_passkey()
    return issued


def invalid_passkey() -> errors.DomainError:
    return errors.DomainError("invalid_passkey", "The passkey could not confirm it is you. Please try again.", 400)


# --- staff: a passkey as the second factor instead of a TOTP code -----------------------------------

def _staff_handle(staff_id: str) -> bytes:
    return f"staff:{staff_id}".encode()


def staff_registration_options(rt: Runtime, origin: audit.Origin, staff_id: str, login: str) -> dict[str, Any]:
    """Creation options for a staff member's passkey (user verification required)."""
    with unit_of_work(rt, origin, actor=("staff", staff_id)) as work:
        existing = work.db.scalars(select(Passkey.credential_id).where(Passkey.staff_id == staff_id)).all()
        if len(existing) >= MAX_PER_ACCOUNT:
            raise passkey_limit()
        challenge = _new_challenge(work.db, work.at, "staff_register", None, staff_id)
    options = generate_registration_options(
        rp_id=rp_id(rt), rp_name=RP_NAME + " admin", user_id=_staff_handle(staff_id), user_name=f"staff:{login}",
        user_display_name=login, challenge=challenge, timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(resident_key=ResidentKeyRequirement.PREFERRED,
                                                               user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in existing])
    return {"publicKey": json.loads(options_to_json(options))}


def register_staff(rt: Runtime, origin: audit.Origin, staff_id: str, credential: dict[str, Any],
                   name: str | None = None) -> dict[str, Any]:
    return _register(rt, origin, ("staff", staff_id), credential, name)


def staff_passkeys(rt: Runtime, staff_id: str) -> list[dict[str, Any]]:
    with rt.db.read() as db:
        rows = db.scalars(select(Passkey).where(Passkey.staff_id == staff_id).order_by(Passkey.created_at)).all()
    return [_view(r) for r in rows]


def remove_staff(rt: Runtime, origin: audit.Origin, staff_id: str, passkey_id: str) -> None:
    with unit_of_work(rt, origin, actor=("staff", staff_id)) as work:
        row = work.db.scalars(select(Passkey).where(Passkey.id == passkey_id, Passkey.staff_id == staff_id)).first()
        if row is None:
            raise errors.not_found("passkey")
        work.db.delete(row)
        work.audit("staff.passkey_removed", subject=("staff", staff_id), details={"passkey": row.id})


def staff_login_options(rt: Runtime, origin: audit.Origin, staff_id: str | None, login: str) -> dict[str, Any]:
    """Request options for the second step of a staff login: the staff member's passkeys, or made-up
    ids for a login that has none (or does not exist): the answer says nothing either way."""
    rt.limiter.hit(f"{rt.settings.passkey_per_ip_minute}/minute", "passkey-ip", origin.ip or "-")
    with unit_of_work(rt, origin) as work:
        rows = work.db.execute(select(Passkey.credential_id, Passkey.transports)
                               .where(Passkey.staff_id == staff_id)).all() if staff_id else []
        challenge = _new_challenge(work.db, work.at, "staff_login", None, staff_id if rows else None)
    allowed = _descriptors(rows) or [PublicKeyCredentialDescriptor(id=fake)
                                     for fake in _fake_ids(rt, login, "staff-passkey-decoy")]
    options = generate_authentication_options(rp_id=rp_id(rt), challenge=challenge, timeout=TIMEOUT_MS,
                                              allow_credentials=allowed,
                                              user_verification=UserVerificationRequirement.REQUIRED)
    return {"publicKey": json.loads(options_to_json(options))}


def staff_assertion_ok(rt: Runtime, origin: audit.Origin, staff_id: str, credential: dict[str, Any]) -> bool:
    """The second factor of a staff login: an assertion of one of the staff member's passkeys, for a
    challenge handed out for them (spent here), with user verification and a growing counter (a
    cloned authenticator is audited ``staff.passkey_sign_count_regressed``)."""
    now = rt.clock.now()
    challenge, raw_id = _challenge_of(credential), _raw_id(credential)
    with unit_of_work(rt, origin, at=now) as work:
        taken = _take_challenge(work.db, challenge, "staff_login", now)
        row = work.db.scalars(select(Passkey).where(Passkey.credential_id == raw_id, Passkey.staff_id == staff_id)
                              ).first() if raw_id else None
        if row is not None:
            work.db.expunge(row)
    if taken is None or taken.staff_id != staff_id or row is None:
        return False
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(rt),
            expected_origin=expected_origin(rt), credential_public_key=row.public_key,
            credential_current_sign_count=row.sign_count, require_user_verification=True)
    except Exception as exc:  # noqa: BLE001 - a malformed answer (any parse error of the library) is a refusal
        if isinstance(exc, InvalidAuthenticationResponse) and "sign count" in str(exc).lower():
            with unit_of_work(rt, origin, at=now) as work:
                work.audit("staff.passkey_sign_count_regressed", result="denied", subject=("staff", staff_id),
                           details={"passkey": row.id, "stored": row.sign_count})
        return False
    with unit_of_work(rt, origin, at=now) as work:
        return work.db.execute(update(_passkeys).where(_passkeys.c.id == row.id,
                                                       _passkeys.c.sign_count == row.sign_count)
                               .values(sign_count=verified.new_sign_count, last_used_at=now)).rowcount == 1


# --- export and erasure ----------------------------------------------------------------------------

def of_account(db: Session, account_id: str) -> list[dict[str, Any]]:
    """The account's passkeys for its personal-data export (names and times; no key material)."""
    rows = db.scalars(select(Passkey).where(Passkey.account_id == account_id).order_by(Passkey.created_at)).all()
    return [_view(r) | {"sign_count": r.sign_count} for r in rows]


def erase_account(db: Session, account_id: str) -> int:
    """Delete the account's passkeys and open challenges (cancellation finalisation)."""
    db.execute(delete(PasskeyChallenge).where(PasskeyChallenge.account_id == account_id))
    return db.execute(delete(Passkey).where(Passkey.account_id == account_id)).rowcount


def sweep(db: Session, now: datetime) -> int:
    """Delete challenges that expired unused (the worker's retention sweep)."""
    return db.execute(delete(PasskeyChallenge).where(PasskeyChallenge.expires_at < now)).rowcount


def erase_staff(db: Session, staff_id: str) -> int:
    """Delete a staff member's passkeys and open challenges (a staff reset)."""
    db.execute(delete(PasskeyChallenge).where(PasskeyChallenge.staff_id == staff_id))
    return db.execute(delete(Passkey).where(Passkey.staff_id == staff_id)).rowcount
