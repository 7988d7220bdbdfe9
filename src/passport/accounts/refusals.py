"""Refusal of re-registration (agreement §五(一), issue 18): after a termination staff may refuse that
the same person registers again. What is kept is the blind index of the phone number and, when the
account was verified, of the resident ID number — never the value — with an expiry. Registration,
a phone change and real-name binding check it; each answers a refused number the way it answers a
number it cannot take for any other reason, so a stranger learns nothing more than registration
already tells."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, LargeBinary, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from passport.accounts.models import Account
from passport.audit import service as audit
from passport.db import Base, UTCDateTime, new_id
from passport.runtime import Runtime

KINDS = ("phone", "id_number")


class Refusal(Base):
    """One refused phone number or resident ID number, as its blind index (under the key current when
    it was refused; a look-up matches the current and the previous key)."""

    __tablename__ = "registration_refusals"
    __table_args__ = (Index(None, "kind", "bidx"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))  # phone | id_number
    bidx: Mapped[bytes] = mapped_column(LargeBinary(32))
    account_id: Mapped[str | None] = mapped_column(String(32))
    action_id: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


def refuse_account(rt: Runtime, db: Session, account_id: str, *, reason: str, action_id: int | None,
                   expires_at: datetime, now: datetime) -> list[str]:
    """In the caller's transaction: refuse the account's phone number and (verified) ID number until
    ``expires_at``. Returns the kinds refused."""
    account = db.get(Account, account_id)
    kinds = []
    for kind, bidx in (("phone", account.phone_bidx), ("id_number", account.id_number_bidx)):
        if kind == "id_number" and account.real_name_status != "verified":
            continue
        if bidx is None:
            continue
        db.add(Refusal(kind=kind, bidx=bidx, account_id=account_id, action_id=str(action_id) if action_id else None,
                       reason=reason, expires_at=expires_at, created_at=now))
        kinds.append(kind)
    db.flush()
    audit.record(db, at=now, action="registration.refused", origin=audit.Origin(channel="review"),
                 actor_type="system", subject_type="account", subject_id=account_id,
                 details={"kinds": kinds, "until": expires_at.isoformat(), "action_id": action_id})
    return kinds


def is_refused(db: Session, kind: str, lookup: tuple[bytes, bytes], now: datetime) -> bool:
    """Whether this phone or ID number (its blind index under the current and previous key) is refused now."""
    return db.scalar(select(Refusal.id).where(Refusal.kind == kind, Refusal.bidx.in_(lookup),
                                              Refusal.lifted_at.is_(None), Refusal.expires_at > now).limit(1)) \
        is not None


def lift(db: Session, action_id: int, now: datetime) -> int:
    """An appeal reversed the refusal: its rows are lifted."""
    return db.execute(update(Refusal).where(Refusal.action_id == str(action_id), Refusal.lifted_at.is_(None))
                      .values(lifted_at=now).execution_options(synchronize_session=False)).rowcount
