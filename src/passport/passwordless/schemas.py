"""API bodies of QR login and passkeys (issue 21)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from passport.schemas import Input


class QrLoginCreated(BaseModel):
    id: str = Field(description="The request's code (192 random bits), as in the QR code's URL.")
    qr_payload: str = Field(description="What the QR code holds: `{PASSPORT_BASE_URL}/qr/{id}`.")
    qr_image: str = Field(description="The QR code as an SVG data URI, drawn by the service.")
    expires_in: int
    expires_at: str


class QrLoginStatus(BaseModel):
    status: str = Field(description="pending | scanned | approved | rejected | expired | used")
    expires_at: str
    id: str | None = Field(None, description="With `approved`: the new session's id.")
    token: str | None = Field(None, description="With `approved` (once): the new session's token; the "
                                                "`passport_session` cookie is set too.")
    session_expires_at: str | None = None


class QrLoginDetails(BaseModel):
    """Where the waiting request comes from, for the approving device to show."""

    id: str
    status: str
    requested_at: str
    expires_at: str
    device: str = Field(description='Browser and system family, e.g. "Chrome on Windows".')
    ip: str | None
    ip_region: str


class PasskeyOptionsIn(Input):
    """Sign-in options: without ``phone``, for the browser's passkey picker (discoverable
    credentials); with it, ``allowCredentials`` for that number (a number without an account or
    without passkeys gets stable made-up ones: the answer never says whether an account exists)."""

    phone: str | None = Field(None, max_length=32)


class PasskeyLoginIn(Input):
    credential: dict[str, Any] = Field(description="The PublicKeyCredential from navigator.credentials.get(), "
                                                   "as JSON (base64url fields).")


class PasskeyRegisterIn(Input):
    credential: dict[str, Any] = Field(description="The PublicKeyCredential from navigator.credentials.create(), "
                                                   "as JSON (base64url fields).")
    name: str | None = Field(None, max_length=64)


class PasskeyRenameIn(Input):
    name: str = Field(min_length=1, max_length=64)


class PasskeyOut(BaseModel):
    id: str
    name: str
    created_at: str
    last_used_at: str | None
    transports: list[str]
