"""Inputs and outputs of the real-name and organisation API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from passport.schemas import Input


class RealNameIn(Input):
    name: str = Field(min_length=1, max_length=64, examples=["张三"])
    id_number: str = Field(min_length=1, max_length=32, examples=["11010519491231002X"])


class RealNameOut(BaseModel):
    status: Literal["verified", "rejected", "pending"]
    reason: str | None = Field(None, description="Why it was rejected, e.g. name_id_mismatch")
    provider: Literal["http", "manual", "dev"]


class RealNameStatusOut(BaseModel):
    status: Literal["none", "pending", "verified", "rejected"]
    name: str | None = Field(None, examples=["张*三"])
    id_number: str | None = Field(None, examples=["1101**********002X"])
    provider: str | None = None
    reason: str | None = None
    submitted_at: str | None = None


class OrganizationCreated(BaseModel):
    id: str
    status: Literal["pending_review"]
    strict_review: bool = Field(description="The name holds terms (中国, 国家, organ names…) that need strict review")


class OrganizationPublic(BaseModel):
    id: str
    name: str
    uscc: str = Field(examples=["91110000600037341L"])
    contact_phone: str = Field(examples=["138****5678"])
    ip_region: str = Field(examples=["北京"])
    status: Literal["pending_review", "verified", "revoked"]
    suspended: bool = Field(False, description="Suspended by the platform (the page shows 已暂停)")
    suspension_reason: str | None = None
    verified_at: str | None = None
    created_at: str


class OrganizationMine(BaseModel):
    id: str
    name: str
    uscc: str
    status: Literal["pending_review", "verified", "rejected", "withdrawn"]
    reason: str | None = None
    strict_review: bool
    created_at: str


class OrganizationWithdrawn(BaseModel):
    id: str
    status: Literal["withdrawn"]
    strict_review: bool


class AdministratorIn(Input):
    phone: str = Field(min_length=1, max_length=32, examples=["13812345678"])


class AdministratorOut(BaseModel):
    account_id: str
    nickname: str
    phone: str | None = Field(None, examples=["138****5678"])
    added_at: str | None = None
    you: bool = False


class AdministratorInvited(BaseModel):
    """The same answer whether or not the number has an account."""

    status: Literal["invited"]
    phone: str = Field(examples=["138****5678"])


class InvitationOut(BaseModel):
    id: str = Field(description="The organisation")
    name: str
    uscc: str
    status: Literal["pending_review", "verified"]
    invited_at: str


class RevokeIn(Input):
    reason: str = Field(min_length=1, max_length=500, examples=["身份证号被他人冒用，本人已申诉"])
