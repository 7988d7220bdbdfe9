"""In-site inbox, notice preferences, announcements and maintenance windows: JSON API (issue 5)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from passport.admin.service import StaffPrincipal
from passport.agreements import marketing
from passport.clock import as_utc
from passport.guards import Authenticated, staff_permission
from passport.notify import announcements as announcements_service
from passport.notify import inbox as inbox_service
from passport.notify import maintenance as maintenance_service
from passport.notify import outbox as outbox_service
from passport.notify.schemas import AnnouncementIn, MaintenanceIn, PreferencesIn, RetryIn, UnsubscribeIn
from passport.sessions import service as sessions
from passport.web import http
from passport.web.http import ApiOrigin, Rt
from passport.web.openapi import problems

router = APIRouter(tags=["notices"])

Announcer = Annotated[StaffPrincipal, Depends(staff_permission("announcements.manage"))]
Maintainer = Annotated[StaffPrincipal, Depends(staff_permission("maintenance.manage"))]
Dispatcher = Annotated[StaffPrincipal, Depends(staff_permission("notices.manage"))]


def _viewer_kind(request: Request) -> str | None:
    """The account kind of an optional bearer token or session cookie (audience of announcements)."""
    token = http.bearer_token(request) or request.cookies.get(http.SESSION_COOKIE)
    principal = sessions.authenticate(http.runtime(request), token) if token else None
    return getattr(principal.account, "kind", None) if principal and principal.account is not None else None


# --- inbox -----------------------------------------------------------------------------------------

@router.get("/me/messages")
def list_messages(request: Request, principal: Authenticated, rt: Rt, page: int = Query(1, ge=1, le=10_000),
                  per_page: int = Query(20, ge=1, le=100), unread: bool = False) -> dict:
    """The in-site inbox (站内信), newest first: ``{"items","unread","total","page","per_page","has_more"}``;
    titles and texts in the request's language."""
    return inbox_service.list_messages(rt, principal.account_id, language=http.language(request), page=page,
                                 per_page=per_page, unread_only=unread)


@router.get("/me/messages/{message_id}")
def get_message(message_id: str, request: Request, principal: Authenticated, rt: Rt) -> dict:
    return inbox_service.get_message(rt, principal.account_id, message_id, language=http.language(request))


