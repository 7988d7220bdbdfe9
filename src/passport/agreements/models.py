from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from passport.db import Base, UTCDateTime


class AgreementVersion(Base):
    """A published version of a document. Immutable once published."""

    __tablename__ = "agreement_versions"
    __table_args__ = (UniqueConstraint("kind", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    requires_reconsent: Mapped[bool] = mapped_column(default=False)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Consent(Base):
    """Append-only consent ledger (COMPLIANCE A2)."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("account_id", "kind", "version"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    channel: Mapped[str] = mapped_column(String(8))
    # "explicit": the user accepted this text; "continued_use": a version that did not ask for
    # re-consent, recorded as accepted when the user next used the service (§二(三)).
    basis: Mapped[str] = mapped_column(String(16), default="explicit", server_default="explicit")


class PurposeConsent(Base):
    """Append-only grants and withdrawals of optional purposes such as marketing (COMPLIANCE A4).
    The newest row per (account, purpose) is the current state."""

    __tablename__ = "purpose_consents"
    __table_args__ = (Index("ix_purpose_consents_account_id_purpose_id", "account_id", "purpose", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    channel: Mapped[str] = mapped_column(String(8))
