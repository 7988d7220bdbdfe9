from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ActivityItem(BaseModel):
    seq: int
    at: str
    action: str = Field(examples=["login.succeeded"])
    result: str = Field(examples=["ok"], description="ok | failed | denied")
    ip: str | None
    ip_region: str = Field(examples=["浙江"], description="Province in mainland China, country elsewhere, or 未知.")
    user_agent: str | None
    details: dict[str, Any] = Field(description="Masked details; secrets never appear.")


class ActivityPage(BaseModel):
    items: list[ActivityItem]
    next_before: int | None = Field(description="Pass as ?before= for the next (older) page; null on the last.")
