"""Reports of accounts and organisations, appeals of actions, legal holds (issue 18)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from passport.db import Base, UTCDateTime, new_id
from passport.security.crypto import SEALED, Field

# The right holder's details of an infringement report (a name and a contact): personal data, sealed.
RIGHT_HOLDER = Field("reports", "right_holder_enc", "report.right_holder")
# What the reporter and the appellant write may name people, numbers, places: sealed too.
DESCRIPTION = Field("reports", "description_enc", "report.description")
APPEAL_TEXT = Field("appeals", "text_enc", "appeal.text")


class Report(Base):
    """One reporter's report of one subject. A repeat report of the same subject by the same reporter
    while the first is open is merged into it; every open report of a subject points at the subject's
    one pending case (a ``reports`` review item), whose priority is the number of its reporters."""

    __tablename__ = "reports"
    __table_args__ = (Index(None, "reporter_id", "subject_type", "subject_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    reporter_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    subject_type: Mapped[str] = mapped_column(String(16))  # account | organization | platform (a complaint)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    field: Mapped[str | None] = mapped_column(String(16))  # nickname | avatar | bio | name
    category: Mapped[str] = mapped_column(String(24))
    description_enc: Mapped[bytes] = mapped_column(LargeBinary, info={SEALED: DESCRIPTION})
    right_holder_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info={SEALED: RIGHT_HOLDER})
    evidence: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of realname_documents ids
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    outcome: Mapped[str | None] = mapped_column(String(16))  # violation | no_violation
    review_id: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the reporter's words gone (cancelled)


class Appeal(Base):
    """An account holder's appeal of an action (a decision's actions share its case): decided in the
    ``appeals`` queue by a reviewer other than the one who acted."""

    __tablename__ = "appeals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    action_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("account_actions.id"), unique=True)
    text_enc: Mapped[bytes] = mapped_column(LargeBinary, info={SEALED: APPEAL_TEXT})
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | upheld | reversed
    reason: Mapped[str | None] = mapped_column(Text)
    review_id: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the appellant's words gone (cancelled)


class LegalHold(Base):
    """A superadmin's hold on a terminated account: the retention sweep does not anonymise it while
    the hold stands (a court or authority asked to keep the data)."""

    __tablename__ = "legal_holds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    staff_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
