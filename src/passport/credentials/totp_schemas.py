"""JSON shapes of the TOTP endpoints and the second login step."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from passport.schemas import Input


class TotpEnrolled(BaseModel):
    secret: str = Field(description="Base32 secret for manual entry in an authenticator app.",
                        examples=["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"])
    otpauth_uri: str = Field(description="Key URI for a QR code; the label is the masked phone number.",
                             examples=["otpauth://totp/%E5%A5%A5%E9%9B%86%E8%83%BD:138%2A%2A%2A%2A5678?secret=…"])


class TotpStatus(BaseModel):
    enabled: bool
    enabled_at: str | None
    pending: bool = Field(description="A secret was issued and waits for its first code.")


class TotpCodeIn(Input):
    code: str = Field(min_length=1, max_length=16, examples=["123456"])


class _CodeOrRecoveryKey(Input):
    code: str | None = Field(None, min_length=1, max_length=16, examples=["123456"])
    recovery_key: str | None = Field(None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_factor(self):
        if (self.code is None) == (self.recovery_key is None):
            raise ValueError("give either code or recovery_key")
        return self


class TotpDisableIn(_CodeOrRecoveryKey):
    """A current code from the app, or the recovery key when the app is lost."""


class MfaLoginIn(_CodeOrRecoveryKey):
    """The mfa_token from the 401 ``mfa_required`` answer, and a code or the recovery key."""

    mfa_token: str = Field(min_length=1, max_length=256)
