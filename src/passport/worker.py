"""Due jobs: notice delivery from the outbox, finalisation of cancellations whose cooling-off ended, correction
deadlines (reminded a day before, escalated when missed, issue 18),
phone changes whose hold ended, and the retention sweeps of expired verification codes, ended sessions
and audit records past their retention period (behind a checkpoint that keeps the chain verifiable).

``passport worker`` runs them in a loop (or ``--once``); ``passport serve --with-worker`` (what
``make run`` uses) runs the same loop in a thread of the server process.
"""

from __future__ import annotations

import threading
import time

import structlog

from passport.admin import enforcement
from passport.audit import service as audit
from passport.cancellation import service as cancellation
from passport.credentials import phone as phone_change
from passport.credentials.codes import sweep_codes
from passport.notify import outbox
from passport.oidc import service as oidc
from passport.passwordless import passkeys, qr
from passport.reports import retention
from passport.runtime import Runtime
from passport.sessions.service import sweep_sessions

log = structlog.get_logger("passport.worker")


def run_once(rt: Runtime) -> dict[str, int]:
    corrections = enforcement.settle_corrections(rt)
    done = {"finalised": cancellation.finalise_due(rt), "phone_changes": phone_change.apply_due(rt),
            "corrections_escalated": corrections["escalated"], "corrections_reminded": corrections["reminded"],
            "delivered": outbox.deliver_due(rt), "app_logouts": oidc.deliver_logouts(rt)}
    done |= retention.run(rt)
    if any(done.values()):
        log.info("worker.jobs", **done)
    return done | sweep(rt)


def sweep(rt: Runtime) -> dict[str, int]:
    with rt.db.write() as db:
        removed = {"verification_codes": sweep_codes(rt, db), "sessions": sweep_sessions(rt, db),
                   "notices": outbox.sweep_outbox(rt, db), "qr_logins": qr.sweep(db, rt.clock.now()),
                   "passkey_challenges": passkeys.sweep(db, rt.clock.now()), "sso": oidc.sweep(rt, db)}
        checkpoint = audit.sweep_expired(rt, db)
        removed["audit_events"] = checkpoint["removed"] if checkpoint else 0
        if any(removed.values()):
            audit.record(db, at=rt.clock.now(), action="retention.swept", origin=audit.Origin(channel="worker"),
                         actor_type="system", details=removed)
    (log.info if any(removed.values()) else log.debug)("worker.swept", **removed)
    return removed


def run_forever(rt: Runtime, stop: threading.Event) -> None:
    # Notices go out every notice_delivery_interval_seconds (a full batch: at once); the other jobs
    # keep their own sweep_interval_seconds.
    next_round = 0.0
    while not stop.is_set():
        delivered = 0
        try:
            if time.monotonic() >= next_round:
                next_round = time.monotonic() + rt.settings.sweep_interval_seconds
                delivered = run_once(rt)["delivered"]
            else:
                delivered = outbox.deliver_due(rt) + oidc.deliver_logouts(rt)
        except Exception as exc:  # noqa: BLE001 - the loop outlives one failed round
            log.error("worker.failed", error=type(exc).__name__, detail=str(exc))
        if delivered < 100:
            stop.wait(min(rt.settings.notice_delivery_interval_seconds, rt.settings.sweep_interval_seconds))
