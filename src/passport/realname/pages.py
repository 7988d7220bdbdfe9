"""Real-name and organisation pages, user and reviewer side (issue 7)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
