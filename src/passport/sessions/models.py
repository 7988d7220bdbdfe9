from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from passport.db import Base, UTCDateTime, new_id


class LoginSession(Base):
    """A signed-in device. The bearer/cookie token is 256 random bits; only its SHA-256 is stored."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    method: Mapped[str] = mapped_column(String(16))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When this session last proved the password or an authenticator code (login, step-up, password
    # change): sensitive changes need it within PASSPORT_STEP_UP_MINUTES (guards.SteppedUp).
    stepped_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class KnownDevice(Base):
    """A device (browser or app) an account has signed in from. Only a keyed hash of the device
    cookie and the user-agent family is kept: no cookie value, no user agent, no IP."""

    __tablename__ = "known_devices"
    __table_args__ = (UniqueConstraint("account_id", "device_hash"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    device_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
