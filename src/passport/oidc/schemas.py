from __future__ import annotations

from pydantic import BaseModel


class AppGrantOut(BaseModel):
    client_id: str
    name: str
    owner: str | None
    scopes: list[str]
    claims: list[str]
    first_party: bool
    status: str
    granted_at: str
    last_issued_at: str | None
