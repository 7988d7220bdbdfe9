"""Report, appeal and reviewer pages (issue 18)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from passport import errors, guards
from passport.realname import documents
from passport.reports import appeals, retention, service
from passport.reviews import service as reviews
from passport.web import html as web
from passport.web import http
from passport.web.html import FIELD_CAP, CheckedForm, FormState

router = APIRouter(include_in_schema=False)

REPORT_FIELDS = ("category", "field", "description", "right_holder", "evidence")
APPEAL_FIELDS = ("text",)
CASE_FIELDS = ("outcome", "actions", "field", "reason", "until", "escalate_to", "refusal_days")
APPEAL_DECISION_FIELDS = ("outcome", "reason")
# Actions that take something away: the reviewer confirms them on a second page before they are taken.
DESTRUCTIVE = frozenset({"reset_field", "restrict", "suspend", "terminate", "refuse_registration",
                         "revoke_verification", "dissolve"})
NOTICES = {"filed": "Thank you. Your report has been received; you will be told the outcome.",
           "merged": "You had reported this already: the new details were added to your report.",
           "appealed": "Your appeal has been received. A different reviewer will look at it.",
           "claimed": "You are now working on this item.",
           "decided": "Decided. Everyone concerned has been told."}
Reviewer = guards.StaffPage("reviews.decide")


@dataclass
class UploadForm:
    """A multipart form: text fields (capped and CSRF-checked like every page form) and the files."""

    fields: web.Form = field(default_factory=web.Form)
    files: list[documents.Upload] = field(default_factory=list)


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
                parsed.files.append(documents.Upload(data, value.filename))
    web.checked(request, parsed.fields)
    return parsed


Uploaded = Annotated[UploadForm, Depends(upload_form)]


def _notice(request: Request, done: str | None) -> str | None:
    message = NOTICES.get(done or "")
    return web.translate(request, message) if message else None


# --- reporting ---------------------------------------------------------------------------------------

def report_page(request: Request, subject: dict[str, str], state: FormState) -> Response:
    return web.render(request, "reports_new.html", state.status, page_path="/reports/new", form=state,
                      subject=subject, categories=service.CATEGORIES,
                      fields=service.FIELDS.get(subject["subject_type"], ()),
                      max_mb=web.runtime(request).settings.upload_max_bytes // (1024 * 1024))


def _subject(values: dict[str, str]) -> dict[str, str]:
    kind = values.get("subject_type", "")
    return {"subject_type": kind if kind in service.SUBJECT_TYPES else "account",
            "subject_id": (values.get("subject_id") or "")[:64]}


@router.get("/reports/new")
def report_form(request: Request, principal: guards.PageUser, subject_type: str = "account", subject_id: str = "",
                field: str = "") -> Response:  # noqa: A002 - the query name
    subject = _subject({"subject_type": subject_type, "subject_id": subject_id})
    return report_page(request, subject, FormState(values={"field": field[:16]}))


@router.post("/reports/new")
def report_submit(request: Request, principal: guards.PageUser, form: Uploaded) -> Response:
    subject = _subject(form.fields)
    values = {name: form.fields.get(name, "") for name in REPORT_FIELDS if name != "evidence"}
    try:
        form.fields.check()
        filed = service.file_report(web.runtime(request), web.web_origin(request), principal.account_id,
                                    subject_type=form.fields.get("subject_type", ""), subject_id=subject["subject_id"],
                                    category=values["category"], description=values["description"],
                                    field=values["field"] or None, right_holder=values["right_holder"] or None,
                                    evidence=form.files)
    except errors.DomainError as exc:
        return report_page(request, subject, web.failed_form(request, exc, values, REPORT_FIELDS))
    return web.redirect(request, f"/reports?done={'merged' if filed.merged else 'filed'}")


@router.get("/reports")
def my_reports(request: Request, principal: guards.PageUser, done: str | None = None) -> Response:
    return web.render(request, "reports_mine.html", page_path="/reports", form=FormState(notice=_notice(request, done)),
                      reports=service.reports_of(web.runtime(request), principal.account_id))


# --- customer service -------------------------------------------------------------------------------------

def support_page(request: Request, state: FormState) -> Response:
    return web.render(request, "support.html", state.status, page_path="/support", form=state,
                      signed_in=guards.current_principal(request) is not None)


@router.get("/support")
def support(request: Request, done: str | None = None) -> Response:
    return support_page(request, FormState(notice=_notice(request, done)))


@router.post("/support")
def complain(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    """A complaint or a question (§十四(二)): into the reports queue as the complainant's case; the
    reviewer's reason is the answer they are sent."""
    values = {"category": form.get("category", ""), "description": form.get("description", "")}
    try:
        form.check()
        service.file_report(web.runtime(request), web.web_origin(request), principal.account_id,
                            subject_type="complaint", subject_id=principal.account_id, category=values["category"],
                            description=values["description"])
    except errors.DomainError as exc:
        return support_page(request, web.failed_form(request, exc, values, ("category", "description")))
    return web.redirect(request, "/support?done=filed")


