from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from passport.schemas import Input


class RealName(BaseModel):
    status: Literal["none", "pending", "verified", "rejected"]
    name: str | None = None
    id_number: str | None = None


class PendingAgreement(BaseModel):
    kind: str
    version: str


class AccountOut(BaseModel):
    id: str
    kind: Literal["person", "organization"]
    status: str
    restricted: bool = Field(False, description="Restricted by the platform (issue 18): account information, the "
                                               "email, new organisations and invitations cannot be changed; apps "
                                               "should hold back what their rules tie to it")
    nickname: str
    bio: str | None = None
    phone: str | None = Field(None, examples=["138****5678"])
    email: str | None = Field(None, examples=["a***@example.com"])
    real_name: RealName
    created_at: str
    pending_agreements: list[PendingAgreement] = []
    pending_review: dict[str, str] = Field(
        default_factory=dict, examples=[{"nickname": "新昵称"}],
        description="Changes held for review (the old value stays until a reviewer approves), by field "
                    "(``avatar``: the id of the image waiting).")
    avatar_url: str | None = Field(None, description="The approved avatar shown to others.")


class ProfileHeld(BaseModel):
    status: Literal["pending_review"]
    fields: list[Literal["nickname", "bio", "avatar"]]


# An account as the API shows it (masked), for the examples of the operations that answer one.
ACCOUNT_EXAMPLE = {
    "id": "0c5d2f4e-8a1b-4c6d-9e7f-1a2b3c4d5e6f", "kind": "person", "status": "active", "nickname": "小明",
    "bio": None, "phone": "138****5678", "email": None,
    "real_name": {"status": "none", "name": None, "id_number": None}, "created_at": "2026-05-01T08:00:00Z",
    "pending_agreements": []}


class SessionIssued(BaseModel):
    id: str
    token: str
    expires_at: str


class ProfileIn(Input):
    nickname: str | None = Field(None, max_length=64)
    bio: str | None = Field(None, max_length=1000)


class EmailIn(Input):
    email: str = Field(min_length=1, max_length=254, examples=["alice@example.com"])


class EmailCodeIn(Input):
    code: str = Field(min_length=1, max_length=16, examples=["123456"])


class EmailCodeSent(BaseModel):
    expires_in: int = Field(examples=[300], description="Seconds the code sent to the address stays valid.")
    resend_after: int = Field(examples=[60])


class PublicOrganization(BaseModel):
    id: str
    name: str


class PublicProfile(BaseModel):
    """What any signed-in account sees of another (Art. 12): never the phone, email or real name."""

    id: str
    nickname: str
    avatar_url: str | None = Field(None, examples=["/u/7f3a.../avatar/9c1e..."],
                                   description="The approved avatar (absent while none is approved).")
    bio: str | None = None
    ip_region: str = Field(examples=["浙江"], description="IP region of the last login: the province in mainland "
                           "China, 中国香港/中国澳门/中国台湾, the country elsewhere, 未知 when not known.")
    real_name_verified: bool
    organizations: list[PublicOrganization] = Field(
        description="Verified organisations the account administers (name and id).")
