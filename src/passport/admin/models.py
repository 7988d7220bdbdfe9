from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from passport.db import Base, UTCDateTime, new_id
from passport.security.crypto import SEALED, Field

STAFF_TOTP_SECRET = Field("staff", "totp_secret_enc", "staff.totp_secret")


class Staff(Base):
    """A platform staff member: separate from user accounts, one role each, TOTP mandatory."""

    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # superadmin | reviewer | auditor | operator
    status: Mapped[str] = mapped_column(String(16), default="enrolling")  # enrolling | active | disabled
    password_hash: Mapped[str | None] = mapped_column(String(256))
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info={SEALED: STAFF_TOTP_SECRET})
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    enrolment_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    enrolment_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(32))


class StaffSession(Base):
    """Staff sign-ins: 30-minute idle timeout (COMPLIANCE C5)."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), index=True)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AccountAction(Base):
    """An enforcement action taken by staff on an account (COMPLIANCE R3, I3): the history the
    account detail page shows; each one also has its audit event."""

    __tablename__ = "account_actions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    action: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Issue 18. The status the account had before (what a reversal on appeal restores); the report case
    # (review item) whose decision took it, shared by the actions of one decision; the field a
    # ``reset_field`` reset or a ``require_correction`` asks to correct; the action a missed correction
    # deadline escalates to; when the deadline was settled (corrected, escalated, reversed) and its
    # reminder sent; when an appeal reversed the action.
    from_status: Mapped[str | None] = mapped_column(String(16))
    review_id: Mapped[str | None] = mapped_column(String(32), index=True)
    field: Mapped[str | None] = mapped_column(String(16))
    field_digest: Mapped[str | None] = mapped_column(String(64))
    escalate_to: Mapped[str | None] = mapped_column(String(24))
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
