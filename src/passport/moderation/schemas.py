from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from passport.schemas import Input


class CheckIn(Input):
    field: Literal["nickname", "bio", "organization_name", "text"] = "text"
    text: str = Field(max_length=10_000)


class HitOut(BaseModel):
    category: str = Field(examples=["impersonation"])
    start: int = Field(description="Offset in the submitted text (characters), inclusive.")
    end: int = Field(description="Offset in the submitted text (characters), exclusive.")
    rule: str = Field(examples=["impersonation.toml:国务院", "pattern:mobile"])
    verdict: Literal["review", "block"]


class CheckOut(BaseModel):
    verdict: Literal["allow", "review", "block"]
    normalized: str = Field(description="The text as the lexicons see it (compact form).")
    hits: list[HitOut]
    lexicon_version: str
