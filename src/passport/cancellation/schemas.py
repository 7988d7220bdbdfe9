"""Cancellation, export and phone-change inputs and outputs (issue 8)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from passport.schemas import Input


class CancellationIn(Input):
    password: str = Field(min_length=1, max_length=256)
    code: str = Field(min_length=1, max_length=16, examples=["123456"],
                      description="SMS code of purpose cancel_account, sent to the account's own phone")


class CancellationOut(BaseModel):
    id: str
    status: Literal["cooling_off", "withdrawn", "finalised", "void"]
    requested_at: str
    effective_at: str = Field(description="When the worker finalises the cancellation unless it is withdrawn.")
    closed_at: str | None = None
    seconds_left: int = Field(description="Seconds of cooling-off left (0 once it has ended).")


class ExportIn(Input):
    code: str = Field(min_length=1, max_length=16, examples=["123456"],
                      description="SMS code of purpose export, sent to the account's own phone")


