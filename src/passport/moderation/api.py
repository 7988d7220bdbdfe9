"""POST /moderation/check (API.md "Account-information review"): the engine's answer for a text, for
staff (reviewers and operators testing the lexicons) and for platform apps with an access token of the
``moderation`` scope (client credentials, single sign-on).
Under /admin/moderation: the lexicon entries and the image blocklist reviewers and operators edit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from passport.admin.service import StaffPrincipal
from passport.guards import staff_permission
from passport.moderation import operators, service
from passport.moderation.schemas import CheckIn, CheckOut, EntryIn, EntryListOut, EntryOut, ImageBlockOut
from passport.oidc import service as oidc
from passport.web import http
from passport.web import openapi as web_openapi
from passport.web.http import ApiOrigin, Rt
from passport.web.openapi import problems

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


Manager = Annotated[StaffPrincipal, Depends(staff_permission("moderation.manage"))]


@router.get("/admin/moderation/lexicon", tags=["admin"], response_model=EntryListOut)
def list_entries(staff: Manager, rt: Rt) -> dict:
    """The entries added at runtime (newest first) and their version; the bundled and file lexicons are
    in the repository (``passport review lexicon``)."""
    return operators.list_entries(rt)


@router.post("/admin/moderation/lexicon", tags=["admin"], status_code=201, response_model=EntryOut,
             responses=problems(invalid_category=422, invalid_context=422, invalid_field=422, invalid_term=422,
                                invalid_verdict=422))
def add_entry(body: EntryIn, staff: Manager, rt: Rt, origin: ApiOrigin) -> dict:
    """Add a term (every process uses it within seconds); audited ``moderation.lexicon_added``."""
    return operators.add_entry(rt, origin, staff.staff_id, term=body.term, category=body.category,
                               verdict=body.verdict, fields=body.fields, context=body.context,
                               contexts=tuple(service.engine(rt).lexicon.contexts))


@router.delete("/admin/moderation/lexicon/{entry_id}", tags=["admin"], status_code=204)
def remove_entry(entry_id: str, staff: Manager, rt: Rt, origin: ApiOrigin) -> Response:
    operators.remove_entry(rt, origin, staff.staff_id, entry_id)
    return Response(status_code=204)


@router.get("/admin/moderation/images", tags=["admin"], response_model=list[ImageBlockOut])
def list_image_blocks(staff: Manager, rt: Rt) -> list[dict]:
    return operators.list_image_blocks(rt)


@router.post("/admin/moderation/images", tags=["admin"], status_code=201, response_model=ImageBlockOut,
             responses=problems(already_blocked=409, animated_image=422, image_too_large=422, invalid_category=422,
                                invalid_hash=422, invalid_image=422))
def block_image(staff: Manager, rt: Rt, origin: ApiOrigin,
                category: Annotated[str, Form(max_length=32)],
                image: Annotated[UploadFile | None, File(description="An example of the image")] = None,
                phash: Annotated[str | None, Form(max_length=32, description="Or its 16-hex-digit phash")] = None,
                note: Annotated[str | None, Form(max_length=500)] = None) -> dict:
    """Refuse avatars like an image (multipart: ``image`` or ``phash``, ``category``, ``note``): only the
    perceptual hash is kept; avatars within ``PASSPORT_AVATAR_HASH_DISTANCE`` bits of it are refused."""
    data = image.file.read(rt.settings.upload_max_bytes + 1) if image is not None else None
    return operators.block_image(rt, origin, staff.staff_id, data=data, phash=phash, category=category, note=note)


@router.delete("/admin/moderation/images/{block_id}", tags=["admin"], status_code=204)
def unblock_image(block_id: str, staff: Manager, rt: Rt, origin: ApiOrigin) -> Response:
    operators.unblock_image(rt, origin, staff.staff_id, block_id)
    return Response(status_code=204)