# --- appeals -----------------------------------------------------------------------------------------

@router.get("/appeals")
def my_appeals(request: Request, principal: guards.PageUser, done: str | None = None) -> Response:
    return web.render(request, "appeals.html", page_path="/appeals", form=FormState(notice=_notice(request, done)),
                      actions=appeals.appealable_actions(web.runtime(request), principal.account_id))


def appeal_page(request: Request, token: str | None, action_id: str | None, state: FormState) -> Response:
    """From a notice's link (``token``: no sign-in needed) or from the signed-in list (``action``)."""
    rt = web.runtime(request)
    try:
        if token:
            action = appeals.action_for_link(rt, token)
        else:
            principal = guards.current_principal(request)
            if principal is None:
                return web.to_login(request)
            mine = appeals.appealable_actions(rt, principal.account_id)
            action = next((a for a in mine if str(a["id"]) == (action_id or "")), None)
            if action is None:
                raise errors.not_found("action")
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    return web.render(request, "appeal_new.html", state.status, page_path="/appeals/new", form=state, action=action,
                      token=token or "", action_id=action_id or "")


@router.get("/appeals/new")
def appeal_form(request: Request, token: str | None = None, action: str | None = None) -> Response:
    return appeal_page(request, token, action, FormState())


@router.post("/appeals/new")
def appeal_submit(request: Request, form: CheckedForm) -> Response:
    token, action_id = form.get("token") or None, form.get("action_id") or None
    values = {"text": form.get("text", "")}
    rt, origin = web.runtime(request), web.web_origin(request)
    try:
        form.check()
        if token:
            appeals.file_appeal_by_link(rt, origin, token=token, text=values["text"])
        else:
            principal = guards.current_principal(request)
            if principal is None or not (action_id or "").isascii() or not (action_id or "").isdigit() \
                    or len(action_id) > 18:
                raise errors.not_found("action")
            appeals.file_appeal(rt, origin, principal.account_id, action_id=int(action_id), text=values["text"])
    except errors.DomainError as exc:
        return appeal_page(request, token, action_id, web.failed_form(request, exc, values, APPEAL_FIELDS))
    if guards.current_principal(request) is None:
        return web.render(request, "appeal_new.html", page_path="/appeals/new",
                          form=FormState(notice=_notice(request, "appealed")), action=None, token="", action_id="")
    return web.redirect(request, "/appeals?done=appealed")


# --- reviewers: the reports queue ----------------------------------------------------------------------

def _counts(request: Request, staff) -> dict[str, int]:
    rt = web.runtime(request)
    return {"reports": service.list_cases(rt, staff)["total"], "appeals": appeals.list_appeals(rt)["total"]}


@router.get("/admin/reports")
def cases(request: Request, staff: Reviewer) -> Response:
    listing = service.list_cases(web.runtime(request), staff, limit=reviews.PAGE_MAX)
    return web.render(request, "admin_reports.html", page_path="/admin/reports", staff=staff, tab="reports",
                      listing=listing, counts=_counts(request, staff))


def case_page(request: Request, staff, review_id: str, state: FormState) -> Response:
    try:
        shown = service.case(web.runtime(request), web.web_origin(request), staff, review_id)
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    return web.render(request, "admin_report_case.html", state.status, page_path=f"/admin/reports/{review_id}",
                      staff=staff, form=state, case=shown, categories=service.CATEGORIES,
                      actions=service.ACTIONS_FOR.get(shown["subject_type"], ()))


@router.get("/admin/reports/{review_id}")
def case_detail(review_id: str, request: Request, staff: Reviewer, done: str | None = None) -> Response:
    return case_page(request, staff, review_id, FormState(notice=_notice(request, done)))


