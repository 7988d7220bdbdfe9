"""In-site inbox, announcements and maintenance windows: JSON API (issue 5)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["notices"])
