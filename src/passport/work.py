"""The unit of work: one write transaction and the effects it carries (ARCHITECTURE "Effects ride
the unit of work"). A change states its event — ``work.audit("account.frozen", subject=("account", id))``,
``work.notify(…)``, ``work.after_commit(…)`` — and the unit fills in the time, the origin, the actor
and the transaction.

Audit events and notices are written in the transaction, so they commit or roll back with the change
(the audit log records every state change in the same transaction); the events go in last, when the
block ends, so the chain's head is the last lock a unit takes. ``after_commit`` callbacks run
once the transaction has committed, in the order given, and never after a rollback: for what must not
happen unless the change stands (dropping cached session rows, a log line)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from passport.audit import service as audit
from passport.notify import outbox
from passport.origin import Origin
from passport.runtime import Runtime

Actor = tuple[str, str | None]  # (actor_type, actor_id) as the audit log records them
Subject = tuple[str, str | None]  # (subject_type, subject_id)
ANONYMOUS: Actor = ("anonymous", None)
SYSTEM: Actor = ("system", None)


@dataclass
class Work:
    """What a service function that joins a transaction receives: ``db`` for its statements, ``at``
    (the one time of the transaction), ``origin`` and the default ``actor`` of its audit events."""

    rt: Runtime
    db: Session
    at: datetime
    origin: Origin
    actor: Actor = ANONYMOUS
    _after: list[Callable[[], Any]] = field(default_factory=list, repr=False)
    _events: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def audit(self, action: str, *, subject: Subject | None = None, details: dict[str, Any] | None = None,
              result: str = "ok", actor: Actor | None = None) -> None:
        """One event for the audit chain in this transaction; ``actor`` overrides the unit's for this
        event. The events are appended (``audit.record``) when the block ends, just before the commit:
        the chain's head is then the last lock the transaction takes, after any account row its change
        or its notices locked, in the same order as every other writer (no lock cycle, no deadlock)."""
        actor_type, actor_id = actor if actor is not None else self.actor
        subject_type, subject_id = subject if subject is not None else (None, None)
        self._events.append(dict(action=action, result=result, actor_type=actor_type, actor_id=actor_id,
                                 subject_type=subject_type, subject_id=subject_id,
                                 details=dict(details) if details is not None else None))

    def _record_events(self) -> None:
        for event in self._events:
            audit.record(self.db, at=self.at, origin=self.origin, **event)
        self._events.clear()

    def notify(self, account_id: str, template: str, params: dict[str, Any] | None = None,
               channels: Iterable[str] = ("inbox", "sms"), category: str = "service") -> None:
        """Queue a notice for the account in this transaction (``outbox.notify_account``)."""
        outbox.notify_account(self.rt, self.db, account_id=account_id, template=template, params=params,
                              channels=channels, category=category)

    def after_commit(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` once the transaction has committed; never after a rollback."""
        self._after.append(callback)


@contextmanager
def unit_of_work(rt: Runtime, origin: Origin, *, actor: Actor = ANONYMOUS,
                 at: datetime | None = None) -> Iterator[Work]:
    """Open a write transaction (``rt.db.write()``) and yield its ``Work``; commit when the block
    ends (roll back on any exception), then run the after-commit callbacks. ``at`` defaults to the
    clock's now when the transaction opens; pass the time a caller already used for the same change."""
    with rt.db.write() as db:
        work = Work(rt, db, at if at is not None else rt.clock.now(), origin, actor)
        yield work
        work._record_events()
    for callback in work._after:
        callback()
