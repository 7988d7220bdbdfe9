"""Cancellation requests and their finalisation state (issue 8)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from passport.db import Base, UTCDateTime, new_id


class CancellationRequest(Base):
    """One request to cancel an account (COMPLIANCE D1). ``cooling_off`` until ``effective_at``; then
    the worker finalises it, unless the owner withdrew it first. It stays after finalisation, linked
    to the tombstone, as the record of when the account ended; it holds no personal data."""

    __tablename__ = "cancellation_requests"
    # At most one cooling_off request per account: a second one would outlive a withdrawal.
    __table_args__ = (Index(None, "status", "effective_at"),
                      Index("uq_cancellation_requests_pending_account_id", "account_id", unique=True,
                            sqlite_where=text("status = 'cooling_off'"),
                            postgresql_where=text("status = 'cooling_off'")))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    # cooling_off -> withdrawn | finalised | void (the platform suspended or terminated the account meanwhile)
    status: Mapped[str] = mapped_column(String(16))
    # The status the account goes back to on withdrawal (active or restricted).
    previous_status: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