@router.post("/me/messages/read-all")
def read_all(principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    return {"marked": inbox_service.mark_all_read(rt, origin, principal.account_id)}


@router.post("/me/messages/{message_id}/read", status_code=204)
def read_message(message_id: str, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    inbox_service.mark_read(rt, origin, principal.account_id, message_id)
    return Response(status_code=204)


@router.delete("/me/messages/{message_id}", status_code=204)
def delete_message(message_id: str, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> Response:
    inbox_service.delete_message(rt, origin, principal.account_id, message_id)
    return Response(status_code=204)


# --- preferences -----------------------------------------------------------------------------------

@router.get("/me/notification-preferences")
def get_preferences(principal: Authenticated, rt: Rt) -> dict:
    """``{"service": true, "marketing": bool}``: service notices cannot be turned off (§五(五)1)."""
    return marketing.preferences(rt, principal.account_id)


@router.put("/me/notification-preferences", responses=problems(unknown_purpose=404))
def put_preferences(body: PreferencesIn, principal: Authenticated, rt: Rt, origin: ApiOrigin) -> dict:
    return marketing.set_marketing(rt, origin, principal.account_id, body.marketing)


@router.post("/notices/unsubscribe", status_code=204, responses=problems(invalid_unsubscribe_link=400))
def unsubscribe(body: UnsubscribeIn, rt: Rt, origin: ApiOrigin) -> Response:
    """One-click unsubscribe from marketing messages with the link's signed token; no login.
    A bad token: 400 ``invalid_unsubscribe_link``."""
    marketing.unsubscribe(rt, origin, body.token)
    return Response(status_code=204)


# --- announcements and maintenance (public) --------------------------------------------------------

@router.get("/announcements")
def list_announcements(request: Request, rt: Rt, limit: int = Query(50, ge=1, le=200)) -> list[dict]:
    """Announcements that have started, newest first, for everyone or the caller's account kind."""
    return announcements_service.list_announcements(rt, kind=_viewer_kind(request), limit=limit)


@router.get("/announcements/{announcement_id}")
def get_announcement(announcement_id: str, request: Request, rt: Rt) -> dict:
    return announcements_service.get_announcement(rt, announcement_id, kind=_viewer_kind(request))


@router.get("/maintenance")
def maintenance(rt: Rt) -> dict:
    """The window in force (if any) and the scheduled ones, for apps to warn their users."""
    windows = [w for w in maintenance_service.list_maintenance(rt) if w["cancellable"]]
    return {"active": next((w for w in windows if w["active"]), None),
            "upcoming": [w for w in windows if not w["active"]]}


# --- admin -----------------------------------------------------------------------------------------

@router.get("/admin/announcements", tags=["admin"])
def admin_announcements(staff: Announcer, rt: Rt, limit: int = Query(50, ge=1, le=200)) -> list[dict]:
    return announcements_service.list_announcements(rt, everything=True, limit=limit)


@router.post("/admin/announcements", status_code=201, tags=["admin"],
             responses=problems(invalid_audience=422, invalid_period=422, period_in_past=422, title_required=422,
                                body_required=422))
def publish_announcement(body: AnnouncementIn, staff: Announcer, rt: Rt, origin: ApiOrigin) -> dict:
    """422 ``title_required`` | ``body_required`` | ``invalid_period`` | ``period_in_past``."""
    return announcements_service.publish_announcement(
        rt, origin, title=body.title, body=body.body, audience=body.audience, staff_id=staff.staff_id,
        starts_at=as_utc(body.starts_at) if body.starts_at else None,
        ends_at=as_utc(body.ends_at) if body.ends_at else None)


@router.post("/admin/announcements/{announcement_id}/end", tags=["admin"], responses=problems(announcement_ended=409))
def end_announcement(announcement_id: str, staff: Announcer, rt: Rt, origin: ApiOrigin) -> dict:
    """409 ``announcement_ended`` when it has already ended."""
    return announcements_service.end_announcement(rt, origin, announcement_id, staff_id=staff.staff_id)


@router.get("/admin/maintenance", tags=["admin"])
def admin_maintenance(staff: Maintainer, rt: Rt, limit: int = Query(50, ge=1, le=200)) -> list[dict]:
    return maintenance_service.list_maintenance(rt, limit=limit)


@router.post("/admin/maintenance", status_code=201, tags=["admin"],
             responses=problems(invalid_period=422, period_in_past=422, message_required=422))
def schedule_maintenance(body: MaintenanceIn, staff: Maintainer, rt: Rt, origin: ApiOrigin) -> dict:
    """Schedule a window; it is announced ``maintenance_notice_hours`` ahead. 422 ``invalid_period`` |
    ``period_in_past`` | ``message_required``."""
    return maintenance_service.schedule_maintenance(rt, origin, starts_at=as_utc(body.starts_at),
                                                    ends_at=as_utc(body.ends_at), message=body.message,
                                                    staff_id=staff.staff_id)


@router.post("/admin/maintenance/{window_id}/cancel", tags=["admin"], responses=problems(maintenance_over=409))
def cancel_maintenance(window_id: str, staff: Maintainer, rt: Rt, origin: ApiOrigin) -> dict:
    """409 ``maintenance_over`` when the window has ended or was cancelled."""
    return maintenance_service.cancel_maintenance(rt, origin, window_id, staff_id=staff.staff_id)


@router.get("/admin/notices", tags=["admin"])
def admin_notices(staff: Dispatcher, rt: Rt, status: str | None = Query(None, max_length=12),
                  limit: int = Query(50, ge=1, le=200)) -> dict:
    """The outbox, newest first (recipients masked), and counts by status."""
    return {"counts": outbox_service.outbox_stats(rt),
            "items": outbox_service.list_outbox(rt, status=status, limit=limit)}


@router.post("/admin/notices/retry-failed", tags=["admin"])
def retry_failed(body: RetryIn, staff: Dispatcher, rt: Rt, origin: ApiOrigin) -> dict:
    return {"requeued": outbox_service.retry_failed(rt, origin, since=as_utc(body.since) if body.since else None,
                                             staff_id=staff.staff_id)}
