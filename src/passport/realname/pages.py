"""Real-name and organisation pages, user and reviewer side (issue 7)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from passport import errors, guards
from passport.moderation.lexicon import CATEGORIES
from passport.realname import documents, organizations, person, service
from passport.reviews import service as reviews
from passport.web import html as web
from passport.web import http
from passport.web.html import FIELD_CAP, CheckedForm, FormState

router = APIRouter(include_in_schema=False)

PERSON_FIELDS = ("name", "id_number", "document")
ORG_FIELDS = ("name", "uscc", "legal_representative", "contact_phone", "license")
ADMIN_FIELDS = ("phone",)
DECIDE_FIELDS = ("decision", "reason")
DONE_NOTICES = {
    "verified": "Your real name is verified.",
    "pending": "Thank you. A reviewer will check your document, usually within one working day.",
    "rejected": "The name and the ID number do not match. Check both and try again.",
    "applied": "Your application has been received. A reviewer will check it.",
    "admin_added": "If this number belongs to an account, it has been invited. It becomes an administrator "
                   "once it accepts.",
    "invitation_accepted": "You are now an administrator of this organisation.",
    "invitation_declined": "You have declined the invitation.",
    "withdrawn": "Your application has been withdrawn.",
    "admin_removed": "The administrator has been removed.",
    "claimed": "You are now working on this item.",
}


@dataclass
class UploadForm:
    """A multipart form: text fields (capped and CSRF-checked like every page form) and the uploaded files."""

    fields: web.Form = field(default_factory=web.Form)
    files: dict[str, documents.Upload] = field(default_factory=dict)


async def upload_form(request: Request) -> UploadForm:
    limit = web.runtime(request).settings.upload_max_bytes + 1
    parsed = UploadForm()
    form = await request.form()
    for key, value in form.multi_items():
        if isinstance(value, str):
            parsed.fields[key] = value[:FIELD_CAP]
        else:
            data = await value.read(limit)
            if data:
                parsed.files[key] = documents.Upload(data, value.filename)
    web.checked(request, parsed.fields)
    return parsed


Uploaded = Annotated[UploadForm, Depends(upload_form)]
Reviewer = guards.StaffPage("reviews.decide")


def _notice(request: Request, done: str | None) -> str | None:
    message = DONE_NOTICES.get(done or "")
    return web.translate(request, message) if message else None


# --- person --------------------------------------------------------------------------------------------

def person_page(request: Request, principal, state: FormState) -> Response:
    rt = web.runtime(request)
    return web.render(request, "realname_person.html", state.status, page_path="/account/real-name", form=state,
                      real_name=person.status_of(rt, principal.account_id),
                      organizations=organizations.organizations_of(rt, principal.account_id),
                      invitations=organizations.invitations_of(rt, principal.account_id),
                      manual=rt.settings.realname_provider == "manual",
                      dev_provider=rt.settings.realname_provider == "dev", min_age=rt.settings.realname_min_age)


@router.get("/account/real-name")
def person_form(request: Request, principal: guards.PageUser, done: str | None = None) -> Response:
    return person_page(request, principal, FormState(notice=_notice(request, done)))


@router.post("/account/real-name")
def person_submit(request: Request, principal: guards.PageUser, form: Uploaded) -> Response:
    values = {"name": form.fields.get("name", "")}  # the ID number is not echoed back into the page
    try:
        form.fields.check()
        done = person.submit_person(web.runtime(request), web.web_origin(request), principal.account_id,
                                     name=values["name"], id_number=form.fields.get("id_number", ""),
                                     document=form.files.get("document"))
    except errors.DomainError as exc:
        return person_page(request, principal, web.failed_form(request, exc, values, PERSON_FIELDS))
    return web.redirect(request, f"/account/real-name?done={done['status']}")


# --- organisations -------------------------------------------------------------------------------------

def apply_page(request: Request, principal, state: FormState) -> Response:
    rt = web.runtime(request)
    return web.render(request, "organization_apply.html", state.status, page_path="/organizations/new", form=state,
                      real_name=person.status_of(rt, principal.account_id),
                      max_mb=rt.settings.upload_max_bytes // (1024 * 1024))


@router.get("/organizations/new")
def apply_form(request: Request, principal: guards.PageUser) -> Response:
    return apply_page(request, principal, FormState())


@router.post("/organizations/new")
def apply_submit(request: Request, principal: guards.PageUser, form: Uploaded) -> Response:
    values = {name: form.fields.get(name, "") for name in ORG_FIELDS if name != "license"}
    try:
        form.fields.check()
        created = organizations.apply_organization(web.runtime(request), web.web_origin(request), principal.account_id,
                                             license=form.files.get("license"), **values)
    except errors.DomainError as exc:
        return apply_page(request, principal, web.failed_form(request, exc, values, ORG_FIELDS))
    return web.redirect(request, f"/organizations/{created['id']}?done=applied")


def organization_page(request: Request, org_id: str, state: FormState) -> Response:
    rt = web.runtime(request)
    principal = guards.current_principal(request)
    try:
        shown = organizations.public_organization(rt, org_id, viewer=principal.account_id if principal else None)
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    admins = None
    if principal is not None:
        try:
            admins = organizations.administrators(rt, principal.account_id, org_id)
        except errors.DomainError:
            admins = None  # not one of its administrators: the public page only
    return web.render(request, "organization_page.html", state.status, page_path=f"/organizations/{org_id}",
                      form=state, organization=shown, admins=admins)


@router.get("/organizations/{org_id}")
def organization(org_id: str, request: Request, done: str | None = None) -> Response:
    return organization_page(request, org_id, FormState(notice=_notice(request, done)))


@router.post("/organizations/{org_id}/administrators")
def add_administrator(org_id: str, request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    values = {"phone": form.get("phone", "")}
    try:
        form.check()
        organizations.add_administrator(web.runtime(request), web.web_origin(request), principal.account_id, org_id,
                                  phone=values["phone"])
    except errors.DomainError as exc:
        return organization_page(request, org_id, web.failed_form(request, exc, values, ADMIN_FIELDS))
    return web.redirect(request, f"/organizations/{org_id}?done=admin_added")


@router.post("/organizations/{org_id}/administrators/{answer}")
def answer_invitation(org_id: str, answer: str, request: Request, principal: guards.PageUser,
                      form: CheckedForm) -> Response:
    """The invitee accepts or declines, from the real-name page."""
    if answer not in ("accept", "decline"):
        return web.error_page(request, errors.not_found("page"))
    try:
        form.check()
        organizations.answer_invitation(web.runtime(request), web.web_origin(request), principal.account_id, org_id,
                                  accept=answer == "accept")
    except errors.DomainError as exc:
        return person_page(request, principal, web.failed_form(request, exc, {}, ()))
    if answer == "accept":
        return web.redirect(request, f"/organizations/{org_id}?done=invitation_accepted")
    return web.redirect(request, "/account/real-name?done=invitation_declined")


@router.post("/organizations/{org_id}/withdraw")
def withdraw_application(org_id: str, request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    try:
        form.check()
        organizations.withdraw_application(web.runtime(request), web.web_origin(request), principal.account_id, org_id)
    except errors.DomainError as exc:
        return organization_page(request, org_id, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, "/account/real-name?done=withdrawn")


@router.post("/organizations/{org_id}/administrators/{account_id}/remove")
def remove_administrator(org_id: str, account_id: str, request: Request, principal: guards.PageUser,
                         form: CheckedForm) -> Response:
    try:
        form.check()
        organizations.remove_administrator(web.runtime(request), web.web_origin(request), principal.account_id, org_id,
                                     account_id)
    except errors.DomainError as exc:
        return organization_page(request, org_id, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, f"/organizations/{org_id}?done=admin_removed")


# --- reviewers: one item of the organisation or real-name queue -----------------------------------------

def review_page(request: Request, staff, review_id: str, state: FormState) -> Response:
    rt = web.runtime(request)
    try:
        item = reviews.get_review(rt, review_id)
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    subject = service.review_subject(rt, web.web_origin(request), staff.staff_id, review_id)
    document = item["payload"].get("document_id")
    # The document only for the reviewer holding the claim (or who decided the item), like the subject.
    shown = document and documents.may_see_document(item, staff.staff_id)
    document_type = documents.document_type(rt, document) if shown else None
    return web.render(request, "admin_reviews_detail.html", state.status, page_path=f"/admin/reviews/{review_id}",
                      staff=staff, form=state, item=item, subject=subject, document_type=document_type,
                      mine=item["claimed_by"] == staff.staff_id, categories=CATEGORIES)


@router.get("/admin/reviews/{review_id}")
def review_detail(review_id: str, request: Request, staff: Reviewer, done: str | None = None) -> Response:
    return review_page(request, staff, review_id, FormState(notice=_notice(request, done)))


@router.post("/admin/reviews/{review_id}/claim")
def review_claim(review_id: str, request: Request, staff: Reviewer, form: CheckedForm) -> Response:
    try:
        form.check()
        reviews.claim(web.runtime(request), web.web_origin(request), review_id, staff)
    except errors.DomainError as exc:
        return review_page(request, staff, review_id, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, f"/admin/reviews/{review_id}?done=claimed")


@router.post("/admin/reviews/{review_id}/decide")
def review_decide(review_id: str, request: Request, staff: Reviewer, form: CheckedForm) -> Response:
    values = {"decision": form.get("decision", ""), "reason": form.get("reason", "")}
    try:
        form.check()
        decided = reviews.decide(web.runtime(request), web.web_origin(request), review_id, staff,
                                 decision=values["decision"], reason=values["reason"])
    except errors.DomainError as exc:
        return review_page(request, staff, review_id, web.failed_form(request, exc, values, DECIDE_FIELDS))
    return web.redirect(request, f"/admin/reviews?queue={decided['queue']}")


@router.get("/admin/reviews/{review_id}/document")
def review_document(review_id: str, request: Request, staff: Reviewer) -> Response:
    """The uploaded file, for reviewers only (the ``passport_admin`` cookie); audited each time."""
    try:
        data, kind = documents.review_document(web.runtime(request), web.web_origin(request), staff.staff_id,
                                             review_id)
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    return http.document_response(data, kind)
