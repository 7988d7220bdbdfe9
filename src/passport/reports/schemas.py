"""Bodies of the reports and appeals API (issue 18)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from passport.schemas import Input


class ReportOut(BaseModel):
    id: str
    subject_type: str
    subject_id: str
    field: str | None = None
    category: str
    description: str
    evidence: int = Field(description="How many evidence images the report holds")
    status: str = Field(description="open | closed")
    outcome: str | None = Field(None, description="violation | no_violation, once closed")
    created_at: str
    closed_at: str | None = None


class ReportFiled(BaseModel):
    report: ReportOut
    merged: bool = Field(description="True when it was added to the reporter's open report of the same subject")


class AppealIn(Input):
    action_id: int = Field(ge=1, le=2**63 - 1, description="The action (from the notice's link) to appeal")
    text: str = Field(max_length=2000, description="Why the action should be reconsidered")


class LinkAppealIn(Input):
    token: str = Field(max_length=64, description="The token of the appeal link in the action's notice")
    text: str = Field(max_length=2000, description="Why the action should be reconsidered")


class AppealOut(BaseModel):
    id: str
    action_id: int
    text: str
    status: str = Field(description="pending | upheld | reversed")
    reason: str | None = None
    created_at: str
    decided_at: str | None = None


class ActionMine(BaseModel):
    id: int
    action: str
    field: str | None = None
    reason: str
    until: str | None = None
    created_at: str
    reversed_at: str | None = None
    appeal: AppealOut | None = None
    appealable: bool


class CaseDecisionIn(Input):
    outcome: Literal["violation", "no_violation"]
    reason: str = Field(max_length=1000)
    actions: list[Literal["reset_field", "warn", "require_correction", "restrict", "suspend", "terminate",
                          "refuse_registration", "revoke_verification", "dissolve"]] = Field(
        default_factory=list, max_length=9, description="account: reset_field … refuse_registration; organisation: "
                                                        "warn, suspend, revoke_verification, dissolve")
    field: Literal["nickname", "bio", "avatar"] | None = Field(None, description="reset_field, require_correction")
    until: datetime | None = Field(None, description="Suspension end (none: until lifted); correction deadline")
    escalate_to: Literal["restrict", "suspend", "terminate"] | None = Field(
        None, description="require_correction: what a missed deadline escalates to (default restrict)")
    refusal_days: int | None = Field(None, ge=1, le=3650, description="refuse_registration: how long")


class OrganizationActionIn(Input):
    action: Literal["warn", "suspend", "unsuspend", "revoke_verification", "dissolve"]
    reason: str = Field(max_length=1000)
    until: datetime | None = Field(None, description="suspend: the end (none: until lifted)")


class LegalHoldIn(Input):
    reason: str = Field(max_length=1000, description="Why (recorded in the audit log), at least 5 characters")


class AppealDecisionIn(Input):
    outcome: Literal["reversed", "upheld"]
    reason: str = Field(max_length=1000)
