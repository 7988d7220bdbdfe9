"""JSON API: the account's own activity trail."""

from __future__ import annotations

from fastapi import APIRouter, Query

from passport.accounts import service as accounts
from passport.audit.schemas import ActivityPage
from passport.guards import Authenticated
from passport.web.http import Rt

router = APIRouter(tags=["activity"])


@router.get("/me/activity", response_model=ActivityPage)
def my_activity(principal: Authenticated, rt: Rt,
                before: int | None = Query(None, ge=1, description="Only events older than this seq."),
                limit: int = Query(20, ge=1, le=accounts.ACTIVITY_PAGE_MAX)) -> dict:
    """The account's own trail, newest first: logins, failures and changes (COMPLIANCE C3)."""
    return accounts.activity(rt, principal.account_id, before=before, limit=limit)
