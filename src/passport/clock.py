"""The one source of time. Tests move it; nothing else calls datetime.now()."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

CHINA_TIME = timezone(timedelta(hours=8))  # mainland China keeps UTC+8 all year


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **kwargs: float) -> None:
        self.offset += timedelta(**kwargs)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return as_utc(value).isoformat().replace("+00:00", "Z")


def china_time(value: datetime | str | None) -> str:
    """A UTC time as mainland users read it: ``2026-03-04 13:06``."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return as_utc(value).astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")


def in_china_time(value: datetime) -> datetime:
    """A time typed without a zone (a form, the CLI) is Beijing time; one with a zone is kept."""
    return value if value.tzinfo else value.replace(tzinfo=CHINA_TIME)