@router.post("/admin/reports/{review_id}/claim")
def case_claim(review_id: str, request: Request, staff: Reviewer, form: CheckedForm) -> Response:
    try:
        form.check()
        reviews.claim(web.runtime(request), web.web_origin(request), review_id, staff)
    except errors.DomainError as exc:
        return case_page(request, staff, review_id, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, f"/admin/reports/{review_id}?done=claimed")


async def _decision_form(request: Request) -> web.Form:
    """The decision form: ``actions`` is a set of checkboxes (joined with commas)."""
    form = await request.form()
    fields = web.Form()
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields[key] = f"{fields[key]},{value[:32]}" if key == "actions" and key in fields else value[:FIELD_CAP]
    return web.checked(request, fields)


@router.post("/admin/reports/{review_id}/decide")
def case_decide(review_id: str, request: Request, staff: Reviewer,
                form: Annotated[web.Form, Depends(_decision_form)]) -> Response:
    values = {name: form.get(name, "") for name in CASE_FIELDS}
    chosen = tuple(dict.fromkeys(a for a in values["actions"].split(",") if a))
    try:
        form.check()
        until = web.local_time(values["until"], errors.invalid("invalid_until", "Enter a valid date and time.",
                                                               "until"))
        days = values["refusal_days"].strip()
        if days and not (days.isascii() and days.isdigit() and len(days) <= 4):
            raise errors.invalid("invalid_refusal_days", "Enter a number of days.", "refusal_days")
        decision = service.Decision(values["outcome"], values["reason"], chosen, values["field"] or None, until,
                                    values["escalate_to"] or None, int(days) if days else None)
        if DESTRUCTIVE & set(chosen) and form.get("confirmed") != "yes":
            return web.render(request, "admin_report_confirm.html", page_path=f"/admin/reports/{review_id}",
                              staff=staff, review_id=review_id, values=values, chosen=chosen)
        service.decide(web.runtime(request), web.web_origin(request), staff, review_id, decision)
    except errors.DomainError as exc:
        return case_page(request, staff, review_id, web.failed_form(request, exc, values, CASE_FIELDS))
    return web.redirect(request, f"/admin/reports/{review_id}?done=decided")


@router.get("/admin/reports/{review_id}/evidence/{document_id}")
def case_evidence(review_id: str, document_id: str, request: Request, staff: Reviewer) -> Response:
    try:
        data, kind = service.evidence(web.runtime(request), web.web_origin(request), staff, review_id, document_id)
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    return http.document_response(data, kind)


# --- reviewers: the appeals queue ----------------------------------------------------------------------

@router.get("/admin/appeals")
def appeal_cases(request: Request, staff: Reviewer) -> Response:
    listing = appeals.list_appeals(web.runtime(request), limit=reviews.PAGE_MAX)
    return web.render(request, "admin_reports.html", page_path="/admin/appeals", staff=staff, tab="appeals",
                      listing=listing, counts=_counts(request, staff))


def appeal_case_page(request: Request, staff, review_id: str, state: FormState) -> Response:
    try:
        shown = appeals.appeal_case(web.runtime(request), review_id)
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    return web.render(request, "admin_appeal.html", state.status, page_path=f"/admin/appeals/{review_id}",
                      staff=staff, form=state, case=shown, acted=shown["acted_by"] == staff.staff_id)


@router.get("/admin/appeals/{review_id}")
def appeal_detail(review_id: str, request: Request, staff: Reviewer, done: str | None = None) -> Response:
    return appeal_case_page(request, staff, review_id, FormState(notice=_notice(request, done)))


@router.post("/admin/appeals/{review_id}/claim")
def appeal_claim(review_id: str, request: Request, staff: Reviewer, form: CheckedForm) -> Response:
    try:
        form.check()
        reviews.claim(web.runtime(request), web.web_origin(request), review_id, staff)
    except errors.DomainError as exc:
        return appeal_case_page(request, staff, review_id, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, f"/admin/appeals/{review_id}?done=claimed")


@router.post("/admin/appeals/{review_id}/decide")
def appeal_decide(review_id: str, request: Request, staff: Reviewer, form: CheckedForm) -> Response:
    values = {name: form.get(name, "") for name in APPEAL_DECISION_FIELDS}
    try:
        form.check()
        appeals.decide_appeal(web.runtime(request), web.web_origin(request), staff, review_id,
                              outcome=values["outcome"], reason=values["reason"])
    except errors.DomainError as exc:
        return appeal_case_page(request, staff, review_id, web.failed_form(request, exc, values,
                                                                           APPEAL_DECISION_FIELDS))
    return web.redirect(request, f"/admin/appeals/{review_id}?done=decided")



