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


class EntryIn(Input):
    term: str = Field(max_length=200, examples=["代刷"], description="1 to 64 characters (422 invalid_term)")
    category: str = Field(max_length=32, examples=["illegal_services"])
    verdict: str = Field(max_length=8, description="block | review | allow (an exemption)")
    fields: list[str] | None = Field(None, max_length=4, description="Fields it applies to (default: all)")
    context: str | None = Field(None, max_length=32, description="A context name of the lexicon files")


class EntryOut(BaseModel):
    id: str
    term: str
    category: str
    verdict: str
    fields: list[str]
    context: str | None
    added_by: str | None
    created_at: str


class EntryListOut(BaseModel):
    version: int
    items: list[EntryOut]


class ImageBlockOut(BaseModel):
    id: str
    phash: str
    category: str
    note: str | None
    added_by: str | None
    created_at: str
