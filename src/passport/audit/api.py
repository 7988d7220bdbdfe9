"""JSON API: the account's own activity trail."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["activity"])
