"""JSON API: TOTP enrolment (/me/totp…) and the second login step (/sessions/mfa)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["two-factor"])
