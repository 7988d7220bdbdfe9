"""The base of every JSON input schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

# Bounds of the integers clients page with (issue 16): a value past a BIGINT reached PostgreSQL as a 500.
MAX_OFFSET = 100_000  # ?offset= of a staff list: deeper pages are found by searching, not paging
MAX_SEQ = 2**63 - 1  # ?before= a sequence number (a BIGINT)


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_lone_surrogate(v) for v in value)
    return False


class Input(BaseModel):
    """Unknown fields are refused, and so are strings that are not valid Unicode: JSON may carry a
    lone surrogate escape (``"\\ud800"``), which no UTF-8 encoder, hash or database accepts."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        if _has_lone_surrogate(value):
            raise ValueError("text must be valid Unicode")
        return value
