"""The notice board: announcements and maintenance windows in force, kept per process for every page."""


from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from passport.clock import rfc3339
from passport.notify.models import Announcement, MaintenanceWindow
from passport.runtime import Runtime


def announcement_view(row: Announcement, now: datetime | None = None) -> dict:
    view = {"id": row.id, "title": row.title, "body": row.body, "audience": row.audience,
            "starts_at": rfc3339(row.starts_at), "ends_at": rfc3339(row.ends_at), "maintenance_id": row.maintenance_id,
            "created_at": rfc3339(row.created_at)}
    if now is not None:
        view["active"] = row.starts_at <= now and (row.ends_at is None or row.ends_at > now)
        view["endable"] = row.ends_at is None or row.ends_at > now
    return view


def window_view(row: MaintenanceWindow, now: datetime | None = None) -> dict:
    view = {"id": row.id, "starts_at": rfc3339(row.starts_at), "ends_at": rfc3339(row.ends_at),
            "message": row.message, "announcement_id": row.announcement_id, "created_at": rfc3339(row.created_at),
            "cancelled_at": rfc3339(row.cancelled_at)}
    if now is not None:
        view["active"] = row.cancelled_at is None and row.starts_at <= now < row.ends_at
        view["cancellable"] = row.cancelled_at is None and row.ends_at > now
    return view



@dataclass
class _State:
    loaded: float
    announcements: list[tuple[datetime, datetime | None, dict]]
    windows: list[tuple[datetime, datetime, dict]]


_STATE_ATTR = "_notices_state"


def state_is_fresh(rt: Runtime) -> bool:
    state = rt.__dict__.get(_STATE_ATTR)
    return state is not None and time.monotonic() - state.loaded < rt.settings.notice_cache_seconds


def current(rt: Runtime) -> _State:
    """Announcements and windows that have not ended, read at most every ``notice_cache_seconds``:
    a change made on another node reaches this one within that time; this node drops it at once."""
    state = rt.__dict__.get(_STATE_ATTR)
    if state is not None and time.monotonic() - state.loaded < rt.settings.notice_cache_seconds:
        return state
    now = rt.clock.now()
    with rt.db.read() as db:
        # Running ones and those starting before the next reload; never a cut that could drop a
        # running banner behind many scheduled ones.
        soon = now + timedelta(seconds=rt.settings.notice_cache_seconds)
        announcements = db.scalars(
            select(Announcement).where(Announcement.starts_at <= soon,
                                       (Announcement.ends_at.is_(None)) | (Announcement.ends_at > now))
            .order_by(Announcement.starts_at.desc())).all()
        windows = db.scalars(
            select(MaintenanceWindow).where(MaintenanceWindow.cancelled_at.is_(None), MaintenanceWindow.ends_at > now)
            .order_by(MaintenanceWindow.starts_at).limit(20)).all()
        state = _State(time.monotonic(),
                       [(row.starts_at, row.ends_at, announcement_view(row)) for row in announcements],
                       [(row.starts_at, row.ends_at, window_view(row)) for row in windows])
    rt.__dict__[_STATE_ATTR] = state
    return state


def forget_cache(rt: Runtime) -> None:
    rt.__dict__.pop(_STATE_ATTR, None)

