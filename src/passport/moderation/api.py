"""POST /moderation/check (API.md "Account-information review"): the engine's answer for a text, for
staff now (reviewers and operators testing the lexicons); for platform apps once app credentials exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from passport.admin.service import StaffPrincipal
from passport.guards import staff_permission
from passport.moderation import service
from passport.moderation.schemas import CheckIn, CheckOut
from passport.web.http import Rt

router = APIRouter(tags=["moderation"])

Checker = Annotated[StaffPrincipal, Depends(staff_permission("moderation.check"))]


@router.post("/moderation/check", response_model=CheckOut)
def check(body: CheckIn, staff: Checker, rt: Rt) -> dict:
    """The verdict (``allow`` | ``review`` | ``block``), the normalised text and every hit with its
    category, rule and span in the submitted text. Reads only: nothing is stored or audited."""
    decision = service.check(rt, body.field, body.text)
    return decision.view() | {"lexicon_version": service.engine(rt).version}
