"""Admin console pages: account search and detail (reveal, actions), review queues."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from passport import errors
from passport.accounts.service import STATUSES as ACCOUNT_STATUSES
from passport.admin import enforcement
from passport.admin import service as admin
from passport.clock import in_china_time
from passport.reviews import service as reviews
from passport.web import http
from passport.web import pages as web
from passport.web.pages import FormData, FormState

router = APIRouter(include_in_schema=False)

ACTION_FIELDS = ("action", "reason", "until")
REVEAL_FIELDS = ("field", "reveal_reason")


def signed_in_staff(request: Request, permission: str) -> admin.StaffPrincipal | Response:
    """The staff member of the ``passport_admin`` cookie, or the answer to send instead: the login
    page when nobody is signed in, 403 for a role without ``permission``."""
    staff = admin.authenticate_staff(web.runtime(request), request.cookies.get(http.ADMIN_COOKIE))
    if staff is None:
        return web.redirect(request, "/admin/login?next=" + quote(request.url.path, safe="/"))
    if not staff.may(permission):
        return web.error_page(request, admin.forbidden())
    return staff


def _search_page(request: Request, staff: admin.StaffPrincipal, state: FormState,
                 results: dict | None = None) -> Response:
    return web.render(request, "admin_accounts.html", state.status, page_path="/admin/accounts", staff=staff,
                      form=state, results=results, statuses=ACCOUNT_STATUSES)


@router.get("/admin/accounts")
def accounts_search_form(request: Request) -> Response:
    staff = signed_in_staff(request, "accounts.read")
    if isinstance(staff, Response):
        return staff
    return _search_page(request, staff, FormState())


@router.post("/admin/accounts")
def accounts_search(request: Request, form: FormData) -> Response:
    """A POST, so the phone number searched for stays out of URLs, access logs and browser history."""
    staff = signed_in_staff(request, "accounts.read")
    if isinstance(staff, Response):
        return staff
    values = {"phone": form.get("phone", "")[:32], "status": form.get("status", "")[:16]}
    if not web.csrf_passed(request, form):
        return _search_page(request, staff, web.expired_form(request, values))
    try:
        results = enforcement.search(web.runtime(request), phone=values["phone"] or None,
                                     status=values["status"] or None)
    except errors.DomainError as exc:
        return _search_page(request, staff, web.failed_form(request, exc, values, ("phone", "status")))
    return _search_page(request, staff, FormState(values=values), results)


def _detail_page(request: Request, staff: admin.StaffPrincipal, account_id: str, state: FormState,
                 revealed: dict | None = None) -> Response:
    try:
        account = enforcement.detail(web.runtime(request), account_id)
    except errors.DomainError as exc:
        return web.error_page(request, exc)
    return web.render(request, "admin_accounts_detail.html", state.status, page_path=f"/admin/accounts/{account_id}",
                      staff=staff, form=state, account=account, revealed=revealed, actions=enforcement.ACTIONS)


@router.get("/admin/accounts/{account_id}")
def account_detail(account_id: str, request: Request) -> Response:
    staff = signed_in_staff(request, "accounts.read")
    if isinstance(staff, Response):
        return staff
    done = request.query_params.get("done")
    notice = web.translate(request, "The action has been taken and the user has been told.") if done else None
    return _detail_page(request, staff, account_id, FormState(notice=notice))


@router.post("/admin/accounts/{account_id}/actions")
def account_act(account_id: str, request: Request, form: FormData) -> Response:
    staff = signed_in_staff(request, "accounts.act")
    if isinstance(staff, Response):
        return staff
    values = {name: form.get(name, "") for name in ACTION_FIELDS}
    if not web.csrf_passed(request, form):
        return _detail_page(request, staff, account_id, web.expired_form(request, values))
    try:
        until = _local_time(values["until"])
        enforcement.act(web.runtime(request), web.web_origin(request), staff, account_id, action=values["action"],
                        reason=values["reason"], until=until)
    except errors.DomainError as exc:
        return _detail_page(request, staff, account_id, web.failed_form(request, exc, values, ACTION_FIELDS))
    return web.redirect(request, f"/admin/accounts/{account_id}?done=1")


@router.post("/admin/accounts/{account_id}/reveal")
def account_reveal(account_id: str, request: Request, form: FormData) -> Response:
    staff = signed_in_staff(request, "accounts.reveal")
    if isinstance(staff, Response):
        return staff
    values = {"field": form.get("field", ""), "reveal_reason": form.get("reveal_reason", "")}
    if not web.csrf_passed(request, form):
        return _detail_page(request, staff, account_id, web.expired_form(request, values))
    try:
        value = enforcement.reveal(web.runtime(request), web.web_origin(request), staff, account_id,
                                   field=values["field"], reason=values["reveal_reason"])
    except errors.DomainError as exc:
        exc.errors = [errors.FieldError("reveal_reason" if e.field == "reason" else e.field, e.code, e.message)
                      for e in exc.errors]
        return _detail_page(request, staff, account_id, web.failed_form(request, exc, values, REVEAL_FIELDS))
    return _detail_page(request, staff, account_id, FormState(), revealed={"field": values["field"], "value": value})


def _local_time(raw: str) -> datetime | None:
    """A ``datetime-local`` input, read as Beijing time (the console shows every time that way)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise errors.invalid("invalid_until", "Enter a valid date and time.", "until") from None
    return in_china_time(value)


@router.get("/admin/reviews")
def reviews_page(request: Request) -> Response:
    staff = signed_in_staff(request, "reviews.decide")
    if isinstance(staff, Response):
        return staff
    queue = request.query_params.get("queue", reviews.QUEUES[0])
    if queue not in reviews.QUEUES:
        queue = reviews.QUEUES[0]
    listing = reviews.list_reviews(web.runtime(request), queue, limit=reviews.PAGE_MAX)
    return web.render(request, "admin_reviews.html", page_path="/admin/reviews", staff=staff, queue=queue,
                      queues=reviews.QUEUES, listing=listing)
