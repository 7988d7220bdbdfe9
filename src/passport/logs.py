"""Structured JSON logs (structlog). Every event passes the masking processor: secrets are dropped,
phone numbers, ID numbers and emails masked, whatever field they hide in."""

from __future__ import annotations

import logging
import sys

import structlog

from passport.identity.masking import mask_mapping, mask_text

_RESERVED = frozenset({"event", "level", "timestamp", "logger"})


def _mask(_logger, _name, event_dict: dict) -> dict:
    masked = mask_mapping({k: v for k, v in event_dict.items() if k not in _RESERVED})
    event_dict.update(masked)
    if isinstance(event_dict.get("event"), str):
        event_dict["event"] = mask_text(event_dict["event"])
    return event_dict


class _MaskingFilter(logging.Filter):
    """Plain stdlib log records (uvicorn, SQLAlchemy, libraries) are masked too."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_text(record.getMessage())
        record.args = None
        return True


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper(), force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_MaskingFilter())
    renderer = structlog.processors.JSONRenderer(ensure_ascii=False) if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
