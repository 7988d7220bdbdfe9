"""Organisations, their administrators and licence files; verification attempts (issue 7)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from passport.db import Base, UTCDateTime, new_id
from passport.security.crypto import INDEXED, SEALED, Field, Indexed

# Encrypted columns (see accounts.models); the uploaded files are sealed bound to their document's id.
DOCUMENT_FILE = Field("realname_documents", "file", "realname.document")
ATTEMPT_NAME = Field("realname_attempts", "name_enc", "realname.name")
ATTEMPT_ID_NUMBER = Field("realname_attempts", "id_number_enc", "realname.id_number")
LEGAL_REPRESENTATIVE = Field("organizations", "legal_representative_enc", "organization.legal_representative")
CONTACT_PHONE = Field("organizations", "contact_phone_enc", "organization.contact_phone")
SEALED_FILE = "sealed_file"  # Column.info key: the column names a file under data_dir/uploads sealed as this Field


class Document(Base):
    """An uploaded file (ID document image, business licence): encrypted under data_dir/uploads with a
    random name, outside the web root; only reviewers read it, through an audited admin route."""

    __tablename__ = "realname_documents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # id_document | license
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_name: Mapped[str] = mapped_column(String(64), unique=True, info={SEALED_FILE: DOCUMENT_FILE})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Attempt(Base):
    """One person verification: what was submitted (encrypted), through which provider, the outcome."""

    __tablename__ = "realname_attempts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    provider: Mapped[str] = mapped_column(String(16))  # http | manual | dev
    status: Mapped[str] = mapped_column(String(16))  # pending | verified | rejected | failed
    name_enc: Mapped[bytes] = mapped_column(LargeBinary, info={SEALED: ATTEMPT_NAME})
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary, info={SEALED: ATTEMPT_ID_NUMBER})
    id_number_bidx: Mapped[bytes] = mapped_column(LargeBinary(32), index=True,
                                                  info={INDEXED: Indexed("id_number", "id_number_enc")})
    document_id: Mapped[str | None] = mapped_column(ForeignKey("realname_documents.id"))
    review_id: Mapped[str | None] = mapped_column(String(32))
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Organization(Base):
    """An organisation account (COMPLIANCE R2): public name and USCC, encrypted legal representative
    and contact phone, reviewed before it is verified."""

    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    # The USCC while the application is pending or verified, NULL once rejected: one live holder per code.
    uscc_live: Mapped[str | None] = mapped_column(String(18), unique=True)
    # NULL once erased: an application withdrawn or left with no administrator by a cancelled account.
    legal_representative_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info={SEALED: LEGAL_REPRESENTATIVE})
    contact_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info={SEALED: CONTACT_PHONE})
    # pending_review | verified | rejected | withdrawn | revoked (verification revoked by staff) | dissolved
    status: Mapped[str] = mapped_column(String(16), index=True)
    strict_review: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reason: Mapped[str | None] = mapped_column(Text)
    license_id: Mapped[str | None] = mapped_column(ForeignKey("realname_documents.id"))
    review_id: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(32), index=True)
    ip: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Suspended by staff (issue 18): the public page shows 已暂停 with the reason; NULL: not suspended.
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspended_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspension_reason: Mapped[str | None] = mapped_column(Text)


class OrganizationAdmin(Base):
    """An administrator, or (``accepted_at`` NULL) an invitation the invitee has not accepted yet: an
    invited row is no administrator and no cancellation blocker."""

    __tablename__ = "organization_admins"

    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True, index=True)
    added_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
