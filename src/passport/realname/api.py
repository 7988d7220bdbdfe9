"""Real-name verification and organisation accounts: JSON API (issue 7)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["real-name"])
