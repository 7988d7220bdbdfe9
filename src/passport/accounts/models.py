from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from passport.db import Base, UTCDateTime, new_id
from passport.identity.email import email_key
from passport.security.crypto import INDEXED, SEALED, Field, Indexed

# Encrypted columns (the associated data binds table, column and row id; ``legacy``: the field name
# version 1 ciphertexts were bound to). ``passport keys rotate`` finds them by their Column.info.
PHONE = Field("accounts", "phone_enc", "account.phone")
EMAIL = Field("accounts", "email_enc", "account.email")
EMAIL_PENDING = Field("accounts", "email_pending_enc", "account.email_pending")
REAL_NAME = Field("accounts", "real_name_enc", "account.real_name")
ID_NUMBER = Field("accounts", "id_number_enc", "account.id_number")
TOTP_SECRET = Field("accounts", "totp_secret_enc", "account.totp_secret")


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16), default="person")
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    nickname: Mapped[str] = mapped_column(String(64))
    bio: Mapped[str | None] = mapped_column(Text)
    # A change held for review (COMPLIANCE I1): shown to the owner, applied when a reviewer approves.
    nickname_pending: Mapped[str | None] = mapped_column(String(64))
    bio_pending: Mapped[str | None] = mapped_column(Text)
    # The avatar others see (an approved ``avatars`` row) and the one waiting for a reviewer.
    avatar_id: Mapped[str | None] = mapped_column(String(32))
    avatar_pending_id: Mapped[str | None] = mapped_column(String(32))
    # Personal data: AES-GCM ciphertext plus an HMAC blind index for look-ups (ARCHITECTURE "Storage").
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info={SEALED: PHONE})
    phone_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True,
                                                     info={INDEXED: Indexed("phone", "phone_enc")})
    email_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info={SEALED: EMAIL})
    email_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True,
                                                     info={INDEXED: Indexed("email", "email_enc", email_key)})
    # Real-name data (COMPLIANCE R1): encrypted, the ID number also as a blind index for staff search
    # and the per-ID account limit. Filled by real-name verification.
    real_name_status: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    real_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info={SEALED: REAL_NAME})
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info={SEALED: ID_NUMBER})
    id_number_bidx: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True,
                                                         info={INDEXED: Indexed("id_number", "id_number_enc")})
    # An address waiting for its code (bind_email); it moves to email_* once verified.
    email_pending_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info={SEALED: EMAIL_PENDING})
    email_pending_bidx: Mapped[bytes | None] = mapped_column(
        LargeBinary(32), info={INDEXED: Indexed("email", "email_pending_enc", email_key)})
    password_hash: Mapped[str | None] = mapped_column(String(256))
    recovery_key_hash: Mapped[str | None] = mapped_column(String(256))
    # TOTP second factor (RFC 6238): encrypted secret; enabled once a first code confirms it;
    # the last accepted 30-second step, so a code is never accepted twice.
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary, info={SEALED: TOTP_SECRET})
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Avatar(Base):
    """An uploaded avatar, re-encoded (no metadata, bounded size): ``pending`` (waiting for a reviewer),
    ``approved`` (may be shown; the account's ``avatar_id`` names the one shown), ``rejected`` or
    ``removed`` (replaced, reset or deleted: the image is dropped). ``phash``: its perceptual hash (hex),
    matched against the operators' image blocklist."""

    __tablename__ = "avatars"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    image: Mapped[bytes | None] = mapped_column(LargeBinary)
    content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    phash: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
