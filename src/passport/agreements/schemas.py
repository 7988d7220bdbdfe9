from __future__ import annotations

from pydantic import BaseModel


class VersionOut(BaseModel):
    kind: str
    version: str
    title: str
    effective_at: str
    digest: str
    requires_reconsent: bool


class DocumentOut(VersionOut):
    body: str


class ConsentOut(BaseModel):
    kind: str
    version: str
    digest: str
    accepted_at: str
    ip: str | None
    channel: str
