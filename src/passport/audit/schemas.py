from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ActivityItem(BaseModel):
    seq: int
    at: str
    action: str = Field(examples=["login.succeeded"])
    result: str = Field(examples=["ok"], description="ok | failed | denied")
    actor: str = Field(examples=["self"], description="Who did it: self (this account) | staff (platform staff) | "
                                                      "system | other (someone else, e.g. a failed login). "
                                                      "Never an id.")
    ip: str | None = Field(None, description="Only on the account's own events.")
    ip_region: str | None = Field(None, examples=["浙江"],
                                  description="Province in mainland China, country elsewhere, or 未知; "
                                              "only on the account's own events.")
    user_agent: str | None = Field(None, description="Only on the account's own events.")
    details: dict[str, Any] = Field(default_factory=dict,
                                    description="Masked details of the account's own events; secrets never appear.")
    reason: str | None = Field(None, description="On others' events: the reason the account was told (e.g. of a "
                                                 "staff action); internal notes never appear.")


class ActivityPage(BaseModel):
    items: list[ActivityItem]
    next_before: int | None = Field(description="Pass as ?before= for the next (older) page; null on the last.")
