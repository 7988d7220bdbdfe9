"""Site announcements (banners on every page, ``/announcements``), published and ended by operators."""


from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from passport import errors
from passport.audit import service as audit
from passport.clock import as_utc, rfc3339
from passport.notify.board import announcement_view, current, forget_cache
from passport.notify.models import Announcement
from passport.notify.outbox import acting, log
from passport.runtime import Runtime

AUDIENCES = ("all", "persons", "organizations")


_AUDIENCE_OF_KIND = {"person": "persons", "organization": "organizations"}


TITLE_MAX, BODY_MAX, MESSAGE_MAX = 200, 20_000, 2_000


def clean_text(raw: str | None, field: str, limit: int) -> str:
    value = (raw or "").strip()
    if not value:
        raise errors.invalid(f"{field}_required", "This field is required.", field)
    if len(value) > limit:
        raise errors.invalid(f"{field}_too_long", "This text is too long.", field)
    return value


def utc(value: datetime) -> datetime:
    return as_utc(value).astimezone(UTC)


def check_period(starts_at: datetime, ends_at: datetime | None) -> None:
    if ends_at is not None and ends_at <= starts_at:
        raise errors.invalid("invalid_period", "The end time must be after the start time.", "ends_at")


def publish_announcement(rt: Runtime, origin: audit.Origin, *, title: str, body: str, audience: str = "all",
                         starts_at: datetime | None = None, ends_at: datetime | None = None,
                         staff_id: str | None = None) -> dict:
    """An operator's site-wide notice (§十四(一)): a banner while it runs, and in the list page."""
    title = clean_text(title, "title", TITLE_MAX)
    body = clean_text(body, "body", BODY_MAX)
    if audience not in AUDIENCES:
        raise errors.invalid("invalid_audience", "Choose who sees the announcement.", "audience")
    now = rt.clock.now()
    starts_at = utc(starts_at or now)
    ends_at = utc(ends_at) if ends_at is not None else None
    check_period(starts_at, ends_at)
    if ends_at is not None and ends_at <= now:
        raise errors.invalid("period_in_past", "The end time has already passed.", "ends_at")
    with rt.db.write() as db:
        row = Announcement(title=title, body=body, audience=audience, starts_at=starts_at, ends_at=ends_at,
                           created_by=staff_id, created_at=now)
        db.add(row)
        db.flush()
        audit.record(db, at=now, action="announcement.published", origin=origin,
                     **acting(staff_id), subject_type="announcement",
                     subject_id=row.id, details={"title": title, "audience": audience, "starts_at": rfc3339(starts_at),
                                                 "ends_at": rfc3339(ends_at)})
        view = announcement_view(row, now)
    forget_cache(rt)
    return view


def end_announcement(rt: Runtime, origin: audit.Origin, announcement_id: str, *, staff_id: str | None = None) -> dict:
    now = rt.clock.now()
    with rt.db.write() as db:
        row = db.get(Announcement, announcement_id) if len(announcement_id) <= 32 else None
        if row is None:
            raise errors.not_found("announcement")
        if row.ends_at is not None and row.ends_at <= now:
            raise errors.DomainError("announcement_ended", "This announcement has already ended.", 409)
        row.ends_at = now
        audit.record(db, at=now, action="announcement.ended", origin=origin,
                     **acting(staff_id), subject_type="announcement",
                     subject_id=row.id)
        view = announcement_view(row, now)
    forget_cache(rt)
    return view


def list_announcements(rt: Runtime, *, kind: str | None = None, everything: bool = False,
                       limit: int = 50) -> list[dict]:
    """Public list: the ones that have started and that the viewer's kind may see; ``everything`` (staff)
    adds the scheduled and the ended ones."""
    now = rt.clock.now()
    query = select(Announcement).order_by(Announcement.starts_at.desc()).limit(min(max(limit, 1), 200))
    if not everything:
        query = query.where(Announcement.starts_at <= now,
                            Announcement.audience.in_(_audiences(kind)))
    with rt.db.read() as db:
        return [announcement_view(row, now) for row in db.scalars(query).all()]


def get_announcement(rt: Runtime, announcement_id: str, *, kind: str | None = None) -> dict:
    now = rt.clock.now()
    with rt.db.read() as db:
        row = db.get(Announcement, announcement_id) if len(announcement_id) <= 32 else None
        if row is None or row.starts_at > now or row.audience not in _audiences(kind):
            raise errors.not_found("announcement")
        return announcement_view(row, now)


def _audiences(kind: str | None) -> tuple[str, ...]:
    audience = _AUDIENCE_OF_KIND.get(kind or "")
    return ("all", audience) if audience else ("all",)


def banners(rt: Runtime, kind: str | None = None) -> list[dict]:
    """The active announcements for the page banner, from the per-process cache (no query a page)."""
    now = rt.clock.now()
    wanted = _audiences(kind)
    return [view for starts, ends, view in current(rt).announcements
            if starts <= now and (ends is None or ends > now) and view["audience"] in wanted]


def page_banners(rt: Runtime, principal) -> list[dict]:
    """Banners for a page: the signed-in account's kind picks the audience; anonymous sees "all".
    A page still renders when they cannot be read (the banner is news, not the page's content)."""
    account = getattr(principal, "account", None)
    try:
        return banners(rt, getattr(account, "kind", None))
    except Exception as exc:  # noqa: BLE001
        log.warning("announcements.banner_unavailable", error=type(exc).__name__)
        return []

