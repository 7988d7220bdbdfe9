"""Maintenance windows, announced in advance; during one the API answers 503 (``MaintenanceGate``)."""


from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from passport import errors
from passport.audit import service as audit
from passport.clock import china_time, rfc3339
from passport.notify.announcements import MESSAGE_MAX, check_period, clean_text, utc
from passport.notify.board import current, forget_cache, window_view
from passport.notify.models import Announcement, MaintenanceWindow
from passport.notify.outbox import acting
from passport.runtime import Runtime


def schedule_maintenance(rt: Runtime, origin: audit.Origin, *, starts_at: datetime, ends_at: datetime, message: str,
                         staff_id: str | None = None) -> dict:
    """Schedule a window (§六(二)): announced from ``maintenance_notice_hours`` before it starts (or at
    once when it starts sooner); during it the service answers 503 except health checks and admin."""
    message = clean_text(message, "message", MESSAGE_MAX)
    starts_at, ends_at = utc(starts_at), utc(ends_at)
    check_period(starts_at, ends_at)
    now = rt.clock.now()
    if ends_at <= now:
        raise errors.invalid("period_in_past", "The end time has already passed.", "ends_at")

    announce_from = max(now, starts_at - timedelta(hours=rt.settings.maintenance_notice_hours))
    body = f"{message}\n\n维护时间（北京时间）/ Maintenance window (Beijing time): " \
           f"{china_time(starts_at)} – {china_time(ends_at)}"
    with rt.db.write() as db:
        window = MaintenanceWindow(starts_at=starts_at, ends_at=ends_at, message=message, created_by=staff_id,
                                   created_at=now)
        db.add(window)
        db.flush()
        announcement = Announcement(title="系统维护通知 / Scheduled maintenance", body=body, audience="all",
                                    starts_at=announce_from, ends_at=ends_at, maintenance_id=window.id,
                                    created_by=staff_id, created_at=now)
        db.add(announcement)
        db.flush()
        window.announcement_id = announcement.id
        audit.record(db, at=now, action="maintenance.scheduled", origin=origin, subject_type="maintenance",
                     subject_id=window.id, details={"starts_at": rfc3339(starts_at), "ends_at": rfc3339(ends_at),
                                                    "announced_at": rfc3339(announce_from)}, **acting(staff_id))
        view = window_view(window, now)
    forget_cache(rt)
    return view


def cancel_maintenance(rt: Runtime, origin: audit.Origin, window_id: str, *, staff_id: str | None = None) -> dict:
    now = rt.clock.now()
    with rt.db.write() as db:
        window = db.get(MaintenanceWindow, window_id) if len(window_id) <= 32 else None
        if window is None:
            raise errors.not_found("maintenance")
        if window.cancelled_at is not None or window.ends_at <= now:
            raise errors.DomainError("maintenance_over", "This maintenance window is already over or cancelled.", 409)
        window.cancelled_at = now
        if window.announcement_id:
            db.execute(update(Announcement).where(Announcement.id == window.announcement_id)
                       .values(ends_at=now))
        audit.record(db, at=now, action="maintenance.cancelled", origin=origin,
                     **acting(staff_id), subject_type="maintenance",
                     subject_id=window.id)
        view = window_view(window, now)
    forget_cache(rt)
    return view


def list_maintenance(rt: Runtime, *, limit: int = 50) -> list[dict]:
    now = rt.clock.now()
    with rt.db.read() as db:
        rows = db.scalars(select(MaintenanceWindow).order_by(MaintenanceWindow.starts_at.desc())
                          .limit(min(max(limit, 1), 200))).all()
        return [window_view(row, now) for row in rows]


def active_maintenance(rt: Runtime) -> dict | None:
    """The window in force now, from the per-process cache."""
    now = rt.clock.now()
    for starts, ends, view in current(rt).windows:
        if starts <= now < ends:
            return view
    return None

