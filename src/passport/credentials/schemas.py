from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from passport.accounts.schemas import AccountOut
from passport.schemas import Input


class CodeRequest(Input):
    channel: Literal["sms", "email"] = "sms"
    to: str = Field(min_length=1, max_length=254, examples=["13812345678"])
    purpose: str = Field(min_length=1, max_length=24, examples=["register"])


class CodeSent(BaseModel):
    expires_in: int = Field(examples=[300])
    resend_after: int = Field(examples=[60])


class PasswordChangeIn(Input):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class PasswordResetIn(Input):
    """Either ``code`` (an SMS code of purpose ``reset_password``) or ``recovery_key``."""

    phone: str = Field(min_length=1, max_length=32, examples=["13812345678"])
    code: str | None = Field(None, min_length=1, max_length=16, examples=["123456"])
    recovery_key: str | None = Field(None, min_length=1, max_length=64, examples=["ABCDE-FGHJK-LMNPQ-RSTUV-WXYZ2"])
    new_password: str = Field(min_length=1, max_length=256)

    @model_validator(mode="after")
    def _one_proof(self) -> PasswordResetIn:
        if (self.code is None) == (self.recovery_key is None):
            raise ValueError("give either code or recovery_key")
        return self


class PasswordIn(Input):
    password: str = Field(min_length=1, max_length=256)


class RecoveryKeyOut(BaseModel):
    recovery_key: str = Field(description="Shown once; only its Argon2id hash is kept. The old key no longer works.",
                              examples=["ABCDE-FGHJK-LMNPQ-RSTUV-WXYZ2"])


class FreezeIn(Input):
    phone: str = Field(min_length=1, max_length=32, examples=["13812345678"])
    code: str = Field(min_length=1, max_length=16, examples=["123456"], description="SMS code of purpose freeze")


class UnfreezeIn(Input):
    phone: str = Field(min_length=1, max_length=32, examples=["13812345678"])
    code: str = Field(min_length=1, max_length=16, examples=["123456"], description="SMS code of purpose unfreeze")
    recovery_key: str = Field(min_length=1, max_length=64)
    new_password: str = Field(min_length=1, max_length=256)


class OwnCodeIn(Input):
    purpose: Literal["cancel_account", "export", "change_phone_old"]


class PhoneChangeIn(Input):
    phone: str = Field(min_length=1, max_length=32, examples=["13912345678"])
    code: str = Field(min_length=1, max_length=16, examples=["123456"],
                      description="SMS code of purpose change_phone, sent to the new number")
    old_code: str | None = Field(None, min_length=1, max_length=16, examples=["654321"],
                                 description="SMS code of purpose change_phone_old, sent to the current number "
                                             "(POST /me/verification-codes); without it: 400 old_code_required")
    password: str = Field(min_length=1, max_length=256)


class PhoneChanged(BaseModel):
    """This client's new session (every other one ended; the old token answers 401) and the account."""

    id: str
    token: str
    expires_at: str
    account: AccountOut


class HeldPhoneChangeIn(Input):
    phone: str = Field(min_length=1, max_length=32, examples=["13912345678"])
    code: str = Field(min_length=1, max_length=16, examples=["123456"],
                      description="SMS code of purpose change_phone, sent to the new number")
    recovery_key: str = Field(min_length=1, max_length=64, examples=["ABCDE-FGHJK-LMNPQ-RSTUV-WXYZ2"])
    password: str = Field(min_length=1, max_length=256)


class HeldPhoneChange(BaseModel):
    id: str
    status: Literal["held"]
    phone: str | None = Field(description="The new number, masked.", examples=["139****5678"])
    requested_at: str
    effective_at: str = Field(description="When the worker applies it, unless cancelled first.")
    seconds_left: int


class NotMeIn(Input):
    token: str = Field(min_length=1, max_length=128, description="From the link in the notice.")


class NotMeOut(BaseModel):
    frozen: bool = Field(description="False when the platform holds the account in another status (every "
                                     "session ended all the same).")


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
