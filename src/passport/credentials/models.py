from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from passport.db import Base, UTCDateTime


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
    target_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
