from __future__ import annotations

from pydantic import BaseModel, Field

from passport.accounts.schemas import AccountOut, SessionIssued
from passport.schemas import Input


class RegisterIn(Input):
    phone: str = Field(min_length=1, max_length=32, examples=["13812345678"])
    code: str = Field(min_length=1, max_length=16, examples=["123456"])
    password: str = Field(min_length=1, max_length=256)
    nickname: str = Field(min_length=1, max_length=64)
    agreements: dict[str, str] = Field(
        default_factory=dict, examples=[{"user-agreement": "1.0", "privacy-policy": "1.0"}],
        description="The versions the user explicitly accepted; must be the current ones.")


class Registered(BaseModel):
    account: AccountOut
    recovery_key: str = Field(description="Shown once; only its Argon2id hash is kept.")
    session: SessionIssued
