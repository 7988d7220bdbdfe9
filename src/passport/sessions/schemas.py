from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from passport.accounts.schemas import AccountOut
from passport.schemas import Input


class LoginIn(Input):
    """Either ``login`` (phone or email) + ``password``, or ``phone`` + SMS ``code``."""

    login: str | None = Field(None, max_length=254, examples=["13812345678"])
    password: str | None = Field(None, max_length=256)
    phone: str | None = Field(None, max_length=32)
    code: str | None = Field(None, max_length=16)

    @model_validator(mode="after")
    def _one_method(self) -> LoginIn:
        by_password = self.login is not None and self.password is not None
        by_code = self.phone is not None and self.code is not None
        if by_password == by_code:
            raise ValueError("give either login and password, or phone and code")
        return self


class SessionIssued(BaseModel):
    """A new session token (the bearer token, or the ``passport_session`` cookie's value)."""

    id: str
    token: str
    expires_at: str


class StepUpIn(Input):
    """Either the ``password`` or, when two-step verification is on, a ``code`` from the authenticator app."""

    password: str | None = Field(None, min_length=1, max_length=256)
    code: str | None = Field(None, min_length=1, max_length=16, examples=["123456"])

    @model_validator(mode="after")
    def _one_proof(self) -> StepUpIn:
        if (self.password is None) == (self.code is None):
            raise ValueError("give either password or code")
        return self


class StepUpOut(SessionIssued):
    stepped_up_until: str = Field(description="Until when sensitive changes need no new step-up "
                                              "(PASSPORT_STEP_UP_MINUTES after this one).")


class LoginOut(SessionIssued):
    account: AccountOut


class SessionOut(BaseModel):
    id: str
    created_at: str
    last_seen_at: str
    ip: str | None
    ip_region: str | None
    user_agent: str | None
    method: str
    current: bool
