"""Registration (API.md "Accounts"): a person account from a proved mobile number, a password that passes the
policy and explicit acceptance of the current agreements, recorded in the consent ledger."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from passport import errors
from passport.accounts import profile
from passport.accounts import service as accounts
from passport.accounts.models import Account
from passport.agreements import service as agreements
from passport.audit import service as audit
from passport.credentials import codes
from passport.db import new_id
from passport.runtime import Runtime
from passport.security.policy import check_password
from passport.security.tokens import new_recovery_key
from passport.sessions import devices
from passport.sessions import service as sessions
from passport.work import unit_of_work


@dataclass(frozen=True)
class Registered:
    account: dict
    recovery_key: str
    session: sessions.Issued


def register(rt: Runtime, origin: audit.Origin, *, phone: str, code: str, password: str, nickname: str,
             accepted: dict[str, str] | None, device: str | None = None) -> Registered:
    """Create a person account: code proves the number, the user accepts the current agreements
    (A1), the password passes the policy (C5). 409 ``phone_taken`` only after the code is proved.
    ``device`` (the client's device cookie) becomes the account's first known device: signing in
    there later is no new-device notice."""
    target = accounts.sms_target(rt, phone)
    nickname = accounts.clean_nickname(nickname)
    # COMPLIANCE I1: a refused nickname stops here (422, nothing spent); a held one waits for a reviewer
    # while the account carries a neutral one.
    held = profile.check_fields(rt, {"nickname": nickname}).get("nickname")
    held = held if held is not None and held.verdict == "review" else None
    check_password(password, phone=target.value, min_length=rt.settings.password_min_length,
                   min_classes=rt.settings.password_min_classes)
    with rt.db.read() as db:
        agreements.check_registration_acceptance(rt, db, accepted)
    # Hash before the unit of work opens: the write lock is never held across an Argon2 run.
    password_hash = rt.hasher.hash(password)
    recovery_key = new_recovery_key()
    recovery_hash = rt.hasher.hash(recovery_key)
    token = sessions.new_session_token()

    now = rt.clock.now()
    outcome, taken, issued = codes.Redeemed.NONE, False, None
    try:
        with unit_of_work(rt, origin, at=now) as work:
            db = work.db
            outcome = codes.redeem_code(rt, db, target, codes.Purpose.REGISTER, code)
            if outcome is codes.Redeemed.OK:
                taken = accounts.account_exists(db, target)
                if taken:
                    work.audit("account.register", result="failed", details={"reason": "phone_taken"})
                else:
                    versions = agreements.check_registration_acceptance(rt, db, accepted)
                    account_id = new_id()
                    shown = accounts.neutral_nickname(account_id) if held else nickname
                    account = Account(id=account_id, kind="person", status=accounts.INITIAL_STATUS, nickname=shown,
                                      phone_enc=rt.keys.cipher.encrypt(target.value, accounts.PHONE_FIELD, account_id),
                                      phone_bidx=target.bidx, password_hash=password_hash,
                                      recovery_key_hash=recovery_hash, created_at=now, updated_at=now)
                    db.add(account)
                    db.flush()
                    work.audit("account.registered", actor=("user", account.id), subject=("account", account.id))
                    if held:
                        profile.hold(work, account, "nickname", nickname, held)
                    agreements.record_consents(work, account.id, versions)
                    # The password was chosen in this very request: the session starts stepped up.
                    issued = sessions.start_session(rt, db, account.id, token, "register", origin, stepped_up=True)
                    devices.remember(work, account.id, device)
            else:
                work.audit("account.register", result="failed", details={"reason": "invalid_code"})
    except IntegrityError:
        # Another request registered this number between our check and our insert.
        raise _phone_taken() from None
    if outcome is not codes.Redeemed.OK:
        raise errors.invalid_code()
    if taken:
        raise _phone_taken()
    return Registered(account=accounts.view(rt, account), recovery_key=recovery_key, session=issued)


def _phone_taken() -> errors.DomainError:
    return errors.DomainError("phone_taken", "This mobile number is already registered. Please log in.", 409,
                              [errors.FieldError("phone", "phone_taken", "already registered")])
