from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from passport.db import Base, UTCDateTime, new_id
from passport.security.crypto import SEALED, Field

EMAIL_CANDIDATE = Field("verification_codes", "target_enc", "code.email_candidate")


class VerificationCode(Base):
    """One code sent over SMS or email. Only an HMAC of it is kept (six digits are enumerable)."""

    __tablename__ = "verification_codes"
    __table_args__ = (Index(None, "target_bidx", "purpose", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    channel: Mapped[str] = mapped_column(String(8))
    purpose: Mapped[str] = mapped_column(String(24))
    target_bidx: Mapped[bytes] = mapped_column(LargeBinary(32))
    code_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    # False when nothing was delivered (e.g. a login code for a number with no account):
    # the caller saw the same answer either way.
    delivered: Mapped[bool] = mapped_column(default=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    ip: Mapped[str | None] = mapped_column(String(45))
    # The signed-in account that asked for it (a bind_email code, a code to its own phone); None for
    # the codes anyone may ask for (register, login, reset, freeze).
    requested_by: Mapped[str | None] = mapped_column(String(32), index=True)
    # bind_email: the candidate address itself, encrypted, kept with its code and nowhere else until
    # the code proves it (then it is bound); None for every other purpose.
    target_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info={SEALED: EMAIL_CANDIDATE})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


NEW_PHONE = Field("phone_changes", "new_phone_enc", "phone_change.new_phone")


class PhoneChange(Base):
    """A phone change proved by the recovery key, not by the old number (issue 15): ``held`` until
    ``effective_at`` while the old number, the email and the inbox are told; then the worker applies
    it, unless the owner cancelled it or followed the "this was not me" link first. The new number is
    kept encrypted only while the change is held."""

    __tablename__ = "phone_changes"
    # At most one held change per account.
    __table_args__ = (Index(None, "status", "effective_at"),
                      Index("uq_phone_changes_held_account_id", "account_id", unique=True,
                            sqlite_where=text("status = 'held'"), postgresql_where=text("status = 'held'")))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    # held -> applied | cancelled (by the owner, the link, a freeze, another change) | failed
    status: Mapped[str] = mapped_column(String(16))
    new_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info={SEALED: NEW_PHONE})
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why it closed: applied, owner, not_me, frozen, superseded, phone_taken, account_status.
    outcome: Mapped[str | None] = mapped_column(String(16))
