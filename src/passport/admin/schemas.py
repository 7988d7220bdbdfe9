from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from passport.schemas import Input


class StaffLoginIn(Input):
    login: str = Field(max_length=64, examples=["alice"])
    password: str = Field(max_length=256)
    totp: str = Field(max_length=16, examples=["123456"])


class StaffPasskeyOptionsIn(Input):
    login: str = Field(max_length=64, examples=["alice"])


class StaffPasskeyLoginIn(Input):
    """Password and a passkey assertion (for the options of ``POST /admin/sessions/passkey/options``)
    instead of a TOTP code."""

    login: str = Field(max_length=64, examples=["alice"])
    password: str = Field(max_length=256)
    credential: dict[str, Any] = Field(description="The PublicKeyCredential from navigator.credentials.get(), "
                                                   "as JSON (base64url fields).")


class StaffBrief(BaseModel):
    login: str
    role: str


class StaffLoginOut(BaseModel):
    token: str
    expires_at: str
    staff: StaffBrief


class StaffOut(BaseModel):
    id: str
    login: str
    role: str
    status: str
    created_at: str
    locked_until: str | None = None


class StaffCreateIn(Input):
    login: str = Field(max_length=64, examples=["alice"])
    role: Literal["superadmin", "reviewer", "auditor", "operator"]


class StaffCreatedOut(StaffOut):
    enrolment_url: str


class AccountCounts(BaseModel):
    total: int
    by_status: dict[str, int]


class DashboardOut(BaseModel):
    accounts: AccountCounts
    sessions_active_today: int
    pending_reviews: dict[str, int]
    overdue_reviews: dict[str, int] = {}
    audit_events_24h: int
