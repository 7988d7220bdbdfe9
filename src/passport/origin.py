"""Where a request came from: recorded with every audit event and consent."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    ip: str | None = None
    user_agent: str | None = None
    channel: str = "api"  # api | web | cli | worker
