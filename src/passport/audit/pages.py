"""Admin console page for auditors: /admin/audit (search, verify, export links)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from passport import guards
from passport.accounts import service as accounts
from passport.admin import service as admin
from passport.audit import service as audit
from passport.clock import in_china_time
from passport.web import html as web
from passport.web.html import ButtonForm

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
_FILTERS = ("subject", "action", "actor", "since", "until")


def _time(value: str) -> datetime | None:
    """A filter time from the form: ISO 8601, or a datetime-local value taken as China time."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return in_china_time(parsed)


def _page(request: Request, staff: admin.StaffPrincipal, report: audit.ChainReport | None = None) -> Response:
    rt = web.runtime(request)
    values = {name: request.query_params.get(name, "")[:64] for name in _FILTERS}
    before = request.query_params.get("before", "")
    ascii_number = before.isascii() and before.isdigit() and len(before) < 19  # fits a BIGINT
    before_seq = int(before) if ascii_number and int(before) > 0 else None
    bad_times = [name for name in ("since", "until") if values[name] and _time(values[name]) is None]
    items: list[dict] = []
    if not bad_times:
        items = audit.staff_search(rt, web.web_origin(request), staff.staff_id, limit=PAGE_SIZE,
                                   subject=values["subject"] or None, action=values["action"] or None,
                                   actor=values["actor"] or None, since=_time(values["since"]),
                                   until=_time(values["until"]), before=before_seq)
    kept = {k: v for k, v in values.items() if v}
    names = _names(rt, items)
    period = {k: _time(kept[k]).isoformat() for k in ("since", "until") if k in kept and _time(kept[k])}
    return web.render(request, "admin_audit.html", page_path="/admin/audit", staff=staff, values=values,
                      items=items, bad_times=bad_times, report=report, names=names,
                      newer_url=("/admin/audit?" + urlencode(kept)) if before_seq else None,
                      next_url=("/admin/audit?" + urlencode(kept | {"before": items[-1]["seq"]}))
                      if len(items) == PAGE_SIZE else None,
                      export_jsonl="/api/v1/admin/audit/export?" + urlencode(period | {"format": "jsonl"}),
                      export_csv="/api/v1/admin/audit/export?" + urlencode(period | {"format": "csv"}))


def _names(rt, items: list[dict]) -> dict[str, str]:
    """What the log shows for the staff and accounts it names: the staff login, the account's masked
    nickname (the id stays one click away, as a filter)."""
    staff_ids = {i["actor_id"] for i in items if i["actor_type"] == "staff" and i["actor_id"]}
    staff_ids |= {i["subject_id"] for i in items if i["subject_type"] == "staff" and i["subject_id"]}
    account_ids = {i["actor_id"] for i in items if i["actor_type"] == "user" and i["actor_id"]}
    account_ids |= {i["subject_id"] for i in items if i["subject_type"] == "account" and i["subject_id"]}
    with rt.db.read() as db:
        names = {k: v for k, v in admin.staff_logins(db, staff_ids).items()}
        names |= {k: accounts.masked_nickname(v) for k, v in accounts.nicknames(db, account_ids).items()}
    return names


@router.get("/admin/audit", include_in_schema=False)
def audit_page(request: Request, staff: guards.StaffPage("audit.read")) -> Response:
    return _page(request, staff)


@router.post("/admin/audit/verify", include_in_schema=False)
def audit_verify_page(request: Request, staff: guards.StaffPage("audit.read"), _form: ButtonForm) -> Response:
    # The page shows the result: readers who may verify.
    if not staff.may("audit.verify"):
        return web.error_page(request, admin.forbidden())
    report = audit.staff_verify(web.runtime(request), web.web_origin(request), staff.staff_id)
    return _page(request, staff, report)
