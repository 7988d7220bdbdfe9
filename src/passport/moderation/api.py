"""POST /moderation/check (API.md "Account-information review"): the engine's answer for a text, for
staff (reviewers and operators testing the lexicons) and for platform apps with an access token of the
``moderation`` scope (client credentials, single sign-on)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from passport.guards import staff_permission
from passport.moderation import service
from passport.moderation.schemas import CheckIn, CheckOut
from passport.oidc import service as oidc
from passport.web import http
from passport.web import openapi as web_openapi
from passport.web.http import Rt

router = APIRouter(tags=["moderation"])

_staff = staff_permission("moderation.check")


async def checker(request: Request) -> object:
    """A platform app's bearer access token with the ``moderation`` scope, or a staff member who may
    ``moderation.check`` (401 / 403 as for staff otherwise)."""
    token = http.bearer_token(request)
    if token is not None:
        app = await run_in_threadpool(oidc.service_app, http.runtime(request), token, "moderation")
        if app is not None:
            return app
    return await _staff(request)


web_openapi.guard(checker, bearer="staff_bearer", cookie="staff_cookie",
                  note="Staff with the permission `moderation.check`, or an app's access token (client "
                       "credentials) with the scope `moderation`.", not_authenticated=401, forbidden=403)
Checker = Annotated[object, Depends(checker)]


@router.post("/moderation/check", response_model=CheckOut)
def check(body: CheckIn, caller: Checker, rt: Rt) -> dict:
    """The verdict (``allow`` | ``review`` | ``block``), the normalised text and every hit with its
    category, rule and span in the submitted text. Reads only: nothing is stored or audited."""
    decision = service.check(rt, body.field, body.text)
    return decision.view() | {"lexicon_version": service.engine(rt).version}
