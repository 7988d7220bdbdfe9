"""JSON API under /api/v1/admin: staff login, dashboard, accounts, actions, reviews, audit."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/admin", tags=["admin"])
