"""Agreement pages: public versions and history, the re-consent interstitial with its diff, the
user's consent ledger and optional purposes, and the admin console's publish and export page."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from passport import errors, guards
from passport.agreements import service
from passport.agreements.gate import INTERSTITIAL
from passport.clock import in_china_time
from passport.web import html as web
from passport.web.html import CheckedForm, FormState

router = APIRouter(include_in_schema=False)

PUBLISH_FIELDS = ("kind", "version", "title", "body", "effective_at", "requires_reconsent")


def _safe_next(value: str | None) -> str:
    """Only a path on this site: "//host" or "/\\host" would leave it."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/account"
    return value


# --- public documents ------------------------------------------------------------------------------

@router.get("/agreements/{kind}")
def agreement_current(kind: str, request: Request) -> Response:
    return _agreement_page(request, kind, None)


@router.get("/agreements/{kind}/{version}")
def agreement_version(kind: str, version: str, request: Request) -> Response:
    return _agreement_page(request, kind, version)


def _agreement_page(request: Request, kind: str, version: str | None) -> Response:
    rt = web.runtime(request)
    try:
        with rt.db.read() as db:
            document = service.get_version(db, kind, version, rt)
            versions = service.history(db, kind)
            current = next((v.version for v in service.current_versions(rt, db) if v.kind == kind), None)
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    now = rt.clock.now()
    upcoming = {v.version for v in versions if v.effective_at > now}
    return web.render(request, "agreement.html", document=document, body=web.render_markdown(document.body or ""),
                      versions=versions, current=current, upcoming=upcoming)


# --- the re-consent interstitial (A3) --------------------------------------------------------------

def _interstitial(request: Request, principal, state: FormState, next_url: str) -> Response:
    rt = web.runtime(request)
    pending = service.pending_of(rt, principal.account_id)
    if not pending:
        return web.redirect(request, next_url)
    documents = []
    with rt.db.read() as db:
        accepted = service.accepted_versions(db, principal.account_id, [p["kind"] for p in pending])
        for p in pending:
            new = service.get_version(db, p["kind"], p["version"], rt)
            previous = next(iter(accepted.get(p["kind"], [])), None)
            old = service.get_version(db, p["kind"], previous, rt) if previous else None
            blocks = service.diff_blocks(old.body or "", new.body or "") if old else None
            documents.append({"version": new, "body": web.render_markdown(new.body or ""), "previous": old,
                              "diff": [(op, web.render_markdown(block)) for op, block in blocks] if blocks else None,
                              "changed": sum(op != "=" for op, _ in blocks or ())})
    return web.render(request, "consent.html", state.status, page_path=INTERSTITIAL, form=state,
                      documents=documents, next_url=next_url)


@router.get(INTERSTITIAL)
def consent_page(request: Request, principal: guards.PageUser, next: str | None = None) -> Response:  # noqa: A002
    return _interstitial(request, principal, FormState(), _safe_next(next))


