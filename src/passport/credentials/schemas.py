from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

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
