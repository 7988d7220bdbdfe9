"""Single sign-on (issue 19): the apps (OAuth 2 clients) that send users here, the codes and tokens
they get, the user's grants to them, the consent ledger of what each app was allowed to receive,
the ID-token signing keys and the back-channel logouts the worker sends.

Secrets are kept only as SHA-256 digests (client secrets, codes, access and refresh tokens: all 256
random bits); the private signing keys are sealed with the field cipher (``passport keys rotate``
re-encrypts them with the rest)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from passport.db import Base, UTCDateTime, new_id
from passport.security.crypto import SEALED, Field

SIGNING_KEY = Field("oidc_signing_keys", "private_enc", "oidc.signing_key")


class OidcApp(Base):
    """A registered app (an OAuth 2 client). ``status`` active | disabled: a disabled app gets nothing
    more and its tokens were revoked when it was disabled."""

    __tablename__ = "oidc_apps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    owner: Mapped[str | None] = mapped_column(String(200))  # the operator-verified owner, shown on consent
    secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))  # None: a public client (PKCE)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    redirect_uris: Mapped[list] = mapped_column(JSON)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    scopes: Mapped[list] = mapped_column(JSON)
    grant_types: Mapped[list] = mapped_column(JSON)
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    # Claims beyond the defaults an operator allowed this app (with the user's consent): "phone_number"
    # (the full number), "name" (the verified real name).
    allowed_claims: Mapped[list] = mapped_column(JSON, default=list)
    resource_server: Mapped[bool] = mapped_column(Boolean, default=False)  # may introspect other apps' tokens
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text)
    id_token_alg: Mapped[str] = mapped_column(String(8), default="RS256")
    sector: Mapped[str] = mapped_column(String(255))  # pairwise subject sector
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OidcCode(Base):
    """An authorization code: single use, short-lived, bound to the app, the redirect URI and the
    PKCE challenge. Kept after use until it expires, so that a second use is recognised (and revokes
    the tokens of the first)."""

    __tablename__ = "oidc_codes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("oidc_apps.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    session_id: Mapped[str | None] = mapped_column(String(32))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(8))
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    amr: Mapped[str | None] = mapped_column(String(64))
    acr: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OidcToken(Base):
    """An access token and (for the code flow) its refresh token. A refresh makes a new row in the same
    ``family_id``; the old refresh token is marked used, and using it again revokes the family."""

    __tablename__ = "oidc_tokens"
    __table_args__ = (Index("ix_oidc_tokens_account_id_app_id", "account_id", "app_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("oidc_apps.id"), index=True)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))  # None: client credentials
    session_id: Mapped[str | None] = mapped_column(String(32), index=True)  # the live session (moves on rotation)
    sid: Mapped[str | None] = mapped_column(String(32))  # the session id the app was told (ID token ``sid``)
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    code_id: Mapped[str | None] = mapped_column(String(32), index=True)
    access_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    refresh_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    scope: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refresh_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    amr: Mapped[str | None] = mapped_column(String(64))
    acr: Mapped[str | None] = mapped_column(String(64))


class OidcGrant(Base):
    """What the user allowed an app (the current state; the ledger keeps every decision)."""

    __tablename__ = "oidc_grants"
    __table_args__ = (UniqueConstraint("account_id", "app_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("oidc_apps.id"), index=True)
    scopes: Mapped[list] = mapped_column(JSON)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the app last received data


class OidcConsent(Base):
    """Append-only consent ledger of sharing with apps (PIPL Art. 23): purpose = the app, the scopes,
    when, from where and how; ``granted`` False records a refusal or a withdrawal."""

    __tablename__ = "oidc_consents"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("oidc_apps.id"))
    granted: Mapped[bool] = mapped_column(Boolean)
    scopes: Mapped[list] = mapped_column(JSON)
    basis: Mapped[str] = mapped_column(String(16))  # explicit | first_party | withdrawn | refused
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    channel: Mapped[str] = mapped_column(String(8))


class OidcSigningKey(Base):
    """An ID-token signing key. ``state`` active (signs) | retired (published in the JWKS until
    ``publish_until``, when the last token it signed has expired)."""

    __tablename__ = "oidc_signing_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    alg: Mapped[str] = mapped_column(String(8))
    private_enc: Mapped[bytes] = mapped_column(LargeBinary, info={SEALED: SIGNING_KEY})
    public_jwk: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    publish_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OidcLogout(Base):
    """A back-channel logout to send (OIDC Back-Channel Logout 1.0): the worker signs the logout
    token when it sends it, and retries with backoff until ``attempts`` reaches the limit."""

    __tablename__ = "oidc_logouts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("oidc_apps.id"), index=True)
    account_id: Mapped[str] = mapped_column(String(32), index=True)
    sub: Mapped[str] = mapped_column(String(64))
    sid: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200))
