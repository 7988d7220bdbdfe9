"""Agreement pages: public versions, history, re-consent interstitial, diff (issue 6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
