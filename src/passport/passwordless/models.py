"""QR-code login requests and passkeys (issue 21)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from passport.db import Base, UTCDateTime, new_id


class QrLogin(Base):
    """A browser waiting to be signed in by a signed-in device. The id shown in the QR code (192
    random bits) is kept only as its SHA-256, and so is the cookie secret that binds the request to
    the browser that made it: a database dump names no request a reader could approve or collect."""

    __tablename__ = "qr_logins"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    browser_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    # pending → scanned → approved → used; or rejected. Expiry is read from expires_at.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    ip: Mapped[str | None] = mapped_column(String(45))  # of the waiting browser, shown to the approver
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # The account whose device scanned it first; only that account may approve or reject it.
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    session_id: Mapped[str | None] = mapped_column(String(32))  # the waiting browser's new session


class Passkey(Base):
    """A WebAuthn credential of an account, or of a staff member (their second factor instead of a
    TOTP code): exactly one of ``account_id`` and ``staff_id`` is set. The credential id and public
    key are not secrets; the sign count detects a cloned authenticator (it must grow when the
    authenticator keeps one)."""

    __tablename__ = "passkeys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    staff_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    transports: Mapped[str | None] = mapped_column(String(128))  # comma-separated hints
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PasskeyChallenge(Base):
    """A WebAuthn challenge handed out with registration or sign-in options: used once, for a few
    minutes. Kept as its SHA-256; the answer's clientDataJSON names it."""

    __tablename__ = "passkey_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    challenge_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))  # register | login | staff_register | staff_login
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    staff_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
