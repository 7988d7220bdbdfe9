"""Everything a service needs, built once from settings: the app, the CLI and the worker share it."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import structlog

from passport.clock import Clock
from passport.db import Database, Limits
from passport.identity.email import mask_email
from passport.identity.phone import mask_phone
from passport.security.keys import AUDIT_KEYS, Keys, load_keys
from passport.security.passwords import Hasher
from passport.security.ratelimit import RateLimiter
from passport.senders import make_email_sender, make_sms_sender
from passport.senders.email import EmailMessage, EmailSender
from passport.senders.sms import SmsMessage, SmsSender
from passport.settings import Settings

log = structlog.get_logger("passport.runtime")


class LocalCache:
    """A small per-process cache whose entries live ``ttl`` seconds (0 disables it).

    Only for data that may be that stale on other nodes; this node drops entries it changes."""

    def __init__(self, ttl: float, max_entries: int = 20_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict = {}

    def get(self, key):
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key, value) -> None:
        if not self.ttl:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, value)

    def drop(self, predicate: Callable[[object], bool]) -> None:
        for key, (_, value) in list(self._entries.items()):
            if predicate(value):
                self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keys: Keys
    hasher: Hasher
    limiter: RateLimiter
    sms: SmsSender
    email: EmailSender
    clock: Clock = field(default_factory=Clock)
    # token digest → session and account row; see sessions.service.lookup
    sessions_cache: LocalCache = field(default_factory=lambda: LocalCache(0))
    _senders: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(4, "sms"))

    def dispatch_sms(self, message: SmsMessage) -> None:
        """Hand a message to the sender without making the caller wait on the network, so the
        answer takes as long whether or not anything is sent (enumeration safety)."""
        self._dispatch(self.sms, message, mask_phone(message.to))

    def dispatch_email(self, message: EmailMessage) -> None:
        self._dispatch(self.email, message, mask_email(message.to))

    def _dispatch(self, sender, message, masked_to: str) -> None:
        if sender.name == "outbox":
            self._send(sender, message, masked_to)
        else:
            self._senders.submit(self._send, sender, message, masked_to)

    def _send(self, sender, message, masked_to: str) -> None:
        try:
            result = sender.send(message, self.clock.now())
            log.info("notice.sent", to=masked_to, purpose=message.purpose, provider=result.provider,
                     message_id=result.message_id)
        except Exception as exc:  # noqa: BLE001 - a failed send must never fail the request
            log.warning("notice.failed", to=masked_to, purpose=message.purpose, provider=sender.name,
                        error=type(exc).__name__, detail=str(exc))

    def close(self) -> None:
        self._senders.shutdown(wait=True)
        self.hasher.close()
        self.db.dispose()


def build_runtime(settings: Settings, *, pool_size: int = 10, serving: bool = False) -> Runtime:
    """``serving``: the runtime of the web app, whose database work runs under the request timeouts."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    limits = Limits(connect_timeout_seconds=settings.database_connect_timeout_seconds)
    if serving:
        limits = Limits(settings.database_statement_timeout_ms, settings.database_lock_timeout_ms,
                        settings.database_connect_timeout_seconds)
    keys = load_keys(settings)
    return Runtime(
        settings=settings,
        db=Database(settings.resolved_database_url, pool_size, limits, session_info={AUDIT_KEYS: keys.audit}),
        keys=keys,
        hasher=Hasher(settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism,
                      settings.hash_slots),
        limiter=RateLimiter(settings.redis_url, timeout=settings.redis_timeout_seconds),
        sms=make_sms_sender(settings, settings.outbox_dir),
        email=make_email_sender(settings, settings.outbox_dir),
        sessions_cache=LocalCache(settings.session_cache_seconds),
    )
