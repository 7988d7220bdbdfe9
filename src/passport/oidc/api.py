"""The user's authorised apps (API.md "Single sign-on"): ``GET /me/apps``, ``DELETE /me/apps/{client_id}``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from passport.guards import Authenticated
from passport.oidc import service
from passport.oidc.schemas import AppGrantOut
from passport.web.http import ApiOrigin, Rt
from passport.web.openapi import problems

router = APIRouter(tags=["single sign-on"])


@router.get("/me/apps", response_model=list[AppGrantOut])
def my_apps(principal: Authenticated, rt: Rt) -> list[dict]:
    """The apps this account allowed to sign it in: the scopes granted, the claims each receives under
    them, when it was allowed and when the app last received them."""
    return service.apps_of(rt, principal.account_id)


@router.delete("/me/apps/{client_id}", status_code=204, responses=problems(app_not_found=404))
def revoke_app(client_id: str, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    """Withdraw the app's access: the grant goes, its tokens for this account are revoked, it is sent a
    back-channel logout, and the consent ledger records the withdrawal. 404 ``app_not_found`` for an app
    without a grant from this account (or no such app: the answer is the same)."""
    service.revoke_grant(rt, origin, principal.account_id, client_id)
    return Response(status_code=204)