@router.post(INTERSTITIAL)
def consent_accept(request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    next_url = _safe_next(form.get("next"))
    rt, origin = web.runtime(request), web.web_origin(request)
    # The form names each version it showed: a version published meanwhile is shown, not accepted.
    shown = [item.split("/", 1) for item in (form.get("accept") or "").split(",") if "/" in item]
    try:
        form.check()
        if not shown:
            raise errors.invalid("nothing_accepted", "Nothing was accepted.", "accept")
        for kind, version in shown:
            service.accept(rt, origin, principal.account_id, kind, version)
    except errors.DomainError as exc:
        return _interstitial(request, principal, web.failed_form(request, exc, {}, ()), next_url)
    return web.redirect(request, next_url)


# --- the user's ledger and optional purposes (A2, A4) ----------------------------------------------

DONE_NOTICES = {"granted": "Your consent has been recorded.",
                "withdrawn": "Your consent has been withdrawn. The core service is not affected."}


def _ledger_page(request: Request, principal, state: FormState) -> Response:
    rt = web.runtime(request)
    with rt.db.read() as db:
        consents = [service.consent_view(c) for c in service.consents_of(db, principal.account_id)]
        purposes = service.purposes_of(db, principal.account_id)
        current = {v.kind: v for v in service.current_versions(rt, db)}
    return web.render(request, "consent_ledger.html", state.status, page_path="/account/consents", form=state,
                      consents=consents, purposes=purposes, current=current)


@router.get("/account/consents")
def ledger(request: Request, principal: guards.PageUser, done: str | None = None) -> Response:
    notice = DONE_NOTICES.get(done or "")
    return _ledger_page(request, principal, FormState(notice=web.translate(request, notice) if notice else None))


@router.post("/account/consents/purposes/{purpose}")
def set_purpose(purpose: str, request: Request, principal: guards.PageUser, form: CheckedForm) -> Response:
    granted = form.get("granted") == "true"
    rt = web.runtime(request)
    try:
        form.check()
        with rt.db.write() as db:
            service.set_purpose(rt, db, principal.account_id, purpose, granted, web.web_origin(request))
    except errors.DomainError as exc:
        return _ledger_page(request, principal, web.failed_form(request, exc, {}, ()))
    return web.redirect(request, "/account/consents?done=" + ("granted" if granted else "withdrawn"))


# --- admin console: publish, list, export (operators, auditors) ------------------------------------

# The publish form, read whole: ``CheckedForm`` caps fields for ordinary forms, a document is longer.
PublishForm = Annotated[web.Form, Depends(web.form_reader(service.MAX_BODY_CHARS + 1))]


def _time(value: str) -> datetime | None:
    """ISO 8601, or a datetime-local value taken as China time."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return in_china_time(parsed)


def _admin_page(request: Request, staff, state: FormState) -> Response:
    rt = web.runtime(request)
    with rt.db.read() as db:
        versions = service.all_versions(db)
        in_force = {(v.kind, v.version) for v in service.current_versions(rt, db)}
        accepted = service.acceptance_counts(db)
    now = rt.clock.now()
    kinds = sorted({v.kind for v in versions})
    export = {fmt: "/api/v1/admin/consents/export?" + urlencode({"format": fmt}) for fmt in ("jsonl", "csv")}
    return guards.admin_render(request, "admin_agreements.html", state.status, page_path="/admin/agreements",
                               staff=staff, form=state, versions=versions, in_force=in_force, now=now, kinds=kinds,
                               export=export, purposes=service.OPTIONAL_PURPOSES, accepted=accepted)


@router.get("/admin/agreements")
def admin_agreements(request: Request, staff: guards.StaffPage("dashboard.read"), done: str | None = None) -> Response:
    if not (staff.may("agreements.publish") or staff.may("consents.export")):
        return web.error_page(request, errors.DomainError("forbidden", "Your role does not allow this action.", 403))
    notice = web.translate(request, "The version has been published.") if done == "published" else None
    return _admin_page(request, staff, FormState(notice=notice))


@router.post("/admin/agreements")
def admin_publish(request: Request, staff: guards.StaffPage("agreements.publish"), form: PublishForm) -> Response:
    values = {name: form.get(name, "") for name in PUBLISH_FIELDS + ("immediate",)}
    rt = web.runtime(request)
    try:
        form.check()
        try:
            when = _time(values["effective_at"]) if values["effective_at"].strip() else None
        except ValueError:
            raise errors.invalid("invalid_effective_at", "Enter the effective time as YYYY-MM-DDTHH:MM.",
                                 "effective_at") from None
        service.publish(rt, web.web_origin(request), kind=values["kind"].strip(), version=values["version"].strip(),
                        title=values["title"], body=values["body"].replace("\r\n", "\n"), effective_at=when,
                        requires_reconsent=bool(values["requires_reconsent"]), immediate=bool(values["immediate"]),
                        actor_type="staff", actor_id=staff.staff_id)
    except errors.DomainError as exc:
        return _admin_page(request, staff, web.failed_form(request, exc, values, PUBLISH_FIELDS))
    return web.redirect(request, "/admin/agreements?done=published")
