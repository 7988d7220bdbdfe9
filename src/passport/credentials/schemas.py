from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from passport.schemas import Input


class CodeRequest(Input):
    channel: Literal["sms", "email"] = "sms"
    to: str = Field(min_length=1, max_length=254, examples=["13812345678"])
    purpose: str = Field(min_length=1, max_length=24, examples=["register"])


class CodeSent(BaseModel):
    expires_in: int = Field(examples=[300])
    resend_after: int = Field(examples=[60])
