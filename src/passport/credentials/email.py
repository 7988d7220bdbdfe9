"""The account's email address (API.md "Credentials"): bound only after a code sent to it is proved.

Until then the candidate address lives only on its ``bind_email`` code record, encrypted (issue 15):
the account, its export and its activity show at most that an email change is pending, whoever holds
the address."""

from __future__ import annotations

from functools import partial

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from passport import errors
from passport.accounts import service as accounts
from passport.accounts.models import Account
from passport.audit import service as audit
from passport.credentials import codes
from passport.credentials.models import VerificationCode
from passport.identity.email import mask_email
from passport.runtime import Runtime
from passport.sessions import service as sessions
from passport.work import unit_of_work


def _email_taken() -> errors.DomainError:
    return errors.DomainError("email_taken", "This email address is already bound to another account.", 409,
                              [errors.FieldError("email", "email_taken", "already bound to another account")])


def request_email(rt: Runtime, origin: audit.Origin, account_id: str, *, email: str) -> dict:
    """Send the address a bind_email code; the code record keeps the address (``codes.pending_email``),
    the account does not. The answer is the same whether or not another account holds the address:
    that is told only once the code proves ownership. The audit event names no address."""
    target = accounts.email_target(rt, email)
    with rt.db.read() as db:
        accounts.refuse_if_restricted(accounts.get(db, account_id), "email")
    sent = codes.send_code(rt, origin, channel="email", to=target.value, purpose=codes.Purpose.BIND_EMAIL,
                           account_exists=accounts.account_exists, requested_by=account_id)
    with unit_of_work(rt, origin, actor=("user", account_id)) as work:
        work.audit("email.bind_requested", subject=("account", account_id))
    return sent


def verify_email(rt: Runtime, origin: audit.Origin, account_id: str, *, code: str) -> None:
    """Redeem the bind_email code of the pending address and bind it. 409 ``email_taken`` when a
    live account holds it (checked here, and by the unique index against a simultaneous bind)."""
    now = rt.clock.now()
    outcome, taken = codes.Redeemed.NONE, False
    try:
        with unit_of_work(rt, origin, actor=("user", account_id), at=now) as work:
            db = work.db
            account = accounts.get(db, account_id)
            accounts.refuse_if_restricted(account, "email")
            target = codes.pending_email(rt, db, account_id)
            if target is not None:
                outcome = codes.redeem_code(rt, db, target, codes.Purpose.BIND_EMAIL, code)
            if outcome is codes.Redeemed.OK:
                holder = accounts.find(db, target)
                taken = holder is not None and holder.id != account_id
                if not taken:
                    account.email_enc = rt.keys.cipher.encrypt(target.value, accounts.EMAIL_FIELD, account_id)
                    account.email_bidx = target.bidx
                account.updated_at = now
                db.flush()
            if outcome is codes.Redeemed.OK and not taken:
                work.audit("email.bound", subject=("account", account_id),
                           details={"email": mask_email(target.value)})
                work.after_commit(partial(sessions.forget_sessions, rt, account_id=account_id))
            else:
                # Not proved, or proved but another account's: the address is not this account's to
                # keep, not even masked in its activity.
                reason = "email_taken" if taken else "invalid_code"
                work.audit("email.bind", result="failed", subject=("account", account_id), details={"reason": reason})
    except IntegrityError:
        raise _email_taken() from None
    if outcome is not codes.Redeemed.OK:
        raise errors.invalid_code()
    if taken:
        raise _email_taken()


def unbind_email(rt: Runtime, origin: audit.Origin, account_id: str) -> None:
    """Remove the bound address (and any pending one); login by email stops working."""
    with unit_of_work(rt, origin, actor=("user", account_id)) as work:
        account = accounts.get(work.db, account_id)
        state = email_state(rt, work.db, account)
        if state["email"] or state["pending"]:
            account.email_enc = account.email_bidx = None
            account.email_pending_enc = account.email_pending_bidx = None
            account.updated_at = work.at
            work.db.execute(update(VerificationCode).where(
                VerificationCode.requested_by == account_id, VerificationCode.purpose == codes.Purpose.BIND_EMAIL.value,
                VerificationCode.consumed_at.is_(None)).values(consumed_at=work.at))  # the pending ask ends too
            work.audit("email.unbound", subject=("account", account_id),
                       details={"email": state["email"]} if state["email"] else {"pending": True})
        work.after_commit(partial(sessions.forget_sessions, rt, account_id=account_id))


def email_state(rt: Runtime, db, account: Account) -> dict:
    """The bound address, masked, and whether a change is pending (never the candidate address)."""
    bound = rt.keys.cipher.decrypt(account.email_enc, accounts.EMAIL_FIELD, account.id) if account.email_enc else None
    return {"email": mask_email(bound) if bound else None,
            "pending": codes.pending_email(rt, db, account.id) is not None}


def email_of(rt: Runtime, account_id: str) -> dict:
    with rt.db.read() as db:
        return email_state(rt, db, accounts.get(db, account_id))
