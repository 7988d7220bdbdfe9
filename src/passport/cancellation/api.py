"""Cancellation and personal-data export: JSON API (issue 8)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["cancellation"])