# --- superadmins: legal holds --------------------------------------------------------------------------

HoldManager = guards.StaffPage("legal_hold.manage")
HOLD_FIELDS = ("account_id", "reason", "release")
HOLD_DONE = {"set": "The legal hold is set: the retention sweep keeps this account's data.",
             "released": "The legal hold is released."}
NO_HOLD = "No such account, or it has no legal hold."


def holds_page(request: Request, staff, state: FormState) -> Response:
    return web.render(request, "admin_legal_holds.html", state.status, page_path="/admin/legal-holds", staff=staff,
                      form=state, blank=FormState(), holds=retention.holds_in_force(web.runtime(request)))


@router.get("/admin/legal-holds")
def legal_holds(request: Request, staff: HoldManager, done: str | None = None, account: str = "") -> Response:
    """The holds in force, a form to set one (the account ID comes from the request of a court or an
    authority, or from a reviewer), and the release of each; the pages of the JSON API's POST and DELETE."""
    message = HOLD_DONE.get(done or "")
    return holds_page(request, staff, FormState(notice=web.translate(request, message) if message else None,
                                                values={"account_id": account[:64]}))


def _hold_change(request: Request, staff, form: web.Form, change, done: str) -> Response:
    values = {name: form.get(name, "")[:FIELD_CAP] for name in HOLD_FIELDS}
    try:
        form.check()
        account_id = values["account_id"].strip()
        if not account_id:
            raise errors.invalid("account_required", "Enter the account ID.", "account_id")
        change(web.runtime(request), web.web_origin(request), staff, account_id, reason=values["reason"])
    except errors.DomainError as exc:
        if exc.status == 404:  # say what was not found: next to the account ID when the form has it
            named = [] if values["release"] else [errors.FieldError("account_id", exc.code, NO_HOLD)]
            exc = errors.DomainError(exc.code, NO_HOLD, 404, named)
        return holds_page(request, staff, web.failed_form(request, exc, values, HOLD_FIELDS))
    return web.redirect(request, f"/admin/legal-holds?done={done}")


@router.post("/admin/legal-holds")
def legal_hold_set(request: Request, staff: HoldManager, form: CheckedForm) -> Response:
    return _hold_change(request, staff, form, retention.set_hold, "set")


@router.post("/admin/legal-holds/release")
def legal_hold_release(request: Request, staff: HoldManager, form: CheckedForm) -> Response:
    return _hold_change(request, staff, form, retention.release_hold, "released")


# --- staff: actions on an organisation outside a report case -------------------------------------------

OrgActor = guards.StaffPage("accounts.act")
ORG_ACTION_FIELDS = ("action", "reason", "until")
ORG_DONE = "The action has been taken and the organisation's administrators have been told."


def organization_page(request: Request, staff, org_id: str, state: FormState) -> Response:
    try:
        org = service.organization_for_staff(web.runtime(request), org_id)
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    return web.render(request, "admin_organization.html", state.status, page_path=f"/admin/organizations/{org_id}",
                      staff=staff, form=state, org=org)


@router.get("/admin/organizations/{org_id}")
def organization_detail(org_id: str, request: Request, staff: OrgActor, done: str | None = None) -> Response:
    notice = web.translate(request, ORG_DONE) if done else None
    return organization_page(request, staff, org_id, FormState(notice=notice))


@router.post("/admin/organizations/{org_id}/actions")
def organization_act(org_id: str, request: Request, staff: OrgActor, form: CheckedForm) -> Response:
    """The page of ``POST /api/v1/admin/organizations/{id}/actions``: warn, suspend, lift, revoke, dissolve."""
    values = {name: form.get(name, "") for name in ORG_ACTION_FIELDS}
    try:
        form.check()
        until = web.local_time(values["until"], errors.invalid("invalid_until", "Enter a valid date and time.",
                                                               "until"))
        service.act_on_organization(web.runtime(request), web.web_origin(request), staff, org_id,
                                    action=values["action"], reason=values["reason"], until=until)
    except errors.DomainError as exc:
        return organization_page(request, staff, org_id, web.failed_form(request, exc, values, ORG_ACTION_FIELDS))
    return web.redirect(request, f"/admin/organizations/{org_id}?done=1")
