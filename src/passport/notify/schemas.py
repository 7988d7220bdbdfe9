"""Inputs of the notices API: inbox, preferences, unsubscribe, announcements, maintenance windows."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, StrictBool

from passport.schemas import Input


class PreferencesIn(Input):
    marketing: StrictBool = Field(description="Marketing messages (optional consent); service notices are always sent")


class UnsubscribeIn(Input):
    token: str = Field(max_length=200, description="The signed token of the link in a marketing message")


class AnnouncementIn(Input):
    title: str = Field(max_length=200)
    body: str = Field(max_length=20_000, description="Markdown (no raw HTML)")
    audience: Literal["all", "persons", "organizations"] = "all"
    starts_at: datetime | None = Field(None, description="Default: now")
    ends_at: datetime | None = Field(None, description="Default: until ended by an operator")


class MaintenanceIn(Input):
    starts_at: datetime
    ends_at: datetime
    message: str = Field(max_length=2_000)


class RetryIn(Input):
    since: datetime | None = Field(None, description="Only notices queued since then")
